//! The rate limit on failed sign-ins and token checks: per key (an
//! address, or a user's email), at most `limit` failures in a fixed window;
//! past it, every attempt under that key is refused until the window ends,
//! the right one included, so guessing gains nothing. Kept in memory: a
//! restart forgets the counts, which costs an attacker a restart of ours.
//!
//! Only keys of addresses and of users that exist are counted (an email
//! nobody has costs a lookup, not memory), and at most [`MAX_KEYS`] live.
//!
//! Hand-written rather than `governor`'s: what is limited here is failures,
//! and a limiter must be asked "is this key refused now?" without counting
//! the asking, which GCRA cells do not offer.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The most keys kept; past it, the ended windows are dropped first.
const MAX_KEYS: usize = 100_000;

pub struct Failures {
    limit: usize,
    window: Duration,
    keys: Mutex<HashMap<String, (Instant, usize)>>,
}

impl Failures {
    pub fn new(limit: usize, window: Duration) -> Self {
        Self { limit: limit.max(1), window, keys: Mutex::default() }
    }

    /// How long attempts under `key` are refused still; none: allowed.
    pub fn refused_for(&self, key: &str, now: Instant) -> Option<Duration> {
        let keys = self.keys.lock().expect("failures poisoned");
        let (start, count) = keys.get(key)?;
        let ends = *start + self.window;
        (*count >= self.limit && ends > now).then(|| ends - now)
    }

    /// Counts a failure under each key. Memory stays bounded: past
    /// [`MAX_KEYS`] live keys, a key not yet counted is not added.
    pub fn record(&self, keys: &[&str], now: Instant) {
        let mut map = self.keys.lock().expect("failures poisoned");
        if map.len() >= MAX_KEYS {
            let window = self.window;
            map.retain(|_, (start, _)| *start + window > now);
        }
        for key in keys {
            if map.len() >= MAX_KEYS && !map.contains_key(*key) {
                continue;
            }
            let entry = map.entry((*key).to_owned()).or_insert((now, 0));
            if entry.0 + self.window <= now {
                *entry = (now, 0);
            }
            entry.1 += 1;
        }
    }

    /// The longest any of `keys` is refused for, in whole seconds (at least 1).
    pub fn refused(&self, keys: &[&str]) -> Option<u64> {
        let now = Instant::now();
        keys.iter().filter_map(|k| self.refused_for(k, now)).max().map(|d| d.as_secs_f64().ceil().max(1.0) as u64)
    }
}

/// The key of an address: an IPv6 address by its /64, which one host
/// usually has whole (so it cannot spread its guesses over addresses).
pub fn address_key(addr: Option<std::net::IpAddr>) -> String {
    match addr {
        Some(std::net::IpAddr::V6(v6)) if v6.to_ipv4_mapped().is_none() => {
            let s = v6.segments();
            format!("addr:{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
        }
        Some(a) => format!("addr:{}", match a {
            std::net::IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(a, std::net::IpAddr::V4),
            v4 => v4,
        }),
        None => "addr:unknown".to_owned(),
    }
}

/// The key of a user, by the email given.
pub fn user_key(email: &str) -> String {
    format!("user:{}", email.trim().to_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_past_the_limit_are_refused_until_the_window_ends() {
        let f = Failures::new(3, Duration::from_secs(10));
        let t0 = Instant::now();
        for _ in 0..2 {
            f.record(&["a", "u"], t0);
        }
        assert_eq!(f.refused_for("a", t0), None, "under the limit");
        f.record(&["a"], t0 + Duration::from_secs(1));
        assert_eq!(f.refused_for("a", t0 + Duration::from_secs(1)), Some(Duration::from_secs(9)));
        assert_eq!(f.refused_for("u", t0 + Duration::from_secs(1)), None, "each key counts its own");
        assert_eq!(f.refused_for("b", t0), None);
        assert_eq!(f.refused_for("a", t0 + Duration::from_secs(10)), None, "the window ended");
        f.record(&["a"], t0 + Duration::from_secs(11));
        assert_eq!(f.refused_for("a", t0 + Duration::from_secs(11)), None, "a new window counts from one");
    }

    #[test]
    fn addresses_of_one_ipv6_host_share_a_key() {
        let a: std::net::IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let b: std::net::IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        assert_eq!(address_key(Some(a)), address_key(Some(b)));
        assert_ne!(address_key(Some(a)), address_key(Some("2001:db8:1:3::1".parse().unwrap())));
        let mapped: std::net::IpAddr = "::ffff:192.0.2.7".parse().unwrap();
        assert_eq!(address_key(Some(mapped)), "addr:192.0.2.7");
    }
}
