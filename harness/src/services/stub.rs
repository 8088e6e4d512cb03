//! A stubbed third-party API (`implementation: {kind: stub, mappings: FILE}`): a wiremock
//! server on 127.0.0.1 holds the request matchers and canned responses, and a front on the
//! API's faces (its host name, the run's TLS, the fabric's rules) forwards every request to it.
//! So a connector or backend reaches the stub exactly as it would reach the real API, and
//! tests read what it received ([`Stub::received`]).
//!
//! The mappings file (YAML or JSON, relative to the landscape file):
//!
//! ```yaml
//! mappings:
//!   - request: { method: GET, path: /v1.0/me, headers: { accept: application/json }, query: { $select: id } }
//!     response: { status: 200, headers: { x-stub: "1" }, jsonBody: { id: "42" }, delayMs: 0 }
//! ```
//!
//! `request.path` is exact; `pathRegex` may be given instead. Headers and query parameters
//! must be present with exactly these values. A response has `jsonBody` or `body` (text) or
//! neither. Steps add mappings at run time ([`Stub::answer`]); theirs win over the file's.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::Response;
use serde::Deserialize;
use wiremock::matchers::{header, method, path, path_regex, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::services::launch::{Launch, Tasks};

/// Largest request body the front forwards (a stub stands for an API, not a file store).
const MAX_BODY: usize = 4 * 1024 * 1024;

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Mappings {
    #[serde(default)]
    pub mappings: Vec<Mapping>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Mapping {
    pub request: RequestMatch,
    pub response: Canned,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RequestMatch {
    #[serde(default)]
    pub method: Option<String>,
    #[serde(default)]
    pub path: Option<String>,
    #[serde(default)]
    pub path_regex: Option<String>,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    #[serde(default)]
    pub query: BTreeMap<String, String>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Canned {
    pub status: u16,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    #[serde(default)]
    pub json_body: Option<serde_json::Value>,
    #[serde(default)]
    pub body: Option<String>,
    #[serde(default)]
    pub delay_ms: u64,
}

impl Mapping {
    fn mock(&self) -> anyhow::Result<Mock> {
        let r = &self.request;
        let mut mock = Mock::given(method(
            r.method
                .as_deref()
                .unwrap_or("GET")
                .to_ascii_uppercase()
                .as_str(),
        ));
        match (&r.path, &r.path_regex) {
            (Some(p), None) => mock = mock.and(path(p.as_str())),
            (None, Some(re)) => {
                regex_check(re)?;
                mock = mock.and(path_regex(re.as_str()));
            }
            (None, None) => {}
            (Some(_), Some(_)) => anyhow::bail!("a request has `path` or `pathRegex`, not both"),
        }
        for (k, v) in &r.headers {
            mock = mock.and(header(k.as_str(), v.as_str()));
        }
        for (k, v) in &r.query {
            mock = mock.and(query_param(k.as_str(), v.as_str()));
        }
        Ok(mock.respond_with(self.response.template()?))
    }
}

/// wiremock panics on a bad regex; refuse it with a message instead (same regex engine).
fn regex_check(re: &str) -> anyhow::Result<()> {
    cucumber::codegen::Regex::new(re)
        .map(|_| ())
        .map_err(|e| anyhow::anyhow!("pathRegex '{re}' is not a regular expression: {e}"))
}

impl Canned {
    fn template(&self) -> anyhow::Result<ResponseTemplate> {
        anyhow::ensure!(
            (100..=599).contains(&self.status),
            "status {} is not an HTTP status",
            self.status
        );
        anyhow::ensure!(
            self.json_body.is_none() || self.body.is_none(),
            "a response has `jsonBody` or `body`, not both"
        );
        let mut t = ResponseTemplate::new(self.status);
        if let Some(j) = &self.json_body {
            t = t.set_body_json(j);
        }
        if let Some(b) = &self.body {
            t = t.set_body_string(b.clone());
        }
        for (k, v) in &self.headers {
            t = t.insert_header(k.as_str(), v.as_str());
        }
        Ok(t.set_delay(Duration::from_millis(self.delay_ms)))
    }
}

/// Reads a mappings file (YAML or JSON) and checks every mapping converts.
pub fn load(file: &Path) -> anyhow::Result<Vec<Mapping>> {
    let text = std::fs::read_to_string(file)
        .with_context(|| format!("stub mappings {}", file.display()))?;
    let m: Mappings = serde_norway::from_str(&text)
        .with_context(|| format!("stub mappings {}", file.display()))?;
    for (i, mapping) in m.mappings.iter().enumerate() {
        let _checked = mapping
            .mock()
            .with_context(|| format!("stub mappings {}: mappings[{i}]", file.display()))?;
    }
    Ok(m.mappings)
}

/// A running stub: what tests add to it and read from it.
#[derive(Clone)]
pub struct Stub {
    server: Arc<MockServer>,
}

impl std::fmt::Debug for Stub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stub")
            .field("uri", &self.server.uri())
            .finish()
    }
}

/// A request the stub received, as its front forwarded it.
pub type Received = wiremock::Request;

impl Stub {
    /// Adds a mapping that wins over the file's (priority 1; the file's have wiremock's 5).
    pub async fn answer(&self, mapping: &Mapping) -> anyhow::Result<()> {
        self.server.register(mapping.mock()?.with_priority(1)).await;
        Ok(())
    }

    /// Every request received so far, oldest first.
    pub async fn received(&self) -> Vec<Received> {
        self.server.received_requests().await.unwrap_or_default()
    }
}

#[derive(Clone)]
struct Front {
    client: reqwest::Client,
    base: String,
}

/// Hop-by-hop headers a forwarding front must not pass on (RFC 9110 §7.6.1).
const HOP_BY_HOP: [&str; 7] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

async fn forward(State(front): State<Front>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let target = format!(
        "{}{}",
        front.base,
        parts.uri.path_and_query().map_or("/", |p| p.as_str())
    );
    let bad_gateway = |why: String| {
        Response::builder()
            .status(502)
            .header("content-type", "text/plain")
            .body(Body::from(format!("stub front: {why}")))
            .unwrap_or_default()
    };
    let bytes = match axum::body::to_bytes(body, MAX_BODY).await {
        Ok(b) => b,
        Err(e) => return bad_gateway(format!("request body: {e}")),
    };
    let mut out = front.client.request(parts.method, target).body(bytes);
    for (k, v) in &parts.headers {
        if !HOP_BY_HOP.contains(&k.as_str()) {
            out = out.header(k, v);
        }
    }
    let answer = match out.send().await {
        Ok(a) => a,
        Err(e) => return bad_gateway(e.to_string()),
    };
    let mut resp = Response::builder().status(answer.status());
    for (k, v) in answer.headers() {
        if !HOP_BY_HOP.contains(&k.as_str()) {
            resp = resp.header(k, v);
        }
    }
    match answer.bytes().await {
        Ok(b) => resp.body(Body::from(b)).unwrap_or_default(),
        Err(e) => bad_gateway(format!("response body: {e}")),
    }
}

/// Starts the stub of one API on `endpoints` (its faces, App Service's 403 already split off
/// by the caller) and loads its mappings file, if any.
pub async fn start(
    run: Launch<'_>,
    api: &crate::scenario::model::Api,
    mappings: Option<&Path>,
    endpoints: Vec<ppvnet_common::Endpoint>,
    leaf: &crate::pki::Leaf,
    tasks: &mut Tasks,
) -> anyhow::Result<Stub> {
    let loaded = match mappings {
        Some(m) => {
            load(&run.landscape.base_dir.join(m)).with_context(|| format!("api {}", api.name))?
        }
        None => Vec::new(),
    };
    let server = MockServer::start().await;
    for m in &loaded {
        server.register(m.mock()?).await;
    }
    let front = Front {
        client: reqwest::Client::builder().no_proxy().build()?,
        base: server.uri(),
    };
    let router = axum::Router::new().fallback(forward).with_state(front);
    let tls = run.pki.server_config(leaf)?;
    // App Service evaluates public network access before the app sees a request.
    let public_enabled =
        api.public_network_access == crate::scenario::model::PublicNetworkAccess::Enabled;
    let (refused, endpoints): (Vec<_>, Vec<_>) = endpoints
        .into_iter()
        .partition(|e| !public_enabled && e.ingress == ppvnet_common::Face::Public);
    if !refused.is_empty() {
        let (tls, front, name) = (tls.clone(), run.stopped(), api.name.clone());
        tasks.spawn(async move {
            ppvnet_common::serve(
                refused,
                crate::services::program::app_service_forbidden(),
                Some(tls),
                front,
            )
            .await
            .with_context(|| format!("api {name} (stub): public face"))
        });
    }
    let shutdown = run.stopped();
    let name = api.name.clone();
    tasks.spawn(async move {
        ppvnet_common::serve(endpoints, router, Some(tls), shutdown)
            .await
            .with_context(|| format!("api {name} (stub)"))
    });
    Ok(Stub {
        server: Arc::new(server),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mappings(text: &str) -> anyhow::Result<Vec<Mapping>> {
        let dir = tempfile::tempdir()?;
        let file = dir.path().join("m.yaml");
        std::fs::write(&file, text)?;
        load(&file)
    }

    #[test]
    fn the_shipped_mappings_file_loads() {
        let file =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/stubs/cases-outage.yaml");
        assert_eq!(load(&file).expect("loads").len(), 2);
    }

    #[test]
    fn bad_mappings_are_refused_with_the_reason() {
        for (text, why) in [
            (
                "mappings: [{request: {path: /a}, response: {status: 99}}]",
                "not an HTTP status",
            ),
            (
                "mappings: [{request: {pathRegex: '('}, response: {status: 200}}]",
                "not a regular expression",
            ),
            (
                "mappings: [{request: {path: /a, pathRegex: a}, response: {status: 200}}]",
                "not both",
            ),
            (
                "mappings: [{request: {}, response: {status: 200, body: x, jsonBody: 1}}]",
                "not both",
            ),
            (
                "mappings: [{request: {}, response: {status: 200, color: red}}]",
                "unknown field",
            ),
        ] {
            let e = format!("{:#}", mappings(text).expect_err(text));
            assert!(e.contains(why), "{text}: {e}");
        }
        let e = format!(
            "{:#}",
            load(Path::new("/no/such/mappings.yaml")).expect_err("missing")
        );
        assert!(e.contains("/no/such/mappings.yaml"), "{e}");
    }

    #[tokio::test]
    async fn a_mapping_answers_with_status_headers_body_and_steps_win_over_the_file() {
        let server = MockServer::start().await;
        let file = mappings(
            "mappings: [{request: {method: get, path: /me, query: {a: '1'}}, response: {status: 200, headers: {x-stub: f}, jsonBody: {who: file}}}]",
        )
        .expect("loads");
        server.register(file[0].mock().expect("a mock")).await;
        let stub = Stub {
            server: Arc::new(server),
        };
        let client = reqwest::Client::builder()
            .no_proxy()
            .build()
            .expect("a client");
        let url = format!("{}/me?a=1", stub.server.uri());
        let r = client.get(&url).send().await.expect("answers");
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["x-stub"], "f");
        assert_eq!(
            r.json::<serde_json::Value>().await.expect("JSON")["who"],
            "file"
        );
        // Without the query parameter the mapping does not match.
        let r = client
            .get(format!("{}/me", stub.server.uri()))
            .send()
            .await
            .expect("answers");
        assert_eq!(r.status(), 404);
        let step = Mapping {
            request: RequestMatch {
                method: Some("GET".into()),
                path: Some("/me".into()),
                ..Default::default()
            },
            response: Canned {
                status: 201,
                body: Some("step".into()),
                ..Default::default()
            },
        };
        stub.answer(&step).await.expect("added");
        let r = client.get(&url).send().await.expect("answers");
        assert_eq!(r.status(), 201);
        assert_eq!(r.text().await.expect("text"), "step");
        assert_eq!(stub.received().await.len(), 3);
    }
}
