//! The API client: where the API is, which token to send, and turning API
//! errors into messages. Credentials come from `PAAS_API_URL`/`PAAS_TOKEN`,
//! else from what `paas login` saved.

use anyhow::{anyhow, bail, Context, Result};
use paas_wire::ErrorBody;
use reqwest::blocking::{Client as Http, RequestBuilder, Response};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Credentials {
    pub api_url: String,
    pub token: String,
}

pub fn credentials_path() -> Result<PathBuf> {
    let dir = dirs::config_dir().context("cannot find a config directory: set HOME")?;
    Ok(dir.join("paas").join("credentials.json"))
}

fn saved() -> Option<Credentials> {
    let text = std::fs::read_to_string(credentials_path().ok()?).ok()?;
    serde_json::from_str(&text).ok()
}

pub fn api_url() -> Result<String> {
    match std::env::var("PAAS_API_URL").ok().filter(|v| !v.is_empty()) {
        Some(url) => Ok(url.trim_end_matches('/').to_owned()),
        None => saved()
            .map(|c| c.api_url)
            .ok_or_else(|| anyhow!("no API URL: run `paas login --api-url http://HOST:5000`, or set PAAS_API_URL")),
    }
}

pub fn token() -> Result<String> {
    match std::env::var("PAAS_TOKEN").ok().filter(|v| !v.is_empty()) {
        Some(t) => Ok(t),
        None => saved()
            .map(|c| c.token)
            .ok_or_else(|| anyhow!("not logged in: run `paas login`, or set PAAS_TOKEN")),
    }
}

pub struct Client {
    http: Http,
    base: String,
    token: String,
}

/// An HTTP client that also trusts the CA in `PAAS_CA_FILE` (PEM), for an
/// API served over HTTPS with a certificate of the operator's own CA.
fn http() -> Result<reqwest::blocking::ClientBuilder> {
    let mut builder = Http::builder();
    if let Some(file) = std::env::var_os("PAAS_CA_FILE").filter(|f| !f.is_empty()) {
        let pem = std::fs::read(&file).with_context(|| format!("cannot read PAAS_CA_FILE {}", file.to_string_lossy()))?;
        for cert in reqwest::Certificate::from_pem_bundle(&pem).context("PAAS_CA_FILE is not a PEM file of certificates")? {
            builder = builder.add_root_certificate(cert);
        }
    }
    Ok(builder)
}

impl Client {
    pub fn new() -> Result<Self> {
        Ok(Self { http: http()?.timeout(None).build()?, base: api_url()?, token: token()? })
    }

    pub fn with(base: &str, token: &str) -> Result<Self> {
        Ok(Self { http: http()?.build()?, base: base.trim_end_matches('/').to_owned(), token: token.to_owned() })
    }

    fn req(&self, method: reqwest::Method, path: &str) -> RequestBuilder {
        self.http.request(method, format!("{}{path}", self.base)).bearer_auth(&self.token)
    }

    fn send<T: DeserializeOwned>(&self, rb: RequestBuilder) -> Result<T> {
        let resp = rb.send().with_context(|| format!("cannot reach the paas API at {}", self.base))?;
        decode(resp)
    }

    pub fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T> {
        self.send(self.req(reqwest::Method::GET, path))
    }

    pub fn post<B: Serialize, T: DeserializeOwned>(&self, path: &str, body: &B) -> Result<T> {
        self.send(self.req(reqwest::Method::POST, path).json(body))
    }

    pub fn patch<B: Serialize, T: DeserializeOwned>(&self, path: &str, body: &B) -> Result<T> {
        self.send(self.req(reqwest::Method::PATCH, path).json(body))
    }

    pub fn delete<T: DeserializeOwned>(&self, path: &str) -> Result<T> {
        self.send(self.req(reqwest::Method::DELETE, path))
    }

    /// A GET whose answer is read as it arrives, line by line (a log tail).
    pub fn stream(&self, path: &str, query: &[(&str, String)]) -> Result<std::io::BufReader<Response>> {
        let resp = self
            .req(reqwest::Method::GET, path)
            .query(query)
            .send()
            .with_context(|| format!("cannot reach the paas API at {}", self.base))?;
        if !resp.status().is_success() {
            return decode::<serde_json::Value>(resp).and_then(|_| bail!("the API answered without a stream"));
        }
        Ok(std::io::BufReader::new(resp))
    }

    /// A POST without a body whose success has none either (202, 204).
    pub fn post_empty(&self, path: &str) -> Result<()> {
        self.send_empty(reqwest::Method::POST, path)
    }

    /// A DELETE whose success has no body (204).
    pub fn delete_empty(&self, path: &str) -> Result<()> {
        self.send_empty(reqwest::Method::DELETE, path)
    }

    fn send_empty(&self, method: reqwest::Method, path: &str) -> Result<()> {
        let resp = self.req(method, path).send().with_context(|| format!("cannot reach the paas API at {}", self.base))?;
        if resp.status().is_success() {
            return Ok(());
        }
        decode::<serde_json::Value>(resp).map(|_| ())
    }
}

fn decode<T: DeserializeOwned>(resp: Response) -> Result<T> {
    let status = resp.status();
    let bytes = resp.bytes().context("the API response ended early")?;
    if status.is_success() {
        return serde_json::from_slice(&bytes).context("the API answered with unexpected JSON");
    }
    match serde_json::from_slice::<ErrorBody>(&bytes) {
        Ok(e) => bail!("{}", e.message),
        Err(_) => bail!("the API answered {status}: {}", String::from_utf8_lossy(&bytes).trim()),
    }
}
