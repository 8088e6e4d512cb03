//! The control API admits only its own clients: each refusal (no token, a wrong token, another
//! `Host`, a foreign `Origin`) on a running landscape, on top-level and nested routes, and the
//! run's token from the ready file working everywhere.
//!
//! Requests are written by hand on a TCP connection, so the test controls every header (a
//! client library would fill in `Host` itself).

use std::net::SocketAddr;

use ppvnet::fabric::FabricKind;
use ppvnet::up::{self, Running, UpOptions};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A running minimal landscape (it has a Power Platform, so every nested router is there).
async fn start() -> (Running, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let file =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/examples/minimal.yaml");
    let landscape = ppvnet::scenario::load(&file).unwrap_or_else(|e| panic!("{e}"));
    let opts = UpOptions::new(FabricKind::Loopback, dir.path().join("ready.json"));
    let running = up::start(&landscape, &opts)
        .await
        .unwrap_or_else(|e| panic!("{e:#}"));
    (running, dir)
}

fn address(r: &Running) -> SocketAddr {
    r.ready()
        .control_url
        .trim_start_matches("http://")
        .parse()
        .unwrap()
}

/// An answer: status, the head's header lines (lower-cased names) and the JSON body.
#[derive(Debug)]
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: Value,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Sends one HTTP/1.1 request with exactly `headers` (plus `Connection: close`).
async fn send(addr: SocketAddr, method: &str, path: &str, headers: &[(&str, &str)]) -> Answer {
    let mut request = format!("{method} {path} HTTP/1.1\r\nConnection: close\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("Content-Length: 0\r\n\r\n");
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.unwrap();
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP answer: {text}"));
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    // The control API answers small bodies with Content-Length, never chunked.
    let body = serde_json::from_str(body).unwrap_or(Value::String(body.to_string()));
    Answer {
        status,
        headers,
        body,
    }
}

/// Routes of the control router itself and of each nested router.
const ROUTES: [(&str, &str); 5] = [
    ("GET", "/clock"),
    ("POST", "/clock/reset"),
    ("GET", "/entra/keys"),
    ("GET", "/network/state"),
    ("GET", "/powerplatform/connections"),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn control_api_without_a_token_is_401_with_a_bearer_challenge() {
    let (running, _dir) = start().await;
    let addr = address(&running);
    let host = addr.to_string();
    // Unknown paths too: the guard stands in front of the fallback, so nothing is revealed.
    for (method, path) in ROUTES.into_iter().chain([("GET", "/no/such/route")]) {
        let a = send(addr, method, path, &[("Host", &host)]).await;
        assert_eq!(a.status, 401, "{method} {path}: {a:?}");
        assert_eq!(
            a.header("www-authenticate"),
            Some("Bearer realm=\"ppvnet control API\""),
            "{a:?}"
        );
        assert_eq!(a.body["error"]["code"], "Unauthorized", "{a:?}");
        assert!(
            a.body["error"]["message"]
                .as_str()
                .unwrap_or_default()
                .contains("control_token"),
            "{a:?}"
        );
    }
    // Basic credentials are no bearer token either.
    let basic = send(
        addr,
        "GET",
        "/clock",
        &[("Host", &host), ("Authorization", "Basic eDp5")],
    )
    .await;
    assert_eq!(basic.status, 401, "{basic:?}");
    running.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn control_api_with_a_wrong_token_is_401_invalid_token() {
    let (running, _dir) = start().await;
    let addr = address(&running);
    let host = addr.to_string();
    let token = running.ready().control_token.clone();
    // Moved with the right token first, so a reset that got through would show.
    let client = ppvnet::control::Client::from_ready(running.ready()).unwrap();
    let shift = serde_json::json!({"seconds": 600});
    let (status, _) = client
        .send_json(reqwest::Method::POST, "/clock/shift", Some(&shift))
        .await
        .unwrap();
    assert_eq!(status, 200);
    let mut flipped = token.clone().into_bytes();
    flipped[0] = if flipped[0] == b'0' { b'1' } else { b'0' };
    let flipped = String::from_utf8(flipped).unwrap();
    for wrong in [
        flipped,
        token[..token.len() - 1].to_string(),
        format!("{token}0"),
        ppvnet::control::new_token(),
    ] {
        let bearer = format!("Bearer {wrong}");
        for (method, path) in ROUTES {
            let a = send(
                addr,
                method,
                path,
                &[("Host", &host), ("Authorization", &bearer)],
            )
            .await;
            assert_eq!(a.status, 401, "{method} {path}: {a:?}");
            assert_eq!(
                a.header("www-authenticate"),
                Some("Bearer realm=\"ppvnet control API\", error=\"invalid_token\""),
                "{a:?}"
            );
        }
    }
    let (_, clock) = client
        .send_json(reqwest::Method::GET, "/clock", None)
        .await
        .unwrap();
    assert_eq!(
        clock["offset_seconds"], 600,
        "a refused reset took effect: {clock}"
    );
    running.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn control_api_under_another_host_name_is_421_even_with_the_token() {
    let (running, _dir) = start().await;
    let addr = address(&running);
    let bearer = format!("Bearer {}", running.ready().control_token);
    let port = addr.port();
    // A rebound name on the same port, another port, no port, and no Host at all.
    for host in [
        format!("evil.example:{port}"),
        format!("127.0.0.1:{}", port.wrapping_add(1)),
        "127.0.0.1".to_string(),
    ] {
        for (method, path) in ROUTES.into_iter().chain([("GET", "/healthz")]) {
            let a = send(
                addr,
                method,
                path,
                &[("Host", &host), ("Authorization", &bearer)],
            )
            .await;
            assert_eq!(a.status, 421, "{host} {method} {path}: {a:?}");
            assert_eq!(a.body["error"]["code"], "MisdirectedRequest", "{a:?}");
        }
    }
    // HTTP/1.1 requires a Host header; hyper answers 400 before the guard sees the request.
    let none = send(addr, "GET", "/clock", &[("Authorization", &bearer)]).await;
    assert!(none.status == 400 || none.status == 421, "{none:?}");
    running.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn control_api_refuses_a_foreign_origin_with_403_even_with_the_token() {
    let (running, _dir) = start().await;
    let addr = address(&running);
    let host = addr.to_string();
    let bearer = format!("Bearer {}", running.ready().control_token);
    for origin in [
        "https://evil.example",
        "http://evil.example",
        "null",
        &format!("http://127.0.0.1:{}", addr.port().wrapping_add(1)),
    ] {
        for (method, path) in ROUTES.into_iter().chain([("GET", "/healthz")]) {
            let headers = [
                ("Host", host.as_str()),
                ("Authorization", &bearer),
                ("Origin", origin),
            ];
            let a = send(addr, method, path, &headers).await;
            assert_eq!(a.status, 403, "{origin} {method} {path}: {a:?}");
            assert_eq!(a.body["error"]["code"], "ForeignOrigin", "{a:?}");
        }
        // A CORS preflight gets no allowance either.
        let preflight = send(
            addr,
            "OPTIONS",
            "/clock/shift",
            &[("Host", &host), ("Origin", origin)],
        )
        .await;
        assert_eq!(preflight.status, 403, "{preflight:?}");
        assert_eq!(preflight.header("access-control-allow-origin"), None);
    }
    running.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn control_api_answers_the_token_of_the_ready_file_on_every_router() {
    let (running, dir) = start().await;
    let addr = address(&running);
    // The token as a tool finds it: in the ready file on disk.
    let ready = ppvnet::ready::ReadyFile::read(&dir.path().join("ready.json")).unwrap();
    assert_eq!(ready.control_token, running.ready().control_token);
    assert!(ready.control_token.len() >= 32, "{}", ready.control_token);
    let bearer = format!("Bearer {}", ready.control_token);
    let localhost = format!("localhost:{}", addr.port());
    let own_origin = format!("http://{addr}");
    for host in [addr.to_string(), localhost] {
        for (method, path) in ROUTES {
            let with_origin = [
                ("Host", host.as_str()),
                ("Authorization", &bearer),
                ("Origin", &own_origin),
            ];
            let a = send(addr, method, path, &with_origin).await;
            assert_eq!(a.status, 200, "{host} {method} {path}: {a:?}");
        }
    }
    // Health needs no token: `ppvnet up` polls it before the ready file exists.
    let health = send(addr, "GET", "/healthz", &[("Host", &addr.to_string())]).await;
    assert_eq!(
        (health.status, health.body.as_str()),
        (200, Some("ok")),
        "{health:?}"
    );

    // The typed client sends the token for every method.
    let client = ppvnet::control::Client::from_ready(&ready).unwrap();
    let shifted = client
        .post("/clock/shift")
        .json(&serde_json::json!({"seconds": 60}));
    let shifted: Value = shifted.send().await.unwrap().json().await.unwrap();
    assert_eq!(shifted["offset_seconds"], 60, "{shifted}");
    let (status, clock) = client
        .send_json(reqwest::Method::GET, "/clock", None)
        .await
        .unwrap();
    assert_eq!(
        (status, &clock["offset_seconds"]),
        (200, &Value::from(60)),
        "{clock}"
    );
    running.stop().await.unwrap();
}
