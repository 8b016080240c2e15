//! What a dyno's socket table (read by the runtime,
//! `crate::runtime::sockets`) says about port binding (VII): the
//! addresses it listens on, against the `$PORT` it was given.

use std::net::SocketAddr;

/// Why a web dyno that did not answer on `$PORT` departs from port
/// binding, from what it listens on; None when it listens on `$PORT` on
/// every interface, or on nothing yet (it is slow or failing, not bound
/// wrongly).
pub fn port_binding(dyno: &str, port: u16, listening: &[SocketAddr]) -> Option<String> {
    let on_port: Vec<&SocketAddr> = listening.iter().filter(|a| a.port() == port).collect();
    if on_port.iter().any(|a| a.ip().is_unspecified()) {
        return None;
    }
    let shown = |addrs: &[&SocketAddr]| addrs.iter().map(|a| a.to_string()).collect::<Vec<_>>().join(", ");
    if !on_port.is_empty() {
        return Some(format!(
            "{dyno} listens on {} only, which the router cannot reach: bind to 0.0.0.0:$PORT ({port})",
            shown(&on_port)
        ));
    }
    // Nothing bound yet: slow to boot (R10), not bound wrongly.
    if listening.is_empty() {
        return None;
    }
    let others: Vec<&SocketAddr> = listening.iter().collect();
    Some(format!("{dyno} listens on {}, not on $PORT ({port}): bind to $PORT", shown(&others)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_binding_names_the_port_listened_on_or_the_loopback() {
        let at = |s: &[&str]| s.iter().map(|a| a.parse().unwrap()).collect::<Vec<SocketAddr>>();
        assert_eq!(
            port_binding("web.1", 5000, &at(&["0.0.0.0:3000"])).unwrap(),
            "web.1 listens on 0.0.0.0:3000, not on $PORT (5000): bind to $PORT"
        );
        assert!(port_binding("web.1", 5000, &at(&["127.0.0.1:5000"])).unwrap().contains("127.0.0.1:5000 only"));
        assert_eq!(port_binding("web.1", 5000, &[]), None, "not bound yet: a slow boot");
        assert_eq!(port_binding("web.1", 5000, &at(&["0.0.0.0:5000", "127.0.0.1:9000"])), None);
        assert_eq!(port_binding("web.1", 5000, &at(&["[::]:5000"])), None);
    }
}
