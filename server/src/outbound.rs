//! Where connections made on a user's behalf (log drains, custom buildpack
//! URLs) may go: public addresses only, unless the operator allows ranges
//! in `PAAS_OUTBOUND_ALLOW`. A host name is resolved here and the connection
//! made to the address that was checked (never resolved again by someone
//! else, so a name cannot point elsewhere between the check and the
//! connection). Failures are told as a category ([`Refusal`]) so what
//! reaches an app's log says nothing about the platform's own network.

use ipnet::IpNet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

/// See the module docs. Cheap to clone.
#[derive(Clone, Debug, Default)]
pub struct OutboundPolicy {
    /// Ranges the operator allows besides public addresses.
    allow: Arc<Vec<IpNet>>,
}

/// Why an outbound connection was not made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("its host name does not resolve")]
    Dns,
    #[error("it points to a loopback, link-local or private address, which is refused unless the operator allows it in PAAS_OUTBOUND_ALLOW")]
    Private,
}

impl OutboundPolicy {
    pub fn new(allow: Vec<IpNet>) -> Self {
        Self { allow: Arc::new(allow) }
    }

    /// Parses `PAAS_OUTBOUND_ALLOW`: comma-separated ranges or addresses.
    pub fn parse(list: &str) -> Result<Self, String> {
        let allow = list
            .split(',')
            .map(str::trim)
            .filter(|a| !a.is_empty())
            .map(|a| {
                a.parse::<IpNet>()
                    .or_else(|_| a.parse::<IpAddr>().map(IpNet::from))
                    .map_err(|_| format!("PAAS_OUTBOUND_ALLOW: {a:?} is not an address or a range like 10.1.0.0/16"))
            })
            .collect::<Result<_, _>>()?;
        Ok(Self::new(allow))
    }

    /// Whether a connection to `ip` may be made.
    pub fn permits(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        is_public(ip) || self.allow.iter().any(|net| net.contains(&ip))
    }

    /// Resolves `host` (a name or an address literal) and returns the first
    /// address that may be reached.
    pub async fn resolve(&self, host: &str, port: u16) -> Result<SocketAddr, Refusal> {
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let addrs: Vec<SocketAddr> = match host.parse::<IpAddr>() {
            Ok(ip) => vec![SocketAddr::new(ip, port)],
            Err(_) => tokio::net::lookup_host((host, port)).await.map_err(|_| Refusal::Dns)?.collect(),
        };
        if addrs.is_empty() {
            return Err(Refusal::Dns);
        }
        addrs.into_iter().find(|a| self.permits(a.ip())).ok_or(Refusal::Private)
    }
}

/// An IPv4 address written as IPv6 (`::ffff:127.0.0.1`) is checked as the
/// IPv4 address it is.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// Whether an address is on the public internet: not loopback, link-local
/// (cloud metadata), private, unique-local, shared (CGNAT), unspecified,
/// multicast, broadcast or reserved.
fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_multicast()
                || v4.is_broadcast()
                || v4.is_documentation()
                || a == 0
                || (a == 100 && (64..128).contains(&b))
                || a >= 240
                || v4 == Ipv4Addr::new(192, 0, 0, 9))
        }
        IpAddr::V6(v6) => {
            let first = v6.segments()[0];
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00 // unique local fc00::/7
                || (first & 0xffc0) == 0xfe80 // link-local fe80::/10
                || (first & 0xffc0) == 0xfec0 // site-local, deprecated
                || v6 == Ipv6Addr::new(0x64, 0xff9b, 0, 0, 0, 0, 0, 0)
                || (first == 0x2001 && v6.segments()[1] == 0xdb8))
        }
    }
}

/// reqwest's resolver under the policy: a name resolves only to addresses
/// that may be reached.
impl reqwest::dns::Resolve for OutboundPolicy {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let policy = self.clone();
        Box::pin(async move {
            let addr = policy.resolve(name.as_str(), 0).await.map_err(|e| Box::new(e) as Box<dyn std::error::Error + Send + Sync>)?;
            Ok(Box::new(std::iter::once(addr)) as reqwest::dns::Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn private_addresses_are_refused_unless_allowed() {
        let strict = OutboundPolicy::default();
        for bad in [
            "127.0.0.1", "10.1.2.3", "172.20.0.1", "192.168.1.1", "169.254.169.254", "0.0.0.0", "100.64.0.1", "::1", "fd00::1",
            "fe80::1", "::ffff:127.0.0.1", "::ffff:169.254.169.254", "224.0.0.1",
        ] {
            assert!(!strict.permits(bad.parse().unwrap()), "{bad}");
            assert_eq!(strict.resolve(bad, 80).await, Err(Refusal::Private), "{bad}");
        }
        for good in ["93.184.216.34", "1.1.1.1", "2606:4700::1111"] {
            assert!(strict.permits(good.parse().unwrap()), "{good}");
        }
        assert_eq!(strict.resolve("localhost", 514).await, Err(Refusal::Private));
        assert_eq!(strict.resolve("[::1]", 514).await, Err(Refusal::Private));

        let loopback = OutboundPolicy::parse("127.0.0.0/8, ::1").unwrap();
        assert_eq!(loopback.resolve("127.0.0.1", 514).await, Ok("127.0.0.1:514".parse().unwrap()));
        assert!(!loopback.permits("10.0.0.1".parse().unwrap()));
        assert!(OutboundPolicy::parse("10.0.0.0/33").unwrap_err().contains("PAAS_OUTBOUND_ALLOW"));
    }
}
