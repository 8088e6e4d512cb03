//! The landscape dashboard on a running landscape, over HTTP: it refuses requests without a
//! credential, a one-time login URL works once and sets a session cookie, cookie-authenticated
//! control actions need the session's CSRF token, every name is escaped, and the event stream
//! delivers the new state after a control action (the latency is printed). And `ppvnet draw`:
//! a standalone SVG of contoso, and `validate`'s errors for a bad file.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use ppvnet::fabric::{FabricKind, Face};
use ppvnet::up::{self, Running, UpOptions};
use serde_json::{Value, json};

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(path)
}

/// A running landscape from `file` (the minimal example unless a test writes its own).
async fn start(file: &Path) -> (Running, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let landscape = ppvnet::scenario::load(file).unwrap_or_else(|e| panic!("{e}"));
    let opts = UpOptions::new(FabricKind::Loopback, dir.path().join("ready.json"));
    let running = up::start(&landscape, &opts)
        .await
        .unwrap_or_else(|e| panic!("{e:#}"));
    (running, dir)
}

/// A client that shows redirects and cookies as they come (no following, no jar).
fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

struct Control {
    url: String,
    token: String,
    http: reqwest::Client,
}

impl Control {
    fn of(r: &Running) -> Self {
        Self {
            url: r.ready().control_url.clone(),
            token: r.ready().control_token.clone(),
            http: client(),
        }
    }

    fn get(&self, path: &str) -> reqwest::RequestBuilder {
        self.http.get(format!("{}{path}", self.url))
    }

    fn post(&self, path: &str, body: Value) -> reqwest::RequestBuilder {
        self.http.post(format!("{}{path}", self.url)).json(&body)
    }

    /// A new one-time login URL, asked for with the bearer token.
    async fn login_url(&self) -> String {
        let r = self
            .post("/dashboard/login-url", json!({}))
            .bearer_auth(&self.token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let body: Value = r.json().await.unwrap();
        body["url"].as_str().expect("a url").to_string()
    }

    /// Logs in through a fresh one-time URL; returns the `Cookie` header value.
    async fn login(&self) -> String {
        let r = self.http.get(self.login_url().await).send().await.unwrap();
        assert_eq!(r.status(), 303);
        assert_eq!(r.headers()["location"], "/dashboard");
        let set = r.headers()["set-cookie"].to_str().unwrap().to_string();
        set.split(';').next().unwrap().to_string()
    }
}

async fn error_code(r: reqwest::Response) -> (u16, String) {
    let status = r.status().as_u16();
    let body: Value = r.json().await.unwrap_or_default();
    (
        status,
        body["error"]["code"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
    )
}

/// The CSRF token the page carries for its session.
fn csrf_of(page: &str) -> String {
    let start = page
        .find("name=\"csrf-token\" content=\"")
        .expect("the page carries a CSRF token")
        + "name=\"csrf-token\" content=\"".len();
    page[start..].split('"').next().unwrap().to_string()
}

#[tokio::test]
async fn without_a_credential_everything_is_refused() {
    let (running, _dir) = start(&repo("scenarios/examples/minimal.yaml")).await;
    let c = Control::of(&running);
    for path in ["/dashboard", "/dashboard/view", "/dashboard/events"] {
        let r = c.get(path).send().await.unwrap();
        assert!(r.headers().contains_key("www-authenticate"), "{path}");
        assert_eq!(error_code(r).await, (401, "Unauthorized".into()), "{path}");
    }
    let r = c
        .post("/network/regions/westus/outage", json!({"down": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(r).await, (401, "Unauthorized".into()));
    let r = c
        .post("/dashboard/login-url", json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(r).await, (401, "Unauthorized".into()));
    // Nothing changed.
    assert!(running.fabric().handle().state().region_outages.is_empty());
    running.stop().await.unwrap();
}

#[tokio::test]
async fn a_login_url_works_once_and_changes_need_the_csrf_token() {
    let (running, _dir) = start(&repo("scenarios/examples/minimal.yaml")).await;
    let c = Control::of(&running);
    let url = c.login_url().await;
    let r = c.http.get(&url).send().await.unwrap();
    assert_eq!(r.status(), 303);
    let set = r.headers()["set-cookie"].to_str().unwrap().to_string();
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(set.contains(attribute), "{set}");
    }
    let cookie = set.split(';').next().unwrap().to_string();
    let again = c.http.get(&url).send().await.unwrap();
    assert_eq!(error_code(again).await, (401, "Unauthorized".into()));

    let page = c
        .get("/dashboard")
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    assert!(
        page.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("script-src 'self'")
    );
    let page = page.text().await.unwrap();
    let csrf = csrf_of(&page);
    assert_eq!(csrf.len(), 64);

    let shift = json!({"seconds": 60});
    let r = c
        .post("/clock/shift", shift.clone())
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(r).await, (403, "CsrfTokenMismatch".into()));
    let r = c
        .post("/clock/shift", shift.clone())
        .header("cookie", &cookie)
        .header("x-csrf-token", "0".repeat(64))
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(r).await, (403, "CsrfTokenMismatch".into()));
    assert_eq!(running.clock.offset_millis(), 0);
    let r = c
        .post("/clock/shift", shift.clone())
        .header("cookie", &cookie)
        .header("x-csrf-token", &csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(running.clock.offset_millis(), 60_000);
    // A page of another site cannot use the session either, token or not.
    let r = c
        .post("/clock/shift", shift)
        .header("cookie", &cookie)
        .header("x-csrf-token", &csrf)
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(r).await, (403, "ForeignOrigin".into()));
    let forged = c
        .get("/dashboard")
        .header("cookie", "ppvnet_session_1=x")
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(forged).await, (401, "Unauthorized".into()));
    running.stop().await.unwrap();
}

/// The minimal landscape under a name that is markup, written into `dir`.
fn hostile_landscape(dir: &Path) -> PathBuf {
    let text = std::fs::read_to_string(repo("scenarios/examples/minimal.yaml")).unwrap();
    let text = text.replacen(
        "name: minimal\n",
        "name: \"<script>alert('name')</script>\"\n",
        1,
    );
    let file = dir.join("hostile.yaml");
    std::fs::write(&file, text).unwrap();
    file
}

#[tokio::test]
async fn every_name_is_escaped() {
    let files = tempfile::tempdir().unwrap();
    let (running, _dir) = start(&hostile_landscape(files.path())).await;
    let c = Control::of(&running);
    // A rule added at run time under a name that is markup too.
    let rule = json!({"name": "<img src=x onerror=alert(1)>", "priority": 4000,
        "direction": "Inbound", "access": "Deny", "protocol": "Tcp",
        "destinationPortRanges": ["8443"]});
    let r = c
        .post("/network/nsgs/nsg-pe/rules", rule)
        .bearer_auth(&c.token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "{:?}", r.text().await);
    let page = c
        .get("/dashboard")
        .bearer_auth(&c.token)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let view = c
        .get("/dashboard/view")
        .bearer_auth(&c.token)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for text in [&page, &view] {
        assert!(!text.contains("<script>alert"), "{text}");
        assert!(!text.contains("<img src=x"), "{text}");
        assert!(!text.contains("\\u003cimg src=x"), "{text}");
    }
    assert!(page.contains("&lt;script&gt;alert(&#39;name&#39;)&lt;/script&gt;"));
    assert!(page.contains("&lt;img src=x onerror=alert(1)&gt;"));
    // The page's only scripts are its own file.
    assert_eq!(page.matches("<script").count(), 1);
    running.stop().await.unwrap();
}

/// Reads `view` events from an event stream response until one satisfies `done`.
async fn next_view(
    stream: &mut reqwest::Response,
    buffer: &mut String,
    done: impl Fn(&Value) -> bool,
) -> Value {
    loop {
        while let Some(end) = buffer.find("\n\n") {
            let block: String = buffer.drain(..end + 2).collect();
            if !block.contains("event: view") {
                continue;
            }
            let data: String = block
                .lines()
                .filter_map(|l| l.strip_prefix("data:"))
                .map(str::trim_start)
                .collect();
            let view: Value = serde_json::from_str(&data).expect("a view is JSON");
            if done(&view) {
                return view;
            }
        }
        let chunk = stream
            .chunk()
            .await
            .expect("the stream stays up")
            .expect("the stream does not end");
        buffer.push_str(&String::from_utf8_lossy(&chunk));
    }
}

#[tokio::test]
async fn the_event_stream_shows_a_control_action_at_once() {
    let (running, _dir) = start(&repo("scenarios/examples/minimal.yaml")).await;
    let c = Control::of(&running);
    let cookie = c.login().await;
    let mut stream = c
        .get("/dashboard/events")
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), 200);
    assert!(
        stream.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let mut buffer = String::new();
    let outage = "data-region=\"westus\" data-outage=\"true\"";
    let first = next_view(&mut stream, &mut buffer, |_| true).await;
    assert!(!first["picture"].as_str().unwrap().contains(outage));

    let r = c
        .post("/network/regions/westus/outage", json!({"down": true}))
        .bearer_auth(&c.token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let answered = Instant::now();
    let seen = tokio::time::timeout(
        Duration::from_secs(30),
        next_view(&mut stream, &mut buffer, |v| {
            v["picture"].as_str().is_some_and(|p| p.contains(outage))
        }),
    )
    .await
    .expect("the outage reaches the event stream");
    println!(
        "dashboard update latency (control action answered -> view event): {:.1} ms",
        answered.elapsed().as_secs_f64() * 1000.0
    );
    assert!(
        seen["status"]
            .as_str()
            .unwrap()
            .contains("region westus in outage")
    );
    assert!(
        seen["controls"]
            .as_str()
            .unwrap()
            .contains("data-action=\"restore:westus\"")
    );
    assert!(
        seen["matrix"]
            .as_str()
            .unwrap()
            .contains("<table class=\"matrix\">")
    );

    // A peering switched off, an NSG rule added, the clock shifted: each shows in a next view.
    let changes = [
        (
            "/network/peerings/between/vnet-west/vnet-east",
            json!({"enabled": false}),
            (
                "picture",
                "data-peering=\"west-to-east\" data-state=\"off\"",
            ),
        ),
        (
            "/network/nsgs/nsg-pe/rules",
            json!({"name": "DenyLateHttps", "priority": 3917, "direction": "Inbound",
                "access": "Deny", "protocol": "Tcp", "destinationPortRanges": ["443"]}),
            ("picture", "data-rule=\"DenyLateHttps\""),
        ),
        (
            "/clock/shift",
            json!({"seconds": 60}),
            ("status", "clock offset +60 s"),
        ),
    ];
    for (path, body, (part, shows)) in changes {
        let r = c
            .post(path, body)
            .bearer_auth(&c.token)
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "{path}: {}", r.status());
        tokio::time::timeout(
            Duration::from_secs(30),
            next_view(&mut stream, &mut buffer, |v| {
                v[part].as_str().is_some_and(|p| p.contains(shows))
            }),
        )
        .await
        .unwrap_or_else(|_| panic!("{path}: no view with {shows}"));
    }

    // A denied flow (the internet to a private endpoint) is listed with its path.
    let pe = running
        .fabric()
        .handle()
        .face_address("kv-min", &Face::PrivateEndpoint("pe-kv-min".into()))
        .expect("the private endpoint is bound");
    let _ = running.fabric().connect("internet", pe).await;
    let denied = "<td>denied</td><td>internet (";
    let view = tokio::time::timeout(
        Duration::from_secs(30),
        next_view(&mut stream, &mut buffer, |v| {
            v["flows"].as_str().is_some_and(|f| f.contains(denied))
        }),
    )
    .await
    .expect("the denied flow reaches the event stream");
    assert!(view["flows"].as_str().unwrap().contains("→ pe-kv-min ("));
    running.stop().await.unwrap();
}

#[test]
fn draw_writes_a_standalone_svg_of_the_landscape() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("contoso.svg");
    let status = std::process::Command::new(env!("CARGO_BIN_EXE_ppvnet"))
        .arg("draw")
        .arg(repo("scenarios/contoso.yaml"))
        .arg("-o")
        .arg(&out)
        .status()
        .unwrap();
    assert!(status.success());
    let svg = std::fs::read_to_string(&out).unwrap();
    let doc = roxmltree::Document::parse(&svg).expect("the SVG is well-formed XML");
    let root = doc.root_element();
    assert_eq!(root.tag_name().name(), "svg");
    assert_eq!(
        root.tag_name().namespace(),
        Some("http://www.w3.org/2000/svg")
    );
    let landscape = ppvnet::scenario::load(&repo("scenarios/contoso.yaml")).unwrap();
    let named = |attribute: &str, value: &str| {
        doc.descendants()
            .any(|n| n.attribute(attribute) == Some(value))
    };
    for vnet in &landscape.scenario.vnets {
        assert!(named("data-vnet", &vnet.name), "vNet {}", vnet.name);
    }
    for host in &landscape.hosts {
        assert!(named("data-host", &host.name), "host {}", host.name);
    }
}

#[test]
fn draw_refuses_a_bad_file_as_validate_does() {
    let bad = repo("scenarios/invalid/delegated-subnet-hosts-endpoint.yaml");
    let run = |command: &str| {
        std::process::Command::new(env!("CARGO_BIN_EXE_ppvnet"))
            .arg(command)
            .arg(&bad)
            .output()
            .unwrap()
    };
    let (draw, validate) = (run("draw"), run("validate"));
    assert_eq!(draw.status.code(), Some(1));
    assert!(draw.stdout.is_empty());
    assert!(!draw.stderr.is_empty());
    assert_eq!(draw.stderr, validate.stderr);
    let missing = std::process::Command::new(env!("CARGO_BIN_EXE_ppvnet"))
        .args(["draw", "/nonexistent/landscape.yaml"])
        .output()
        .unwrap();
    assert_eq!(missing.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("/nonexistent/landscape.yaml"));
}

/// Where browser tests put their screenshots: `<target dir>/screenshots/dashboard/`.
fn screenshots() -> PathBuf {
    // The test binary's `ppvnet` is `<target dir>/<profile>/ppvnet`.
    let exe = Path::new(env!("CARGO_BIN_EXE_ppvnet"));
    let target = exe
        .parent()
        .and_then(Path::parent)
        .expect("the binary sits in a target folder");
    let dir = target.join("screenshots").join("dashboard");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Chromium, or `None` when the test must skip (it fails instead under `PPVNET_REQUIRE`).
fn chromium_or_skip() -> Option<PathBuf> {
    let browser = crate::signoff::chromium();
    let missing = browser
        .is_none()
        .then(|| "no chromium on PATH (scripts/test installs it: apt-get install chromium)".into());
    if crate::require::skip_unless("chromium", missing) {
        return None;
    }
    browser
}

/// Runs headless Chromium on `url` with `args` in a fresh profile; returns its output.
async fn headless(browser: &Path, url: &str, args: &[String]) -> std::process::Output {
    let profile = tempfile::tempdir().unwrap();
    tokio::process::Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(args)
        .arg(url)
        .output()
        .await
        .expect("chromium runs")
}

/// The screenshot at `path` is a PNG of some substance (not an empty page).
fn assert_png(path: &Path, output: &std::process::Output) {
    let png = std::fs::read(path).unwrap_or_else(|e| {
        panic!(
            "no screenshot at {} ({e}): {}",
            path.display(),
            String::from_utf8_lossy(&output.stderr)
        )
    });
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 10_000,
        "{}: {} bytes",
        path.display(),
        png.len()
    );
}

#[tokio::test]
async fn chromium_opens_the_drawn_svg() {
    let Some(browser) = chromium_or_skip() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let svg = dir.path().join("contoso.svg");
    let status = std::process::Command::new(env!("CARGO_BIN_EXE_ppvnet"))
        .arg("draw")
        .arg(repo("scenarios/contoso.yaml"))
        .arg("-o")
        .arg(&svg)
        .status()
        .unwrap();
    assert!(status.success());
    let url = format!("file://{}", svg.display());
    // The document Chromium parsed is the SVG, not an XML error page.
    let dom = headless(&browser, &url, &["--dump-dom".into()]).await;
    let text = String::from_utf8_lossy(&dom.stdout);
    assert!(
        text.contains("data-vnet=\"vnet-prod-westus\"") && !text.contains("parsererror"),
        "chromium did not render the SVG:\n{text}\n{}",
        String::from_utf8_lossy(&dom.stderr)
    );
    let shot = screenshots().join("contoso-draw.png");
    let _ = std::fs::remove_file(&shot);
    let out = headless(
        &browser,
        &url,
        &[
            "--window-size=1240,800".into(),
            format!("--screenshot={}", shot.display()),
        ],
    )
    .await;
    assert_png(&shot, &out);
}

#[tokio::test]
async fn chromium_logs_in_through_the_one_time_url() {
    let Some(browser) = chromium_or_skip() else {
        return;
    };
    let (running, _dir) = start(&repo("scenarios/examples/minimal.yaml")).await;
    let c = Control::of(&running);
    let r = c
        .post("/network/regions/westus/outage", json!({"down": true}))
        .bearer_auth(&c.token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // The browser follows the login redirect with the cookie the login set: the DOM it built
    // is the dashboard's, with the state the page was loaded in.
    let dom = headless(&browser, &c.login_url().await, &["--dump-dom".into()]).await;
    let text = String::from_utf8_lossy(&dom.stdout);
    assert!(
        text.contains("<h1>ppvnet · minimal</h1>")
            && text.contains("data-region=\"westus\" data-outage=\"true\""),
        "chromium did not show the dashboard:\n{text}\n{}",
        String::from_utf8_lossy(&dom.stderr)
    );
    let shot = screenshots().join("dashboard-westus-outage.png");
    let _ = std::fs::remove_file(&shot);
    let out = headless(
        &browser,
        &c.login_url().await,
        &[
            "--window-size=1280,1600".into(),
            format!("--screenshot={}", shot.display()),
        ],
    )
    .await;
    assert_png(&shot, &out);
    running.stop().await.unwrap();
}

/// Test-side instruments installed in the page (the page itself has none): when the page
/// sends a control request (`window.__sent`) and when `selector` first appears in the picture
/// (`window.__seen`), both on the browser's clock.
const INSTRUMENT: &str = "
const selector = arguments[0];
window.__sent = null; window.__seen = null;
const send = window.fetch;
window.fetch = (...a) => { window.__sent = Date.now(); return send(...a); };
new MutationObserver(() => {
  if (window.__seen === null && document.querySelector(selector)) { window.__seen = Date.now(); }
}).observe(document.getElementById('picture'), {childList: true, subtree: true});
";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_sees_the_outage_it_confirms_at_once() {
    use ppvnet_testkit::browser::{self, Browser, BrowserOptions};
    if crate::require::skip_unless("chromium", browser::missing()) {
        return;
    }
    let (running, _dir) = start(&repo("scenarios/contoso.yaml")).await;
    let c = Control::of(&running);
    let b = Browser::start(BrowserOptions {
        screenshots: Some(browser::screenshot_dir("dashboard")),
        ..Default::default()
    })
    .await
    .unwrap();
    let wait = Duration::from_secs(30);
    b.goto(&c.login_url().await).await.unwrap();
    b.wait_for("body[data-live=\"true\"] #picture [data-vnet]", wait)
        .await
        .unwrap();
    assert!(b.url().await.unwrap().ends_with("/dashboard"));
    b.screenshot("dashboard").await.unwrap();

    // Cancelled: nothing is sent, nothing changes.
    let peering = "button[data-action=\"peering-off:vnet-prod-eastus:vnet-prod-westus\"]";
    b.click(&b.find(peering).await.unwrap()).await.unwrap();
    assert!(b.alert_text().await.unwrap().contains("vnet-prod-eastus"));
    b.dismiss_alert().await.unwrap();
    assert!(
        running
            .fabric()
            .handle()
            .state()
            .peerings
            .iter()
            .all(|p| p.enabled)
    );

    let outage = "#picture [data-region=\"westus\"][data-outage=\"true\"]";
    b.execute(INSTRUMENT, vec![json!(outage)]).await.unwrap();
    b.click(
        &b.find("button[data-action=\"outage:westus\"]")
            .await
            .unwrap(),
    )
    .await
    .unwrap();
    assert!(b.alert_text().await.unwrap().contains("westus"));
    b.accept_alert().await.unwrap();
    b.wait_for(outage, wait).await.unwrap();
    let times = b
        .execute("return [window.__sent, window.__seen];", vec![])
        .await
        .unwrap();
    let (sent, seen) = (times[0].as_f64().unwrap(), times[1].as_f64().unwrap());
    println!(
        "dashboard DOM update latency in Chromium (request sent -> picture shows the outage): {} ms",
        seen - sent
    );
    assert!(
        running
            .fabric()
            .handle()
            .state()
            .region_outages
            .contains("westus")
    );
    b.wait_for("button[data-action=\"restore:westus\"]", wait)
        .await
        .unwrap();
    assert!(
        b.text("#status")
            .await
            .unwrap()
            .contains("region westus in outage")
    );
    b.screenshot("westus-outage").await.unwrap();
    drop(b);
    running.stop().await.unwrap();
}
