//! A dyno's socket table: the text of `/proc/net/tcp` and `tcp6` of its
//! network namespace, read for the addresses it listens on.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// The listening sockets in the text of `/proc/net/tcp` and/or `tcp6`.
pub fn listeners(text: &str) -> Vec<SocketAddr> {
    let mut out: Vec<SocketAddr> = text
        .lines()
        .filter_map(|line| {
            let mut cols = line.split_whitespace();
            let _slot = cols.next()?;
            let local = cols.next()?;
            let _remote = cols.next()?;
            let state = cols.next()?;
            (state == "0A").then_some(())?;
            let (ip, port) = local.split_once(':')?;
            let port = u16::from_str_radix(port, 16).ok()?;
            let ip = match ip.len() {
                8 => IpAddr::V4(Ipv4Addr::from(u32::from_str_radix(ip, 16).ok()?.swap_bytes())),
                32 => {
                    let mut bytes = [0u8; 16];
                    for (i, word) in ip.as_bytes().chunks(8).enumerate() {
                        let w = u32::from_str_radix(std::str::from_utf8(word).ok()?, 16).ok()?.swap_bytes();
                        bytes[i * 4..i * 4 + 4].copy_from_slice(&w.to_be_bytes());
                    }
                    IpAddr::V6(Ipv6Addr::from(bytes))
                }
                _ => return None,
            };
            Some(SocketAddr::new(ip, port))
        })
        .collect();
    out.sort();
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const TCP: &str = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000:0BB8 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1 0000000000000000 100 0 0 10 0
   1: 0100007F:1388 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 2 1 0000000000000000 100 0 0 10 0
   2: 0A00000A:1388 0B00000A:D431 01 00000000:00000000 00:00000000 00000000     0        0 3 1 0000000000000000 20 4 30 10 -1
";
    const TCP6: &str = "  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000000000000:1F90 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4 1 0000000000000000 100 0 0 10 0
   1: 00000000000000000000000001000000:1389 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 5 1 0000000000000000 100 0 0 10 0
";

    #[test]
    fn the_listening_sockets_are_read_from_both_tables() {
        let found: Vec<String> = listeners(&format!("{TCP}{TCP6}")).iter().map(|a| a.to_string()).collect();
        assert_eq!(found, ["0.0.0.0:3000", "127.0.0.1:5000", "[::]:8080", "[::1]:5001"]);
        assert!(listeners("garbage\n\n1: zz:zz 0 0A").is_empty());
    }
}
