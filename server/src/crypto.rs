//! Encryption of config vars at rest (XChaCha20-Poly1305) and API token
//! hashing (SHA-256, compared in constant time). Only this module touches key
//! material.

use anyhow::{bail, Context, Result};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand::RngCore;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::Path;
use subtle::ConstantTimeEq;

/// Seals and opens config var sets.
#[derive(Clone)]
pub struct ConfigCipher {
    cipher: XChaCha20Poly1305,
}

impl ConfigCipher {
    /// Derives the 256-bit key from `PAAS_SECRET_KEY` (any high-entropy
    /// string), or from `<data dir>/secret.key`, which is generated on first
    /// use when no key is configured.
    pub fn load(secret: Option<&str>, data_dir: &Path) -> Result<Self> {
        let secret = match secret {
            Some(s) => s.to_owned(),
            None => {
                let path = data_dir.join("secret.key");
                match std::fs::read_to_string(&path) {
                    Ok(s) => s.trim().to_owned(),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                        let key = hex::encode(random_bytes::<32>());
                        write_private(&path, &key)
                            .with_context(|| format!("cannot write {}", path.display()))?;
                        key
                    }
                    Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
                }
            }
        };
        if secret.len() < 16 {
            bail!("PAAS_SECRET_KEY is too short: use at least 32 random characters (for example `openssl rand -hex 32`)");
        }
        let key = Sha256::digest(secret.as_bytes());
        Ok(Self { cipher: XChaCha20Poly1305::new(&key) })
    }

    pub fn seal(&self, vars: &BTreeMap<String, String>) -> String {
        let plain = serde_json::to_vec(vars).expect("a string map always serializes");
        let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
        let sealed = self.cipher.encrypt(&nonce, plain.as_slice()).expect("encryption of a buffer cannot fail");
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        B64.encode(out)
    }

    pub fn open(&self, sealed: &str) -> Result<BTreeMap<String, String>> {
        let raw = B64.decode(sealed).context("stored config is not base64")?;
        if raw.len() < 24 {
            bail!("stored config is truncated");
        }
        let (nonce, body) = raw.split_at(24);
        let plain = self
            .cipher
            .decrypt(XNonce::from_slice(nonce), body)
            .map_err(|_| anyhow::anyhow!("cannot decrypt config vars: PAAS_SECRET_KEY differs from the key they were stored with"))?;
        serde_json::from_slice(&plain).context("stored config is not a string map")
    }
}

pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    rand::thread_rng().fill_bytes(&mut b);
    b
}

/// A new API token: 32 random bytes, hex-encoded, prefixed for recognisability.
pub fn new_token() -> String {
    format!("paas_{}", hex::encode(random_bytes::<32>()))
}

pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

pub fn constant_time_eq(a: &str, b: &str) -> bool {
    a.as_bytes().ct_eq(b.as_bytes()).into()
}

fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path)?;
    f.write_all(contents.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_open_round_trip_and_wrong_key() {
        let dir = tempfile::tempdir().unwrap();
        let c = ConfigCipher::load(Some("0123456789abcdef0123456789abcdef"), dir.path()).unwrap();
        let mut vars = BTreeMap::new();
        // Long enough that random base64 never contains it by chance (a
        // two-letter value did, now and then).
        vars.insert("GREETING".to_owned(), "a-plaintext-value-that-must-not-show".to_owned());
        let sealed = c.seal(&vars);
        assert!(!sealed.contains("plaintext-value"));
        assert_eq!(c.open(&sealed).unwrap(), vars);
        let other = ConfigCipher::load(Some("another-key-another-key-another"), dir.path()).unwrap();
        assert!(other.open(&sealed).unwrap_err().to_string().contains("PAAS_SECRET_KEY"));
    }

    #[test]
    fn generated_key_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let a = ConfigCipher::load(None, dir.path()).unwrap();
        let b = ConfigCipher::load(None, dir.path()).unwrap();
        let sealed = a.seal(&BTreeMap::new());
        assert!(b.open(&sealed).is_ok());
    }

    #[test]
    fn short_key_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        assert!(ConfigCipher::load(Some("short"), dir.path()).is_err());
    }
}
