//! The router's TLS: certificates of custom domains by hostname, chosen by
//! SNI for each handshake ([`CertTable`] is the rustls resolver), and the
//! checks a certificate passes before it is kept: its key matches it and it
//! is valid for the domain it is added for.

use crate::crypto::ConfigCipher;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use std::collections::HashMap;
use std::sync::{Arc, RwLock};

/// Hostname (or `*.example.com`) -> its certificate and key. Shared by the
/// API (which changes it after the store has) and the HTTPS listener.
#[derive(Clone, Default, Debug)]
pub struct CertTable {
    certs: Arc<RwLock<HashMap<String, Arc<CertifiedKey>>>>,
}

impl CertTable {
    pub fn set(&self, hostname: &str, key: Arc<CertifiedKey>) {
        self.certs.write().expect("certs poisoned").insert(hostname.to_owned(), key);
    }

    pub fn remove(&self, hostname: &str) {
        self.certs.write().expect("certs poisoned").remove(hostname);
    }

    /// The certificate for a name: its own, else its wildcard's.
    fn find(&self, name: &str) -> Option<Arc<CertifiedKey>> {
        let name = name.to_ascii_lowercase();
        let certs = self.certs.read().expect("certs poisoned");
        if let Some(k) = certs.get(&name) {
            return Some(k.clone());
        }
        let (_, under) = name.split_once('.')?;
        certs.get(&format!("*.{under}")).cloned()
    }

    /// Serves every certificate the store keeps (at start).
    pub async fn load(&self, store: &crate::store::Store, cipher: &ConfigCipher) -> anyhow::Result<()> {
        for row in store.all_certs().await? {
            let key_pem = open_key(cipher, &row.app_id, &row.hostname, &row.key_sealed).unwrap_or_default();
            match certified_key(&row.chain_pem, &key_pem) {
                Ok(key) => self.set(&row.hostname, key),
                Err(e) => tracing::warn!(domain = %row.hostname, error = %e, "cannot load the certificate"),
            }
        }
        Ok(())
    }

    /// A rustls server configuration that picks certificates from here.
    pub fn server_config(&self) -> anyhow::Result<Arc<rustls::ServerConfig>> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_cert_resolver(Arc::new(self.clone()));
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }
}

/// The API listener's TLS (`PAAS_TLS_CERT`, `PAAS_TLS_KEY`): one
/// certificate for every name, checked as custom domains' are.
pub fn api_server_config(cert_file: &std::path::Path, key_file: &std::path::Path) -> anyhow::Result<Arc<rustls::ServerConfig>> {
    use anyhow::Context;
    let chain = std::fs::read_to_string(cert_file).with_context(|| format!("cannot read PAAS_TLS_CERT {}", cert_file.display()))?;
    let key = std::fs::read_to_string(key_file).with_context(|| format!("cannot read PAAS_TLS_KEY {}", key_file.display()))?;
    let certified = certified_key(&chain, &key).map_err(|e| anyhow::anyhow!("PAAS_TLS_CERT and PAAS_TLS_KEY: {e}"))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(OneCert(certified)));
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Answers every handshake with the same certificate.
#[derive(Debug)]
struct OneCert(Arc<CertifiedKey>);

impl ResolvesServerCert for OneCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.clone())
    }
}

impl ResolvesServerCert for CertTable {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.find(hello.server_name()?)
    }
}

/// ACME HTTP-01 challenges being answered: token -> key authorization. The
/// router answers `/.well-known/acme-challenge/TOKEN` from here, on any host.
#[derive(Clone, Default, Debug)]
pub struct Challenges {
    tokens: Arc<RwLock<HashMap<String, String>>>,
}

impl Challenges {
    pub fn set(&self, token: &str, key_authorization: &str) {
        self.tokens.write().expect("challenges poisoned").insert(token.to_owned(), key_authorization.to_owned());
    }

    pub fn remove(&self, token: &str) {
        self.tokens.write().expect("challenges poisoned").remove(token);
    }

    pub fn answer(&self, path: &str) -> Option<String> {
        let token = path.strip_prefix("/.well-known/acme-challenge/")?;
        self.tokens.read().expect("challenges poisoned").get(token).cloned()
    }
}

/// A certificate's private key, sealed for the store as config vars are,
/// bound to its app and hostname.
pub fn seal_key(cipher: &ConfigCipher, app_id: &str, hostname: &str, key_pem: &str) -> String {
    cipher.seal_str(&crate::crypto::cert_owner(app_id, hostname), key_pem)
}

/// The private key [`seal_key`] sealed for this app and hostname.
pub fn open_key(cipher: &ConfigCipher, app_id: &str, hostname: &str, sealed: &str) -> Option<String> {
    cipher.open_str(&crate::crypto::cert_owner(app_id, hostname), sealed).ok()
}

/// A PEM certificate chain and private key, checked: both parse, the key
/// is one rustls can sign with and belongs to the first certificate.
pub fn certified_key(chain_pem: &str, key_pem: &str) -> Result<Arc<CertifiedKey>, String> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(chain_pem.as_bytes())
        .collect::<Result<_, _>>()
        .map_err(|e| format!("the certificate is not valid PEM: {e:?}"))?;
    if chain.is_empty() {
        return Err("no certificate found: give the PEM file with -----BEGIN CERTIFICATE-----".into());
    }
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes())
        .map_err(|_| "no private key found: give the PEM file with -----BEGIN PRIVATE KEY----- (PKCS#8, RSA or EC)".to_owned())?;
    let signing = rustls::crypto::ring::sign::any_supported_type(&key)
        .map_err(|e| format!("the private key cannot be used: {e}"))?;
    let certified = CertifiedKey::new(chain, signing);
    certified.keys_match().map_err(|_| "the private key does not belong to the certificate".to_owned())?;
    Ok(Arc::new(certified))
}

/// Whether the (end-entity) certificate is valid for `hostname`; for a
/// wildcard domain, for a name one level under it.
pub fn covers(key: &CertifiedKey, hostname: &str) -> bool {
    let Some(end) = key.cert.first() else { return false };
    let Ok(cert) = webpki::EndEntityCert::try_from(end) else { return false };
    let name = match hostname.strip_prefix("*.") {
        Some(under) => format!("paas-check.{under}"),
        None => hostname.to_owned(),
    };
    let Ok(name) = ServerName::try_from(name) else { return false };
    cert.verify_is_valid_for_subject_name(&name).is_ok()
}
