//! Headless Chromium for browser tests, driven through W3C WebDriver (`chromedriver`, Debian's
//! `chromium-driver`) by a thin client over reqwest.
//!
//! [`Browser::start`] runs `chromedriver` on a free loopback port and opens one session of
//! headless Chromium with a profile of its own in a temporary `HOME`. The browser is an
//! unmodified client: it reaches the landscape through a host's HTTPS proxy
//! (`--proxy-server`), and trusts the run's CA through an NSS database made with `certutil`
//! (Debian's `libnss3-tools`), as a user would import a root certificate; only when `certutil`
//! is missing does it fall back to `--ignore-certificate-errors`, and [`Browser::trusts_ca`]
//! says which one happened.
//!
//! Waiting is [`Browser::wait_for`]: the DOM is polled through WebDriver with a deadline
//! ([`crate::eventually`]); no test sleeps. [`Browser::screenshot`] saves numbered PNGs under
//! `<target dir>/screenshots/<test>/`.
//!
//! Protocol: <https://www.w3.org/TR/webdriver2/> (new session, navigate, find element, element
//! click / send keys / text, execute script, user prompts, take screenshot, delete session).

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use base64::Engine as _;
use serde_json::{Value, json};

/// The W3C element reference key.
const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";
/// How long chromedriver may take to say it listens.
const DRIVER_START: Duration = Duration::from_secs(20);
/// One WebDriver command (a navigation waits for the page load, capped by [`PAGE_LOAD`]).
const COMMAND_TIMEOUT: Duration = Duration::from_secs(90);
/// Page loads and scripts inside the browser.
const PAGE_LOAD: Duration = Duration::from_secs(60);

/// Why the browser could not run or a command failed.
#[derive(Debug, thiserror::Error)]
pub enum BrowserError {
    #[error("cannot start {program}: {detail}")]
    Start { program: String, detail: String },
    #[error("WebDriver {command}: {detail}")]
    Command { command: String, detail: String },
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("waiting for {what}: {timed_out}")]
    Timeout {
        what: String,
        timed_out: crate::TimedOut,
    },
}

/// How to start the browser.
#[derive(Clone, Debug, Default)]
pub struct BrowserOptions {
    /// `host:port` of an HTTP proxy every request goes through (CONNECT for HTTPS).
    pub proxy: Option<String>,
    /// A CA certificate (PEM) the browser trusts as a root.
    pub ca_pem: Option<PathBuf>,
    /// Where [`Browser::screenshot`] writes; [`screenshot_dir`] gives the usual place.
    pub screenshots: Option<PathBuf>,
}

/// The Chromium and chromedriver binaries, or why they are missing (for a test's skip).
pub fn missing() -> Option<String> {
    let absent: Vec<&str> = ["chromium", "chromedriver"]
        .into_iter()
        .filter(|p| which(p).is_none())
        .collect();
    (!absent.is_empty()).then(|| {
        format!(
            "{} not on PATH (scripts/test installs them: apt-get install chromium chromium-driver)",
            absent.join(" and ")
        )
    })
}

fn which(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(program))
        .find(|p| p.is_file())
}

/// `<target dir>/screenshots/<test>`: `CARGO_TARGET_DIR` when set, else the directory the
/// running test binary was built into (`target/debug/deps/…` → `target`).
pub fn screenshot_dir(test: &str) -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .or_else(|| {
            let exe = std::env::current_exe().ok()?;
            Some(exe.parent()?.parent()?.parent()?.to_path_buf())
        })
        .unwrap_or_else(std::env::temp_dir);
    target.join("screenshots").join(test)
}

/// A chromedriver process and its one browser session. Dropping it ends the session (which
/// closes Chromium) and stops chromedriver.
pub struct Browser {
    http: reqwest::Client,
    /// `http://127.0.0.1:{port}/session/{id}`.
    session: String,
    port: u16,
    session_id: String,
    driver: Child,
    trusts_ca: bool,
    screenshots: Option<PathBuf>,
    step: AtomicU32,
    _home: tempfile::TempDir,
}

/// An element of the current page.
#[derive(Clone, Debug)]
pub struct Element {
    id: String,
}

impl Browser {
    /// Starts chromedriver and a headless Chromium session.
    pub async fn start(options: BrowserOptions) -> Result<Browser, BrowserError> {
        let home = tempfile::tempdir()?;
        let trusts_ca = match &options.ca_pem {
            Some(ca) => trust_ca(home.path(), ca)?,
            None => true,
        };
        let (driver, port) = spawn_driver(home.path())?;
        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(COMMAND_TIMEOUT)
            .build()
            .map_err(|e| BrowserError::Start {
                program: "the WebDriver client".into(),
                detail: e.to_string(),
            })?;
        let mut args = vec![
            "--headless=new".to_string(),
            // Tests run as root in CI, where Chromium's sandbox cannot start.
            "--no-sandbox".into(),
            "--disable-gpu".into(),
            "--disable-dev-shm-usage".into(),
            "--no-first-run".into(),
            "--disable-background-networking".into(),
            "--disable-component-update".into(),
            "--disable-sync".into(),
            "--window-size=1100,800".into(),
            format!("--user-data-dir={}", home.path().join("profile").display()),
        ];
        if let Some(proxy) = &options.proxy {
            args.push(format!("--proxy-server=http://{proxy}"));
            // Chromium sends loopback destinations direct by default; the loopback fabric's
            // services are on 127.x addresses and must be reached from the proxy's host.
            args.push("--proxy-bypass-list=<-loopback>".into());
        }
        if !trusts_ca {
            args.push("--ignore-certificate-errors".into());
        }
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "acceptInsecureCerts": false,
            "pageLoadStrategy": "normal",
            "timeouts": {"pageLoad": PAGE_LOAD.as_millis() as u64, "script": 30_000, "implicit": 0},
            "goog:chromeOptions": {"binary": which("chromium").unwrap_or_else(|| "chromium".into()), "args": args},
        }}});
        let mut browser = Browser {
            http,
            session: String::new(),
            port,
            session_id: String::new(),
            driver,
            trusts_ca,
            screenshots: options.screenshots,
            step: AtomicU32::new(0),
            _home: home,
        };
        let url = format!("http://127.0.0.1:{port}/session");
        let value = browser
            .send(reqwest::Method::POST, &url, Some(caps))
            .await?;
        let id = value["sessionId"]
            .as_str()
            .ok_or_else(|| BrowserError::Command {
                command: "new session".into(),
                detail: format!("no sessionId in {value}"),
            })?;
        browser.session_id = id.to_string();
        browser.session = format!("{url}/{id}");
        Ok(browser)
    }

    /// Whether the run's CA is trusted for real (an NSS root), rather than certificate errors
    /// being ignored.
    pub fn trusts_ca(&self) -> bool {
        self.trusts_ca
    }

    async fn send(
        &self,
        method: reqwest::Method,
        url: &str,
        body: Option<Value>,
    ) -> Result<Value, BrowserError> {
        let command = format!(
            "{method} {}",
            url.rsplit_once(&self.session_id).map_or(url, |(_, p)| p)
        );
        let fail = |detail: String| BrowserError::Command {
            command: command.clone(),
            detail,
        };
        let mut request = self.http.request(method.clone(), url);
        // W3C: POST commands carry a JSON object, even an empty one.
        if method == reqwest::Method::POST {
            request = request.json(&body.unwrap_or_else(|| json!({})));
        }
        let response = request.send().await.map_err(|e| fail(e.to_string()))?;
        let status = response.status();
        let reply: Value = response.json().await.map_err(|e| fail(e.to_string()))?;
        if !status.is_success() {
            return Err(fail(format!(
                "{status}: {} {}",
                reply["value"]["error"].as_str().unwrap_or_default(),
                reply["value"]["message"]
                    .as_str()
                    .unwrap_or_default()
                    .lines()
                    .next()
                    .unwrap_or_default()
            )));
        }
        Ok(reply["value"].clone())
    }

    async fn command(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, BrowserError> {
        let url = format!("{}{path}", self.session);
        self.send(method, &url, body).await
    }

    /// Opens `url` and waits for the page to load.
    pub async fn goto(&self, url: &str) -> Result<(), BrowserError> {
        self.command(reqwest::Method::POST, "/url", Some(json!({"url": url})))
            .await
            .map(drop)
    }

    /// The current page's URL.
    pub async fn url(&self) -> Result<String, BrowserError> {
        let v = self.command(reqwest::Method::GET, "/url", None).await?;
        Ok(v.as_str().unwrap_or_default().to_string())
    }

    /// The current page's title.
    pub async fn title(&self) -> Result<String, BrowserError> {
        let v = self.command(reqwest::Method::GET, "/title", None).await?;
        Ok(v.as_str().unwrap_or_default().to_string())
    }

    /// The current page's source (the DOM serialised).
    pub async fn source(&self) -> Result<String, BrowserError> {
        let v = self.command(reqwest::Method::GET, "/source", None).await?;
        Ok(v.as_str().unwrap_or_default().to_string())
    }

    /// Runs `script` (a function body; `arguments` holds `args`) and returns its value.
    pub async fn execute(&self, script: &str, args: Vec<Value>) -> Result<Value, BrowserError> {
        self.command(
            reqwest::Method::POST,
            "/execute/sync",
            Some(json!({"script": script, "args": args})),
        )
        .await
    }

    /// The elements `css` selects now (none is not an error).
    pub async fn find_all(&self, css: &str) -> Result<Vec<Element>, BrowserError> {
        let v = self
            .command(
                reqwest::Method::POST,
                "/elements",
                Some(json!({"using": "css selector", "value": css})),
            )
            .await?;
        Ok(v.as_array()
            .map(|a| a.iter().filter_map(element).collect())
            .unwrap_or_default())
    }

    /// The first element `css` selects now.
    pub async fn find(&self, css: &str) -> Result<Element, BrowserError> {
        let v = self
            .command(
                reqwest::Method::POST,
                "/element",
                Some(json!({"using": "css selector", "value": css})),
            )
            .await?;
        element(&v).ok_or_else(|| BrowserError::Command {
            command: format!("find {css}"),
            detail: format!("no element reference in {v}"),
        })
    }

    /// Waits until `css` selects an element (pages load, redirects land, scripts run).
    pub async fn wait_for(&self, css: &str, timeout: Duration) -> Result<Element, BrowserError> {
        crate::eventually(timeout, || async {
            self.find_all(css)
                .await
                .ok()
                .and_then(|v| v.into_iter().next())
        })
        .await
        .map_err(|timed_out| BrowserError::Timeout {
            what: format!("'{css}'"),
            timed_out,
        })
    }

    /// The visible text of the first element `css` selects.
    pub async fn text(&self, css: &str) -> Result<String, BrowserError> {
        let e = self.find(css).await?;
        self.element_text(&e).await
    }

    /// The visible text of `e`.
    pub async fn element_text(&self, e: &Element) -> Result<String, BrowserError> {
        let v = self
            .command(
                reqwest::Method::GET,
                &format!("/element/{}/text", e.id),
                None,
            )
            .await?;
        Ok(v.as_str().unwrap_or_default().to_string())
    }

    /// Clicks `e`.
    pub async fn click(&self, e: &Element) -> Result<(), BrowserError> {
        self.command(
            reqwest::Method::POST,
            &format!("/element/{}/click", e.id),
            None,
        )
        .await
        .map(drop)
    }

    /// Types `text` into `e` (after clearing it).
    pub async fn type_into(&self, e: &Element, text: &str) -> Result<(), BrowserError> {
        self.command(
            reqwest::Method::POST,
            &format!("/element/{}/clear", e.id),
            None,
        )
        .await?;
        self.command(
            reqwest::Method::POST,
            &format!("/element/{}/value", e.id),
            Some(json!({"text": text})),
        )
        .await
        .map(drop)
    }

    /// The text of the open user prompt (`alert`, `confirm`, `prompt`).
    pub async fn alert_text(&self) -> Result<String, BrowserError> {
        let v = self
            .command(reqwest::Method::GET, "/alert/text", None)
            .await?;
        Ok(v.as_str().unwrap_or_default().to_string())
    }

    /// Answers the open user prompt with OK (`confirm` returns true).
    pub async fn accept_alert(&self) -> Result<(), BrowserError> {
        self.command(reqwest::Method::POST, "/alert/accept", None)
            .await
            .map(drop)
    }

    /// Answers the open user prompt with Cancel (`confirm` returns false).
    pub async fn dismiss_alert(&self) -> Result<(), BrowserError> {
        self.command(reqwest::Method::POST, "/alert/dismiss", None)
            .await
            .map(drop)
    }

    /// Saves a PNG of the viewport as `<NN>-<step>.png` in the screenshot folder (numbered in
    /// the order taken) and returns its path; `None` without a folder.
    pub async fn screenshot(&self, step: &str) -> Result<Option<PathBuf>, BrowserError> {
        let Some(dir) = &self.screenshots else {
            return Ok(None);
        };
        let v = self
            .command(reqwest::Method::GET, "/screenshot", None)
            .await?;
        let png = base64::engine::general_purpose::STANDARD
            .decode(v.as_str().unwrap_or_default())
            .map_err(|e| BrowserError::Command {
                command: "screenshot".into(),
                detail: e.to_string(),
            })?;
        std::fs::create_dir_all(dir)?;
        let n = self.step.fetch_add(1, Ordering::Relaxed) + 1;
        let path = dir.join(format!("{n:02}-{step}.png"));
        std::fs::write(&path, png)?;
        Ok(Some(path))
    }
}

fn element(v: &Value) -> Option<Element> {
    Some(Element {
        id: v.get(ELEMENT_KEY)?.as_str()?.to_string(),
    })
}

/// An NSS database in `home` with `ca` as a trusted root, as `certutil` makes it; `false`
/// when `certutil` is not installed.
fn trust_ca(home: &Path, ca: &Path) -> Result<bool, BrowserError> {
    if which("certutil").is_none() {
        return Ok(false);
    }
    let db = home.join(".pki").join("nssdb");
    std::fs::create_dir_all(&db)?;
    let dir = format!("sql:{}", db.display());
    let run = |args: &[&str]| -> Result<(), BrowserError> {
        let out = Command::new("certutil").args(args).output()?;
        if out.status.success() {
            Ok(())
        } else {
            Err(BrowserError::Start {
                program: "certutil".into(),
                detail: String::from_utf8_lossy(&out.stderr).into_owned(),
            })
        }
    };
    run(&["-N", "-d", &dir, "--empty-password"])?;
    let ca = ca.to_string_lossy();
    run(&[
        "-A",
        "-d",
        &dir,
        "-t",
        "C,,",
        "-n",
        "ppvnet run CA",
        "-i",
        &ca,
    ])?;
    Ok(true)
}

/// chromedriver on a free loopback port, with `home` as its (and Chromium's) `HOME`; returns
/// once it says it listens.
fn spawn_driver(home: &Path) -> Result<(Child, u16), BrowserError> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let start = |detail: String| BrowserError::Start {
        program: "chromedriver".into(),
        detail,
    };
    let mut child = Command::new("chromedriver")
        .arg(format!("--port={port}"))
        .env("HOME", home)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| start(e.to_string()))?;
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| start("no stdout".into()))?;
    // The readiness line is the event; a reader thread hands it over with a deadline.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if line.contains("started successfully") {
                let _ = tx.send(());
            }
        }
    });
    match rx.recv_timeout(DRIVER_START) {
        Ok(()) => Ok((child, port)),
        Err(_) => {
            let _ = child.kill();
            let _ = child.wait();
            Err(start(format!(
                "did not report listening on port {port} within {DRIVER_START:?}"
            )))
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // Ending the session closes Chromium; Drop cannot await, so a plain HTTP/1.1 DELETE.
        if !self.session_id.is_empty()
            && let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", self.port))
        {
            let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
            let request = format!(
                "DELETE /session/{} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nConnection: close\r\n\r\n",
                self.session_id, self.port
            );
            if s.write_all(request.as_bytes()).is_ok() {
                let mut sink = Vec::new();
                let _ = s.read_to_end(&mut sink);
            }
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}
