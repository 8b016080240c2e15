//! Encryption of config vars at rest (XChaCha20-Poly1305) and API token
//! hashing (SHA-256, compared in constant time), and files' SHA-256. Only
//! this module touches key material.

use anyhow::{bail, Context, Result};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand::RngCore;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::Path;
use subtle::ConstantTimeEq;

/// Seals and opens secrets: config var sets, certificate keys, drain URLs,
/// the ACME account. Each sealed value is bound to what it belongs to (its
/// *owner*, e.g. `config:APP_ID`, as associated data), so a row moved to
/// another app, or a value put in another's place, does not open.
#[derive(Clone)]
pub struct ConfigCipher {
    cipher: XChaCha20Poly1305,
    /// Keys [`Self::digest`], for looking a sealed value up by its plain text.
    digest_key: [u8; 32],
}

/// What a sealed value bound to its owner starts with; values without it
/// were sealed before owners were bound ([`ConfigCipher::reseal_legacy`]).
const BOUND: &str = "v2.";

/// The owner of an app's config vars.
pub fn config_owner(app_id: &str) -> String {
    format!("config:{app_id}")
}

/// The owner of a custom domain's certificate key.
pub fn cert_owner(app_id: &str, hostname: &str) -> String {
    format!("cert:{app_id}:{hostname}")
}

/// The owner of an app's drain URLs.
pub fn drain_owner(app_id: &str) -> String {
    format!("drain:{app_id}")
}

/// The owner an add-on's credentials are sealed for.
pub fn addon_owner(addon_id: &str) -> String {
    format!("addon:{addon_id}")
}

/// The file in the data dir that holds the generated key when
/// `PAAS_SECRET_KEY` is not set.
pub const KEY_FILE: &str = "secret.key";

impl ConfigCipher {
    /// Derives the 256-bit key from `PAAS_SECRET_KEY` (any high-entropy
    /// string), or from `<data dir>/secret.key`, which is generated on first
    /// use when no key is configured.
    pub fn load(secret: Option<&str>, data_dir: &Path) -> Result<Self> {
        let secret = match secret {
            Some(s) => s.to_owned(),
            None => {
                let path = data_dir.join(KEY_FILE);
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
        if secret.len() < 32 {
            bail!("PAAS_SECRET_KEY is too short: use at least 32 random characters (for example `openssl rand -hex 32`)");
        }
        let key = Sha256::digest(secret.as_bytes());
        let digest_key: [u8; 32] = Sha256::digest([b"paas digest key\0".as_slice(), secret.as_bytes()].concat()).into();
        Ok(Self { cipher: XChaCha20Poly1305::new(&key), digest_key })
    }

    /// Seals a string map for `owner`.
    pub fn seal(&self, owner: &str, vars: &BTreeMap<String, String>) -> String {
        let plain = serde_json::to_vec(vars).expect("a string map always serializes");
        self.seal_bytes(owner, &plain)
    }

    /// Opens what [`Self::seal`] sealed for the same `owner`.
    pub fn open(&self, owner: &str, sealed: &str) -> Result<BTreeMap<String, String>> {
        let Some(bound) = sealed.strip_prefix(BOUND) else {
            bail!("a stored secret of {owner} was sealed by an older paas-server and not migrated: start the server once to migrate it");
        };
        let plain = self.open_raw(bound, owner.as_bytes())?;
        serde_json::from_slice(&plain).context("stored config is not a string map")
    }

    /// Seals one string for `owner`.
    pub fn seal_str(&self, owner: &str, value: &str) -> String {
        self.seal_bytes(owner, value.as_bytes())
    }

    /// Opens what [`Self::seal_str`] sealed for the same `owner`.
    pub fn open_str(&self, owner: &str, sealed: &str) -> Result<String> {
        let bound = sealed.strip_prefix(BOUND).ok_or_else(|| anyhow::anyhow!("a stored secret of {owner} is not sealed"))?;
        String::from_utf8(self.open_raw(bound, owner.as_bytes())?).context("a stored secret is not text")
    }

    /// A keyed digest of `value` for `owner`: equal values give equal
    /// digests, and without the key a digest tells nothing of its value.
    pub fn digest(&self, owner: &str, value: &str) -> String {
        use hmac::Mac;
        let mut mac = <hmac::Hmac<Sha256> as Mac>::new_from_slice(&self.digest_key).expect("any key length works");
        mac.update(owner.as_bytes());
        mac.update(&[0]);
        mac.update(value.as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }

    /// Whether `sealed` predates owners ([`Self::reseal_legacy`] migrates it).
    pub fn is_legacy(sealed: &str) -> bool {
        !sealed.starts_with(BOUND)
    }

    /// A value sealed before owners were bound, sealed again for `owner`.
    pub fn reseal_legacy(&self, owner: &str, sealed: &str) -> Result<String> {
        let plain = self.open_raw(sealed, &[])?;
        Ok(self.seal_bytes(owner, &plain))
    }

    /// Seals as versions before owners did (for tests of the migration).
    #[cfg(test)]
    pub(crate) fn seal_legacy(&self, plain: &[u8]) -> String {
        let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
        let mut out = nonce.to_vec();
        out.extend(self.cipher.encrypt(&nonce, plain).expect("encryption of a buffer cannot fail"));
        B64.encode(out)
    }

    fn seal_bytes(&self, owner: &str, plain: &[u8]) -> String {
        let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
        let payload = Payload { msg: plain, aad: owner.as_bytes() };
        let sealed = self.cipher.encrypt(&nonce, payload).expect("encryption of a buffer cannot fail");
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        format!("{BOUND}{}", B64.encode(out))
    }

    fn open_raw(&self, sealed: &str, aad: &[u8]) -> Result<Vec<u8>> {
        let raw = B64.decode(sealed).context("a stored secret is not base64")?;
        if raw.len() < 24 {
            bail!("a stored secret is truncated");
        }
        let (nonce, body) = raw.split_at(24);
        self.cipher.decrypt(XNonce::from_slice(nonce), Payload { msg: body, aad }).map_err(|_| {
            anyhow::anyhow!(
                "cannot decrypt a stored secret: PAAS_SECRET_KEY differs from the key it was stored with, or it was moved from where it belongs"
            )
        })
    }
}

/// Bytes from the operating system's generator (getrandom), for every
/// secret the platform makes: tokens, keys, add-on credentials.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    rand::rngs::OsRng.fill_bytes(&mut b);
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

/// A file's SHA-256 (hex), read in chunks: backups' checksums, image
/// layers' IDs.
pub async fn sha256_of(path: &Path) -> Result<String> {
    use tokio::io::AsyncReadExt;
    let mut file = tokio::fs::File::open(path).await.with_context(|| format!("cannot read {}", path.display()))?;
    let mut sha = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = file.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        sha.update(&buf[..n]);
    }
    Ok(hex::encode(sha.finalize()))
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
        let sealed = c.seal("config:app-1", &vars);
        assert!(!sealed.contains("plaintext-value"));
        assert_eq!(c.open("config:app-1", &sealed).unwrap(), vars);
        let other = ConfigCipher::load(Some("another-key-another-key-another-key"), dir.path()).unwrap();
        assert!(other.open("config:app-1", &sealed).unwrap_err().to_string().contains("PAAS_SECRET_KEY"));
    }

    #[test]
    fn sealed_values_open_only_for_their_owner() {
        let dir = tempfile::tempdir().unwrap();
        let c = ConfigCipher::load(Some("0123456789abcdef0123456789abcdef"), dir.path()).unwrap();
        let vars = BTreeMap::from([("DATABASE_URL".to_owned(), "postgres://secret".to_owned())]);
        let sealed = c.seal(&config_owner("app-1"), &vars);
        let moved = c.open(&config_owner("app-2"), &sealed).unwrap_err().to_string();
        assert!(moved.contains("moved from where it belongs"), "{moved}");
        let url = c.seal_str(&drain_owner("app-1"), "https://logs.example.com/?token=t");
        assert_eq!(c.open_str(&drain_owner("app-1"), &url).unwrap(), "https://logs.example.com/?token=t");
        assert!(c.open_str(&drain_owner("app-2"), &url).is_err());
        assert!(c.open_str(&config_owner("app-1"), &url).is_err(), "a drain URL is not a config");
        assert_eq!(c.digest("d", "x"), c.digest("d", "x"));
        assert_ne!(c.digest("d", "x"), c.digest("e", "x"));

        // A value sealed the old way (no owner) does not open until it is
        // migrated, and then only for its owner.
        let legacy = c.seal_legacy(&serde_json::to_vec(&vars).unwrap());
        assert!(ConfigCipher::is_legacy(&legacy));
        assert!(c.open(&config_owner("app-1"), &legacy).unwrap_err().to_string().contains("not migrated"));
        let migrated = c.reseal_legacy(&config_owner("app-1"), &legacy).unwrap();
        assert!(!ConfigCipher::is_legacy(&migrated));
        assert_eq!(c.open(&config_owner("app-1"), &migrated).unwrap(), vars);
        assert!(c.open(&config_owner("app-2"), &migrated).is_err());
    }

    #[test]
    fn generated_key_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let a = ConfigCipher::load(None, dir.path()).unwrap();
        let b = ConfigCipher::load(None, dir.path()).unwrap();
        let sealed = a.seal("x", &BTreeMap::new());
        assert!(b.open("x", &sealed).is_ok());
    }

    #[test]
    fn short_key_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        assert!(ConfigCipher::load(Some("short"), dir.path()).is_err());
        let e = ConfigCipher::load(Some("0123456789abcdef0123456789abcde"), dir.path()).err().unwrap().to_string();
        assert!(e.contains("at least 32 random characters"), "31 characters are refused: {e}");
    }
}
