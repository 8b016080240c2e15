//! Allow-list rules for names that cross a boundary. Bad names are rejected,
//! never "cleaned": a rejected name says which rule it broke.

use serde::{Deserialize, Serialize};
use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("app name {0:?} is invalid: use 3-30 characters, lowercase letters, digits and dashes, starting with a letter and not ending with a dash")]
    App(String),
    #[error("config key {0:?} is invalid: use letters, digits and underscores, not starting with a digit")]
    ConfigKey(String),
    #[error("config key {0:?} is reserved by the platform: choose another name")]
    ReservedConfigKey(String),
    #[error("process type {0:?} is invalid: use 1-63 lowercase letters, digits, dashes and underscores, starting with a letter or digit")]
    ProcessType(String),
    #[error("dyno size {0:?} is invalid: give a memory limit from 64M to 16G, like 256M, 512M or 1G")]
    DynoSize(String),
    #[error("domain {0:?} is invalid: give a hostname like www.example.com, or *.example.com for every name one level under it (lowercase letters, digits and dashes; no IP addresses, ports or paths)")]
    Hostname(String),
}

/// A dyno's size: its memory limit, written like `512M` or `1G`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DynoSize {
    megabytes: u64,
}

impl DynoSize {
    pub fn parse(s: &str) -> Result<Self, NameError> {
        let bad = || NameError::DynoSize(s.to_owned());
        let t = s.trim().to_ascii_uppercase();
        let t = t.strip_suffix('B').unwrap_or(&t);
        let (digits, factor) = match t.strip_suffix('G') {
            Some(d) => (d, 1024),
            None => (t.strip_suffix('M').ok_or_else(bad)?, 1),
        };
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) || digits.len() > 6 {
            return Err(bad());
        }
        let megabytes = digits.parse::<u64>().map_err(|_| bad())? * factor;
        if !(64..=16 * 1024).contains(&megabytes) {
            return Err(bad());
        }
        Ok(Self { megabytes })
    }

    /// The size of a memory limit read back from the runtime (whole MiB;
    /// not validated: the platform set it).
    pub fn from_bytes(bytes: i64) -> Self {
        Self { megabytes: (bytes.max(0) as u64) >> 20 }
    }

    pub fn bytes(self) -> i64 {
        (self.megabytes * 1024 * 1024) as i64
    }
}

impl fmt::Display for DynoSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.megabytes.is_multiple_of(1024) {
            write!(f, "{}G", self.megabytes / 1024)
        } else {
            write!(f, "{}M", self.megabytes)
        }
    }
}

macro_rules! name_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl From<$name> for String {
            fn from(name: $name) -> String {
                name.0
            }
        }

        impl std::str::FromStr for $name {
            type Err = NameError;
            fn from_str(s: &str) -> Result<Self, NameError> {
                Self::parse(s)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                Self::parse(&s).map_err(serde::de::Error::custom)
            }
        }
    };
}

name_type!(
    /// An app name: `^[a-z][a-z0-9-]{1,28}[a-z0-9]$`.
    AppName
);
name_type!(
    /// A config var key: `^[A-Za-z_][A-Za-z0-9_]*$`, not `PORT`, not `PAAS_*`.
    ConfigKey
);
name_type!(
    /// A Procfile process type: `^[a-z0-9][a-z0-9_-]{0,62}$`.
    ProcessType
);

name_type!(
    /// A custom domain: a hostname of two or more labels
    /// (`[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?`), at most 253 characters, not
    /// all digits at the top, optionally `*.` first for a wildcard.
    Hostname
);

impl Hostname {
    pub fn parse(s: &str) -> Result<Self, NameError> {
        if Self::is_valid(s) {
            Ok(Self(s.to_owned()))
        } else {
            Err(NameError::Hostname(s.to_owned()))
        }
    }

    /// Whether `s` follows the rules [`Self::parse`] checks, without
    /// allocating (the router asks on every request).
    /// In one pass over its bytes: at most 253 of them, two labels or
    /// more, each of 1 to 63 of `[a-z0-9-]` neither starting nor ending
    /// with `-`, the last not all digits.
    pub fn is_valid(s: &str) -> bool {
        let name = s.strip_prefix("*.").unwrap_or(s);
        if s.len() > 253 {
            return false;
        }
        // Dots seen, the current label's length, its last byte, whether it
        // is all digits so far.
        let (mut dots, mut len, mut last, mut digits) = (0, 0, b'.', true);
        for &c in name.as_bytes() {
            if c == b'.' {
                if len == 0 || last == b'-' {
                    return false;
                }
                (dots, len, digits) = (dots + 1, 0, true);
            } else {
                let allowed = c.is_ascii_lowercase() || c.is_ascii_digit() || (c == b'-' && len > 0);
                if !allowed || len == 63 {
                    return false;
                }
                len += 1;
                digits &= c.is_ascii_digit();
            }
            last = c;
        }
        dots > 0 && len > 0 && last != b'-' && !digits
    }

    /// For `*.example.com`, `example.com`: the domain it covers one level under.
    pub fn wildcard_of(&self) -> Option<&str> {
        self.0.strip_prefix("*.")
    }
}

impl AppName {
    pub fn parse(s: &str) -> Result<Self, NameError> {
        let b = s.as_bytes();
        let ok = (3..=30).contains(&b.len())
            && b[0].is_ascii_lowercase()
            && b.iter().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
            && b[b.len() - 1] != b'-';
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(NameError::App(s.to_owned()))
        }
    }
}

impl ConfigKey {
    pub fn parse(s: &str) -> Result<Self, NameError> {
        let b = s.as_bytes();
        let ok = !b.is_empty()
            && (b[0].is_ascii_alphabetic() || b[0] == b'_')
            && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'_');
        if !ok {
            return Err(NameError::ConfigKey(s.to_owned()));
        }
        if s == "PORT" || s.starts_with("PAAS_") {
            return Err(NameError::ReservedConfigKey(s.to_owned()));
        }
        Ok(Self(s.to_owned()))
    }
}

impl ProcessType {
    pub fn parse(s: &str) -> Result<Self, NameError> {
        let b = s.as_bytes();
        let ok = (1..=63).contains(&b.len())
            && (b[0].is_ascii_lowercase() || b[0].is_ascii_digit())
            && b
                .iter()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-' || *c == b'_');
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(NameError::ProcessType(s.to_owned()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The one-pass check says what the rules said as written before it
    /// (by labels), for every string of up to five bytes from an alphabet
    /// that meets every rule's edge, and for long ones.
    #[test]
    fn a_hostname_is_checked_in_one_pass_as_by_its_labels() {
        fn by_labels(s: &str) -> bool {
            let name = s.strip_prefix("*.").unwrap_or(s);
            let label_ok = |l: &str| {
                let b = l.as_bytes();
                (1..=63).contains(&b.len()) && b.iter().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-') && b[0] != b'-' && b[b.len() - 1] != b'-'
            };
            let top_ok = name.rsplit('.').next().is_some_and(|t| !t.bytes().all(|c| c.is_ascii_digit()));
            s.len() <= 253 && name.contains('.') && name.split('.').all(label_ok) && top_ok
        }
        let alphabet = ["a", "1", "-", ".", "*", "A", " "];
        let (mut level, mut strings) = (vec![String::new()], vec![String::new()]);
        for _ in 0..5 {
            level = level.iter().flat_map(|s| alphabet.iter().map(move |c| format!("{s}{c}"))).collect();
            strings.extend(level.iter().cloned());
        }
        let label = "a".repeat(63);
        strings.extend([format!("{label}.com"), format!("{label}a.com"), format!("*.{label}.b"), [label.as_str(); 4].join("."), [label.as_str(); 5].join(".")]);
        for s in &strings {
            assert_eq!(Hostname::is_valid(s), by_labels(s), "{s:?}");
        }
    }

    #[test]
    fn hostnames() {
        for ok in ["www.example.com", "example.co", "*.example.com", "a-b.c1.example"] {
            assert!(Hostname::parse(ok).is_ok(), "{ok}");
        }
        for bad in ["example", "WWW.example.com", "1.2.3.4", "-a.example.com", "a..b", "*.com.", "a.*.example.com", "example.com:80", "x/y.com", ""] {
            assert!(Hostname::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(Hostname::parse("*.example.com").unwrap().wildcard_of(), Some("example.com"));
    }

    #[test]
    fn dyno_sizes() {
        assert_eq!(DynoSize::parse("512M").unwrap().to_string(), "512M");
        assert_eq!(DynoSize::parse("1g").unwrap().bytes(), 1 << 30);
        assert_eq!(DynoSize::parse("1024MB").unwrap().to_string(), "1G");
        assert_eq!(DynoSize::from_bytes(512 << 20).to_string(), "512M");
        for bad in ["", "M", "63M", "17G", "1.5G", "-1G", "512", "512K", "9999999G"] {
            assert!(DynoSize::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn app_names() {
        for ok in ["abc", "my-app", "a1b", "x23456789012345678901234567890"] {
            assert!(AppName::parse(ok).is_ok(), "{ok}");
        }
        for bad in ["ab", "My_App", "1abc", "abc-", "a..b", "x234567890123456789012345678901", "a b", ""] {
            assert!(AppName::parse(bad).is_err(), "{bad}");
        }
        assert!(AppName::parse("My_App").unwrap_err().to_string().contains("lowercase letters"));
    }

    #[test]
    fn config_keys() {
        for ok in ["A", "_X", "DATABASE_URL", "greeting9"] {
            assert!(ConfigKey::parse(ok).is_ok(), "{ok}");
        }
        for bad in ["", "9A", "A-B", "A B", "A=B", "A;rm"] {
            assert_eq!(ConfigKey::parse(bad), Err(NameError::ConfigKey(bad.into())));
        }
        for reserved in ["PORT", "PAAS_X", "PAAS_"] {
            assert_eq!(ConfigKey::parse(reserved), Err(NameError::ReservedConfigKey(reserved.into())));
        }
    }

    #[test]
    fn process_types() {
        for ok in ["web", "worker", "release", "0x", "a_b-c"] {
            assert!(ProcessType::parse(ok).is_ok(), "{ok}");
        }
        for bad in ["", "Web", "-x", "_x", "a.b", &"x".repeat(64)] {
            assert!(ProcessType::parse(bad).is_err(), "{bad}");
        }
    }
}
