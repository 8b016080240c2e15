//! Automatic certificates over ACME (`certs:auto:enable`): for each custom
//! domain of an app that asked, an order at `PAAS_ACME_DIRECTORY` (Let's
//! Encrypt by default) proven by HTTP-01 through the router, the issued
//! chain and a new key kept as any certificate is (key sealed), and served
//! by SNI at once. A loop renews certificates older than
//! `PAAS_ACME_RENEW_DAYS` (60: two thirds of Let's Encrypt's 90 days) and
//! issues them for domains added later. The
//! ACME account is made once; its credentials are kept sealed in the data
//! dir.

use crate::crypto::ConfigCipher;
use crate::store::Store;
use crate::tls::{CertTable, Challenges};
use anyhow::{anyhow, bail, Context, Result};
use bytes::Bytes;
use http_body_util::BodyExt;
use instant_acme::{Account, AuthorizationStatus, BodyWrapper, BytesResponse, ChallengeType, HttpClient, Identifier, NewAccount, NewOrder, OrderStatus, RetryPolicy};
use std::collections::BTreeMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Mutex;

/// The owner the ACME account's credentials are sealed for.
const ACCOUNT_OWNER: &str = "acme-account";

#[derive(Clone)]
pub struct Acme {
    inner: Arc<Inner>,
}

struct Inner {
    directory: String,
    ca_file: Option<PathBuf>,
    account_file: PathBuf,
    /// Automatic certificates older than this are renewed.
    renew_after: Duration,
    store: Store,
    cipher: ConfigCipher,
    certs: CertTable,
    challenges: Challenges,
    account: Mutex<Option<Account>>,
}

/// The file in the data dir that holds the sealed ACME account.
pub const ACCOUNT_FILE: &str = "acme-account.sealed";

/// The system's CA bundle: with the public roots built into reqwest, what
/// the ACME directory's certificate is checked against when no CA file is
/// named (Debian's ca-certificates, which an operator may add a CA to).
const SYSTEM_CA_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";

/// instant-acme's requests, sent by reqwest, the client the server already
/// has. instant-acme's own client (hyper-rustls with HTTP/2 and the
/// platform's verifier) compiled a second HTTPS stack for a few requests
/// a day (BENCHMARKS.md, "Less to compile and a lighter stack").
struct AcmeHttp(reqwest::Client);

impl AcmeHttp {
    /// Trusts only `ca_file` when one is named (a private or test ACME CA),
    /// else the public roots and the system's bundle.
    fn new(ca_file: Option<&Path>) -> Result<Self> {
        let builder = reqwest::Client::builder().connect_timeout(Duration::from_secs(10)).timeout(Duration::from_secs(60));
        let (builder, certs) = match ca_file {
            Some(ca) => {
                let pem = std::fs::read(ca).with_context(|| format!("cannot read the ACME CA file {}", ca.display()))?;
                let certs = reqwest::Certificate::from_pem_bundle(&pem).unwrap_or_default();
                if certs.is_empty() {
                    bail!("the ACME CA file {} holds no PEM certificate", ca.display());
                }
                (builder.tls_built_in_root_certs(false), certs)
            }
            // A host without the bundle has the public roots alone.
            None => match std::fs::read(SYSTEM_CA_BUNDLE) {
                Ok(pem) => (builder, reqwest::Certificate::from_pem_bundle(&pem).with_context(|| format!("{SYSTEM_CA_BUNDLE} is not a PEM bundle"))?),
                Err(_) => (builder, Vec::new()),
            },
        };
        let builder = certs.into_iter().fold(builder, |b, cert| b.add_root_certificate(cert));
        Ok(Self(builder.build().context("cannot make the ACME client")?))
    }
}

impl HttpClient for AcmeHttp {
    fn request(&self, req: hyper::Request<BodyWrapper<Bytes>>) -> Pin<Box<dyn Future<Output = Result<BytesResponse, instant_acme::Error>> + Send>> {
        let client = self.0.clone();
        Box::pin(async move {
            let (parts, body) = req.into_parts();
            // instant-acme's request bodies are whole JSON documents.
            let body = match body.collect().await {
                Ok(collected) => collected.to_bytes(),
                Err(never) => match never {},
            };
            let response = client.request(parts.method, parts.uri.to_string()).headers(parts.headers).body(body).send().await;
            let response = response.map_err(|e| instant_acme::Error::Other(Box::new(e)))?;
            Ok(BytesResponse::from(hyper::Response::from(response)))
        })
    }
}

impl Acme {
    /// Automatic certificates as `settings` say (the ACME directory, its CA,
    /// when to renew), the account kept sealed in `data_dir`.
    pub fn new(settings: &crate::settings::Certs, data_dir: &std::path::Path, store: Store, cipher: ConfigCipher, certs: CertTable, challenges: Challenges) -> Self {
        let inner = Inner {
            directory: settings.acme_directory.clone(),
            ca_file: settings.acme_ca_file.clone(),
            account_file: data_dir.join(ACCOUNT_FILE),
            renew_after: settings.acme_renew,
            store,
            cipher,
            certs,
            challenges,
            account: Mutex::default(),
        };
        Self { inner: Arc::new(inner) }
    }

    /// The ACME account: made at the first use, kept sealed on disk.
    async fn account(&self) -> Result<Account> {
        let inner = &self.inner;
        let mut cached = inner.account.lock().await;
        if let Some(a) = cached.as_ref() {
            return Ok(a.clone());
        }
        let builder = Account::builder_with_http(Box::new(AcmeHttp::new(inner.ca_file.as_deref())?));
        let saved = std::fs::read_to_string(&inner.account_file).ok().and_then(|s| {
            // A file sealed before owners were bound is migrated as it is read.
            let s = if ConfigCipher::is_legacy(&s) { inner.cipher.reseal_legacy(ACCOUNT_OWNER, &s).ok()? } else { s };
            inner.cipher.open(ACCOUNT_OWNER, &s).ok()
        });
        let account = match saved.and_then(|m| m.get("credentials").cloned()) {
            Some(json) if serde_json::from_str::<serde_json::Value>(&json).is_ok_and(|v| v["directory"] == inner.directory.as_str()) => {
                builder.from_credentials(serde_json::from_str(&json)?).await.context("the saved ACME account was refused")?
            }
            _ => {
                let new = NewAccount { contact: &[], terms_of_service_agreed: true, only_return_existing: false };
                let (account, credentials) = builder
                    .create(&new, inner.directory.clone(), None)
                    .await
                    .with_context(|| format!("cannot make an ACME account at {}", inner.directory))?;
                let mut json: serde_json::Value = serde_json::to_value(&credentials)?;
                json["directory"] = serde_json::Value::from(inner.directory.clone());
                let sealed = inner.cipher.seal(ACCOUNT_OWNER, &BTreeMap::from([("credentials".to_owned(), json.to_string())]));
                std::fs::write(&inner.account_file, sealed).context("cannot keep the ACME account")?;
                account
            }
        };
        *cached = Some(account.clone());
        Ok(account)
    }

    /// Gets a certificate for one hostname of an app over ACME (HTTP-01,
    /// answered by the router), keeps it and serves it.
    pub async fn issue(&self, app_id: &str, hostname: &str) -> Result<()> {
        if hostname.starts_with("*.") {
            bail!("{hostname}: wildcard certificates need a DNS-01 challenge, which this platform does not answer; add one with `paas certs:add`");
        }
        let account = self.account().await?;
        let identifiers = [Identifier::Dns(hostname.to_owned())];
        let mut order = account.new_order(&NewOrder::new(&identifiers)).await.context("the ACME server refused the order")?;
        let mut tokens = Vec::new();
        let mut authorizations = order.authorizations();
        while let Some(authz) = authorizations.next().await {
            let mut authz = authz?;
            if authz.status == AuthorizationStatus::Valid {
                continue;
            }
            let mut challenge = authz.challenge(ChallengeType::Http01).ok_or_else(|| anyhow!("the ACME server offers no HTTP-01 challenge"))?;
            self.inner.challenges.set(&challenge.token, challenge.key_authorization().as_str());
            tokens.push(challenge.token.clone());
            challenge.set_ready().await?;
        }
        let retries = RetryPolicy::default().timeout(Duration::from_secs(120));
        let result = async {
            let status = order.poll_ready(&retries).await?;
            if status != OrderStatus::Ready {
                bail!("the ACME server did not validate {hostname} ({status:?}): is its DNS pointing at this router on port 80?");
            }
            let key_pem = order.finalize().await?;
            let chain_pem = order.poll_certificate(&retries).await?;
            Ok((chain_pem, key_pem))
        }
        .await;
        for t in &tokens {
            self.inner.challenges.remove(t);
        }
        let (chain_pem, key_pem) = result?;
        let key = crate::tls::certified_key(&chain_pem, &key_pem).map_err(|e| anyhow!(e))?;
        let sealed = crate::tls::seal_key(&self.inner.cipher, app_id, hostname, &key_pem);
        self.inner.store.put_cert(app_id, hostname, &chain_pem, &sealed, "auto").await?;
        self.inner.certs.set(hostname, key);
        tracing::info!(domain = %hostname, "certificate issued over ACME");
        Ok(())
    }

    /// Issues what is missing or due for renewal for every app with
    /// automatic certificates; returns (hostname, error) of failures.
    pub async fn renew_due(&self) -> Result<Vec<(String, String)>> {
        let mut failed = Vec::new();
        for app_id in self.inner.store.acme_apps().await? {
            failed.extend(self.renew_app(&app_id).await?);
        }
        Ok(failed)
    }

    /// Issues what one app lacks or is due for renewal: its custom domains
    /// (not wildcards) without a certificate, and automatic ones older than
    /// `PAAS_ACME_RENEW_DAYS`. A certificate the user added is theirs to renew.
    pub async fn renew_app(&self, app_id: &str) -> Result<Vec<(String, String)>> {
        let store = &self.inner.store;
        let certs = store.certs(app_id).await?;
        let mut failed = Vec::new();
        for (hostname, _) in store.domains(app_id).await? {
            let due = match certs.iter().find(|c| c.hostname == hostname) {
                None => !hostname.starts_with("*."),
                Some(c) => c.source == "auto" && is_older_than(&c.created_at, self.inner.renew_after),
            };
            if due {
                if let Err(e) = self.issue(app_id, &hostname).await {
                    tracing::warn!(domain = %hostname, error = %format!("{e:#}"), "cannot get a certificate over ACME");
                    failed.push((hostname, format!("{e:#}")));
                }
            }
        }
        Ok(failed)
    }

    /// Renews and issues every `every`.
    pub fn spawn_renewals(&self, every: Duration) -> tokio::task::JoinHandle<()> {
        let this = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.tick().await;
            loop {
                tick.tick().await;
                if let Err(e) = this.renew_due().await {
                    tracing::warn!(error = %format!("{e:#}"), "certificate renewal pass failed");
                }
            }
        })
    }
}

fn is_older_than(rfc3339: &str, age: Duration) -> bool {
    chrono::DateTime::parse_from_rfc3339(rfc3339)
        .map(|t| chrono::Utc::now().signed_duration_since(t).to_std().is_ok_and(|d| d > age))
        .unwrap_or(true)
}

#[cfg(test)]
mod tests {
    use super::AcmeHttp;

    #[test]
    fn an_acme_ca_file_must_hold_a_certificate_and_say_which_file_is_wrong() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.pem");
        let err = AcmeHttp::new(Some(&missing)).err().expect("a missing CA file is refused").to_string();
        assert!(err.contains("cannot read the ACME CA file") && err.contains("missing.pem"), "{err}");
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        let err = AcmeHttp::new(Some(&empty)).err().expect("a CA file without a certificate is refused").to_string();
        assert!(err.contains("no PEM certificate"), "{err}");
        // No file named: the public roots and the system's bundle.
        assert!(AcmeHttp::new(None).is_ok());
    }
}
