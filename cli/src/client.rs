//! The API client: where the API is, which token to send, typed requests
//! whose paths are built from segments with the `url` crate (each segment
//! percent-encoded, so no user input can change a path), and turning the
//! API's answers into values or errors with their exit code
//! ([`crate::exit`]). Credentials come from `PAAS_API_URL`/`PAAS_TOKEN`,
//! else from what `paas login` saved.

use crate::exit;
use anyhow::{anyhow, Context, Result};
use paas_wire::ErrorBody;
use reqwest::blocking::{Client as Http, RequestBuilder, Response};
use reqwest::{Method, Url};
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
            .ok_or_else(|| exit::unreachable("no API URL: run `paas login --api-url http://HOST:5000`, or set PAAS_API_URL")),
    }
}

pub fn token() -> Result<String> {
    match std::env::var("PAAS_TOKEN").ok().filter(|v| !v.is_empty()) {
        Some(t) => Ok(t),
        None => saved().map(|c| c.token).ok_or_else(|| exit::unreachable("not logged in: run `paas login`, or set PAAS_TOKEN")),
    }
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

/// The API at one URL with one token.
pub struct Client {
    http: Http,
    base: Url,
    token: String,
}

impl Client {
    /// The client of the saved (or `PAAS_*`) credentials.
    pub fn new() -> Result<Self> {
        Self::build(&api_url()?, &token()?, None)
    }

    /// A client of `base` and `token` (`paas login` checks them with it).
    pub fn with(base: &str, token: &str) -> Result<Self> {
        Self::build(base, token, Some(std::time::Duration::from_secs(30)))
    }

    /// A client without a token, for signing in.
    pub fn anonymous(base: &str) -> Result<Self> {
        Self::with(base, "")
    }

    fn build(base: &str, token: &str, timeout: Option<std::time::Duration>) -> Result<Self> {
        let base = Url::parse(base.trim_end_matches('/'))
            .map_err(|e| exit::usage(format!("the API URL {base:?} is not a URL ({e}): give it like http://HOST:5000")))?;
        if !matches!(base.scheme(), "http" | "https") || base.cannot_be_a_base() {
            return Err(exit::usage(format!("the API URL {base} is not http:// or https://")));
        }
        let http = match timeout {
            Some(t) => http()?.timeout(t),
            None => http()?.timeout(None),
        };
        Ok(Self { http: http.build()?, base, token: token.to_owned() })
    }

    pub fn base(&self) -> &Url {
        &self.base
    }

    /// The URL of `segments` under the API's base, each segment encoded.
    pub fn url(&self, segments: &[&str]) -> Url {
        let mut url = self.base.clone();
        url.path_segments_mut().expect("an http(s) URL has a path").pop_if_empty().extend(segments);
        url
    }

    fn request(&self, method: Method, segments: &[&str], query: &[(&str, String)]) -> RequestBuilder {
        let mut url = self.url(segments);
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        self.http.request(method, url).bearer_auth(&self.token)
    }

    fn send(&self, rb: RequestBuilder) -> Result<Response> {
        rb.send().map_err(|e| unreachable(&self.base, &e))
    }

    pub fn get<T: DeserializeOwned>(&self, segments: &[&str]) -> Result<T> {
        decode(self.send(self.request(Method::GET, segments, &[]))?)
    }

    pub fn get_with<T: DeserializeOwned>(&self, segments: &[&str], query: &[(&str, String)]) -> Result<T> {
        decode(self.send(self.request(Method::GET, segments, query))?)
    }

    pub fn post<B: Serialize, T: DeserializeOwned>(&self, segments: &[&str], query: &[(&str, String)], body: &B) -> Result<T> {
        decode(self.send(self.request(Method::POST, segments, query).json(body))?)
    }

    pub fn patch<B: Serialize, T: DeserializeOwned>(&self, segments: &[&str], query: &[(&str, String)], body: &B) -> Result<T> {
        decode(self.send(self.request(Method::PATCH, segments, query).json(body))?)
    }

    pub fn put<B: Serialize, T: DeserializeOwned>(&self, segments: &[&str], body: &B) -> Result<T> {
        decode(self.send(self.request(Method::PUT, segments, &[]).json(body))?)
    }

    pub fn delete<T: DeserializeOwned>(&self, segments: &[&str]) -> Result<T> {
        decode(self.send(self.request(Method::DELETE, segments, &[]))?)
    }

    pub fn delete_with<T: DeserializeOwned>(&self, segments: &[&str], query: &[(&str, String)]) -> Result<T> {
        decode(self.send(self.request(Method::DELETE, segments, query))?)
    }

    /// A POST whose body is a file, streamed.
    pub fn upload<T: DeserializeOwned>(&self, segments: &[&str], query: &[(&str, String)], file: std::fs::File) -> Result<T> {
        let rb = self.request(Method::POST, segments, query).header("content-type", "application/octet-stream");
        decode(self.send(rb.body(reqwest::blocking::Body::new(file)))?)
    }

    /// A POST of a file of `content_type`, streamed, whose successful
    /// answer is read line by line as it arrives (a build's output).
    pub fn upload_stream(&self, segments: &[&str], content_type: &str, file: std::fs::File) -> Result<std::io::BufReader<Response>> {
        self.post_stream(segments, content_type, reqwest::blocking::Body::new(file))
    }

    /// A POST of `body`, whose successful answer is read line by line.
    pub fn post_stream(&self, segments: &[&str], content_type: &str, body: impl Into<reqwest::blocking::Body>) -> Result<std::io::BufReader<Response>> {
        let rb = self.request(Method::POST, segments, &[]).header("content-type", content_type);
        let resp = self.send(rb.body(body))?;
        if !resp.status().is_success() {
            return decode::<serde_json::Value>(resp).and_then(|_| Err(anyhow!("the API answered without the build's output")));
        }
        Ok(std::io::BufReader::new(resp))
    }

    /// A GET whose successful answer is bytes to read as they come (a
    /// backup's file); an error answer is the API's error.
    pub fn download(&self, segments: &[&str]) -> Result<Response> {
        let resp = self.send(self.request(Method::GET, segments, &[]))?;
        if !resp.status().is_success() {
            return decode::<serde_json::Value>(resp).and_then(|_| Err(anyhow!("the API answered without the file")));
        }
        Ok(resp)
    }

    /// A request whose success has no body (202, 204).
    pub fn empty(&self, method: Method, segments: &[&str]) -> Result<()> {
        let resp = self.send(self.request(method, segments, &[]))?;
        if resp.status().is_success() {
            return Ok(());
        }
        decode::<serde_json::Value>(resp).map(|_| ())
    }

    /// A GET whose answer is read as it arrives, line by line (a log tail).
    pub fn stream(&self, segments: &[&str], query: &[(&str, String)]) -> Result<std::io::BufReader<Response>> {
        let resp = self.send(self.request(Method::GET, segments, query))?;
        if !resp.status().is_success() {
            return decode::<serde_json::Value>(resp).and_then(|_| Err(anyhow!("the API answered without a stream")));
        }
        Ok(std::io::BufReader::new(resp))
    }
}

/// The path of an app's resource: `/apps/APP/rest...`.
pub fn app_path<'a>(app: &'a str, rest: &[&'a str]) -> Vec<&'a str> {
    let mut path = vec!["apps", app];
    path.extend_from_slice(rest);
    path
}

fn unreachable(base: &Url, e: &reqwest::Error) -> anyhow::Error {
    let mut cause = String::new();
    let mut source: Option<&dyn std::error::Error> = Some(e);
    while let Some(s) = source {
        cause = s.to_string();
        source = s.source();
    }
    exit::unreachable(format!("cannot reach the paas API at {base}: {cause}"))
}

/// The answer as `T`, or the API's error: a 4xx is a refusal (its message
/// says what to do), a 5xx a failure of the server's.
pub fn decode<T: DeserializeOwned>(resp: Response) -> Result<T> {
    let status = resp.status();
    let bytes = resp.bytes().context("the API response ended early")?;
    if status.is_success() {
        return serde_json::from_slice(&bytes).context("the API answered with unexpected JSON");
    }
    let message = match serde_json::from_slice::<ErrorBody>(&bytes) {
        Ok(e) => e.message,
        Err(_) => format!("the API answered {status}: {}", String::from_utf8_lossy(&bytes).trim()),
    };
    if status.is_client_error() {
        Err(exit::refused(message))
    } else {
        Err(anyhow!(message))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_are_encoded_and_cannot_climb() {
        let c = Client::build("http://127.0.0.1:5000/base/", "t", None).unwrap();
        assert_eq!(c.url(&["apps", "a", "releases", "v1"]).as_str(), "http://127.0.0.1:5000/base/apps/a/releases/v1");
        assert_eq!(c.url(&["apps", "a", "domains", "../../x y"]).as_str(), "http://127.0.0.1:5000/base/apps/a/domains/..%2F..%2Fx%20y");
        assert_eq!(c.url(&["apps", "a", "log-drains", "syslog://h:1?x"]).path(), "/base/apps/a/log-drains/syslog:%2F%2Fh:1%3Fx");
        assert!(Client::build("ftp://h", "t", None).is_err());
    }
}
