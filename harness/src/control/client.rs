//! A client of a running landscape's control API, for `ppvnet pp` and the tests: every request
//! carries the run's control token.

use anyhow::Context;
use reqwest::{Method, RequestBuilder};

use crate::ready::ReadyFile;

/// Requests to the control API named by a ready file.
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    /// `http://127.0.0.1:PORT`, no trailing slash.
    base: String,
    token: String,
}

impl std::fmt::Debug for Client {
    // The token stays out of logs and panic messages.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// The client of the landscape behind `ready`. Refuses a `control_url` that is not plain
    /// HTTP on a loopback address: the token must not travel anywhere else.
    pub fn from_ready(ready: &ReadyFile) -> anyhow::Result<Self> {
        let url = url::Url::parse(&ready.control_url)
            .with_context(|| format!("control_url {:?} is not a URL", ready.control_url))?;
        let loopback = match url.host() {
            Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
            Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
            Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
            None => false,
        };
        anyhow::ensure!(
            url.scheme() == "http" && loopback,
            "control_url {} is not http:// on a loopback address",
            ready.control_url
        );
        anyhow::ensure!(
            !ready.control_token.is_empty(),
            "the ready file has no control_token (written by an older ppvnet?)"
        );
        let http = reqwest::Client::builder()
            // `ppvnet pp invoke` waits for the connector runtime, whose own limit is 120 s,
            // after a sign-in and consent; five minutes covers both with room to spare.
            .timeout(std::time::Duration::from_secs(300))
            // A proxy from the environment (HTTP_PROXY) would see the token; the control API
            // is on this machine and never redirects.
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(Self {
            http,
            base: ready.control_url.trim_end_matches('/').to_string(),
            token: ready.control_token.clone(),
        })
    }

    /// The control API's URL (`http://127.0.0.1:PORT`).
    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// A request to `path` (starting with `/`) with the token.
    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token)
    }

    pub fn get(&self, path: &str) -> RequestBuilder {
        self.request(Method::GET, path)
    }

    pub fn post(&self, path: &str) -> RequestBuilder {
        self.request(Method::POST, path)
    }

    pub fn delete(&self, path: &str) -> RequestBuilder {
        self.request(Method::DELETE, path)
    }

    /// Sends `method path` with an optional JSON body; returns the status and the answer as
    /// JSON (a JSON string holding the text when the answer is not JSON).
    pub async fn send_json(
        &self,
        method: Method,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> anyhow::Result<(u16, serde_json::Value)> {
        let mut request = self.request(method, path);
        if let Some(b) = body {
            request = request.json(b);
        }
        let r = request.send().await.with_context(|| {
            format!("the control API at {} (is `ppvnet up` running?)", self.base)
        })?;
        let status = r.status().as_u16();
        let bytes = r.bytes().await?;
        let answer = serde_json::from_slice(&bytes).unwrap_or_else(|_| {
            serde_json::Value::String(String::from_utf8_lossy(&bytes).into_owned())
        });
        Ok((status, answer))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ready(url: &str, token: &str) -> ReadyFile {
        ReadyFile {
            control_url: url.into(),
            control_token: token.into(),
            ..Default::default()
        }
    }

    #[test]
    fn only_loopback_http_with_a_token_is_accepted() {
        let c = Client::from_ready(&ready("http://127.0.0.1:7411/", "s3cret-token")).unwrap();
        assert_eq!(c.base_url(), "http://127.0.0.1:7411");
        assert!(!format!("{c:?}").contains("s3cret-token"));
        Client::from_ready(&ready("http://localhost:7411", "t")).unwrap();
        for url in [
            "https://127.0.0.1:7411",
            "http://192.0.2.1:7411",
            "http://example.com",
            "not a url",
        ] {
            assert!(Client::from_ready(&ready(url, "t")).is_err(), "{url}");
        }
        let err = Client::from_ready(&ready("http://127.0.0.1:7411", "")).unwrap_err();
        assert!(err.to_string().contains("no control_token"), "{err}");
    }
}
