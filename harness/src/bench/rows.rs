//! The HTTP rows (`token`, `kv-get`, `kv-set`, `search-10k`, `search-1m`; `invoke` is
//! [`super::invoke`]'s): a [`Target`] repeats one request from a host of the running landscape
//! through the fabric, as a user's client would, under the closed-loop load of
//! [`ppvnet_common::bench`]; its reference repeats the same request against a bare axum+rustls
//! server on loopback doing the work the service does besides its HTTP stack: for Key Vault none
//! (it answers the body the vault answered), for a search the same store query on the API's own
//! database for the same viewer ([`SearchReference`]), so that ratio is what authentication,
//! middleware and the fabric add, not the full-text query. The search rows also measure the bare
//! server answering the same body without searching (`bare_same_body` in their detail).
//!
//! Nothing here knows the seed landscape's names: each row finds a subject the landscape lets
//! through by trying the apps that have a secret, from the internet host for a service with
//! public access and from the Power Platform hosts for one behind private endpoints, and keeps
//! the first that answers 200.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use axum::body::Bytes;
use ppvnet_common::bench::{Distribution, Served, closed_loop, serve_bare};
use ppvnet_search_api::bench::SearchReference;
use ppvnet_search_api::store::{CaseStore, SearchQuery, Viewer};
use reqwest::Method;
use serde_json::json;

use super::{Row, RowName, Sizes};
use crate::landscape::{HostKind, INTERNET, Landscape};
use crate::pki::Pki;
use crate::up::Running;

/// Key Vault's data-plane API version the rows send.
const KEY_VAULT_API: &str = "api-version=2025-07-01";
/// The secret the Key Vault rows write and read.
const SECRET: &str = "ppvnet-bench";
/// The search the search rows repeat: a one-word query and a page of 25, as the connector's
/// `SearchCases` sends it.
const SEARCH_TEXT: &str = "outage";
const SEARCH_TOP: u32 = 25;
/// How long a probe for a working subject may take (a refused connection can be held).
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// One request as the load generator repeats it.
#[derive(Clone, Debug)]
pub(crate) struct Request {
    pub method: Method,
    /// Path and query after the target's base URL.
    pub path: Arc<str>,
    pub bearer: Option<Arc<str>>,
    pub headers: Arc<Vec<(&'static str, String)>>,
    pub form: Option<Arc<Vec<(&'static str, String)>>>,
    pub json: Option<Arc<serde_json::Value>>,
}

impl Request {
    pub(crate) fn new(method: Method, path: impl Into<Arc<str>>) -> Self {
        Self {
            method,
            path: path.into(),
            bearer: None,
            headers: Arc::new(Vec::new()),
            form: None,
            json: None,
        }
    }

    pub(crate) fn bearer(mut self, token: &str) -> Self {
        self.bearer = Some(token.into());
        self
    }

    /// Sends the request to `base` from `client`; its status and body.
    pub(crate) async fn send(
        &self,
        client: &reqwest::Client,
        base: &str,
        timeout: Option<Duration>,
    ) -> anyhow::Result<(u16, Bytes)> {
        let url = format!("{}{}", base.trim_end_matches('/'), self.path);
        let mut r = client.request(self.method.clone(), url);
        if let Some(token) = &self.bearer {
            r = r.bearer_auth(token);
        }
        for (name, value) in self.headers.iter() {
            r = r.header(*name, value);
        }
        if let Some(form) = &self.form {
            r = r.form(form.as_slice());
        }
        if let Some(body) = &self.json {
            r = r.json(body.as_ref());
        }
        if let Some(t) = timeout {
            r = r.timeout(t);
        }
        let response = r.send().await?;
        let status = response.status().as_u16();
        Ok((status, response.bytes().await?))
    }
}

/// The requests of a measurement that did not answer 200: their count and the first one's
/// reason, so a figure never comes from error responses.
#[derive(Debug, Default)]
struct Failures {
    count: AtomicU64,
    first: Mutex<Option<String>>,
}

/// A client, a base URL and the request it repeats.
#[derive(Clone, Debug)]
pub(crate) struct Target {
    pub client: reqwest::Client,
    pub base: Arc<str>,
    pub request: Request,
    failures: Arc<Failures>,
}

impl Target {
    pub(crate) fn new(client: reqwest::Client, base: &str, request: Request) -> Self {
        Self {
            client,
            base: base.into(),
            request,
            failures: Arc::default(),
        }
    }

    async fn once(&self) {
        let failure = match self.request.send(&self.client, &self.base, None).await {
            Ok((200, _)) => return,
            Ok((status, body)) => format!(
                "answered {status}: {}",
                String::from_utf8_lossy(&body[..body.len().min(300)])
            ),
            Err(e) => format!("{e:#}"),
        };
        self.failures.count.fetch_add(1, Ordering::Relaxed);
        let mut first = self
            .failures
            .first
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        first.get_or_insert(failure);
    }

    /// `count` requests with `concurrency` in flight; an error when any did not answer 200.
    async fn run(&self, count: u64, concurrency: usize) -> anyhow::Result<Distribution> {
        let target = self.clone();
        let (wall, latencies) = closed_loop(count, concurrency, move || {
            let target = target.clone();
            async move { target.once().await }
        })
        .await;
        let failed = self.failures.count.load(Ordering::Relaxed);
        if failed > 0 {
            let first = self
                .failures
                .first
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            anyhow::bail!(
                "{failed} of {count} requests to {}{} failed; the first {}",
                self.base,
                self.request.path,
                first.as_deref().unwrap_or("?")
            );
        }
        Distribution::new(wall, latencies).context("no request was measured")
    }

    /// The warm-up, then the measured requests.
    pub(crate) async fn measure(
        &self,
        sizes: Sizes,
        concurrency: usize,
    ) -> anyhow::Result<Distribution> {
        self.run(sizes.warm_up, concurrency).await?;
        self.run(sizes.requests, concurrency).await
    }
}

/// What a row's JSON detail says of a distribution.
pub(crate) fn detail(d: &Distribution) -> serde_json::Value {
    json!({
        "requests": d.requests,
        "per_second": d.per_second,
        "p50_ms": d.p50.as_secs_f64() * 1e3,
        "p99_ms": d.p99.as_secs_f64() * 1e3,
        "max_ms": d.max.as_secs_f64() * 1e3,
    })
}

/// The running landscape and the bare reference's TLS and client.
pub(super) struct Ctx<'a> {
    pub running: &'a Running,
    landscape: &'a Landscape,
    /// The run's folder (`UpOptions::run_dir`), where the search APIs keep their databases.
    run_dir: std::path::PathBuf,
    pub sizes: Sizes,
    ca: Vec<u8>,
    bare_tls: Arc<rustls::ServerConfig>,
    bare_client: reqwest::Client,
}

impl<'a> Ctx<'a> {
    pub(super) fn new(
        running: &'a Running,
        landscape: &'a Landscape,
        run_dir: &std::path::Path,
        sizes: Sizes,
        dir: &std::path::Path,
    ) -> anyhow::Result<Self> {
        let ca = std::fs::read(&running.ready().ca_cert).context("the run's CA certificate")?;
        // The reference gets a CA of its own with the run's TLS settings (`Pki::server_config`).
        let pki = Pki::create(&dir.join("reference-pki"), "bench reference")?;
        let leaf = pki.leaf(
            &["localhost".into()],
            &[std::net::Ipv4Addr::LOCALHOST.into()],
        )?;
        Ok(Self {
            running,
            landscape,
            run_dir: run_dir.to_path_buf(),
            sizes,
            ca,
            bare_tls: pki.server_config(&leaf)?,
            bare_client: pki
                .client_builder()?
                .no_proxy()
                .pool_max_idle_per_host(sizes.concurrency)
                .build()?,
        })
    }

    pub(super) async fn measure(&self, row: RowName) -> anyhow::Result<Row> {
        match row {
            RowName::Token => self.token().await,
            RowName::KvGet | RowName::KvSet => self.key_vault(row).await,
            RowName::Search10k | RowName::Search1m => self.search(row).await,
            RowName::Invoke => super::invoke::row(self.running, self.sizes).await,
            RowName::UpCold | RowName::UpWarm | RowName::RelayConnect | RowName::UpDocker => {
                anyhow::bail!("{} starts its own landscape", row.as_str())
            }
        }
    }

    /// A client sending from `host` through the fabric.
    pub(crate) fn client(&self, host: &str) -> anyhow::Result<reqwest::Client> {
        self.running.fabric().http_client(host, &self.ca)
    }

    /// The hosts a client of a service tries: the internet for a public one, the Power
    /// Platform hosts (delegated subnets) for one behind private endpoints.
    fn source_hosts(&self, public: bool) -> Vec<String> {
        if public {
            return vec![INTERNET.to_string()];
        }
        self.landscape
            .hosts
            .iter()
            .filter(|h| matches!(h.kind, HostKind::PowerPlatform { .. }))
            .map(|h| h.name.clone())
            .collect()
    }

    fn authority(&self) -> anyhow::Result<String> {
        Ok(self
            .running
            .ready()
            .entra
            .as_ref()
            .context("the landscape runs no Entra")?
            .authority
            .clone())
    }

    /// The client-credentials token request of every app with a secret, for `scope`.
    fn token_requests(&self, scope: &str) -> Vec<Request> {
        self.running
            .ready()
            .apps
            .values()
            .filter_map(|app| {
                let secret = app.client_secret.clone()?;
                let mut r = Request::new(Method::POST, "/oauth2/v2.0/token");
                r.form = Some(Arc::new(vec![
                    ("grant_type", "client_credentials".to_string()),
                    ("client_id", app.client_id.clone()),
                    ("client_secret", secret),
                    ("scope", scope.to_string()),
                ]));
                Some(r)
            })
            .collect()
    }

    /// The tokens Entra issues for `scope` to the apps with a secret (from the internet host).
    async fn app_tokens(&self, scope: &str) -> anyhow::Result<Vec<String>> {
        let client = self.client(INTERNET)?;
        let authority = self.authority()?;
        let mut tokens = Vec::new();
        for request in self.token_requests(scope) {
            if let Ok((200, body)) = request.send(&client, &authority, Some(PROBE_TIMEOUT)).await
                && let Ok(answer) = serde_json::from_slice::<serde_json::Value>(&body)
                && let Some(token) = answer["access_token"].as_str()
            {
                tokens.push(token.to_string());
            }
        }
        Ok(tokens)
    }

    /// The first (host, base, token) of `services` (base URL, public access) for which
    /// `request` answers 200, with that answer's body.
    async fn find_subject(
        &self,
        services: &[(String, bool)],
        tokens: &[String],
        request: &Request,
    ) -> anyhow::Result<(reqwest::Client, String, Request, Bytes)> {
        for (base, public) in services {
            for host in self.source_hosts(*public) {
                let client = self.client(&host)?;
                for token in tokens {
                    let request = request.clone().bearer(token);
                    if let Ok((200, body)) = request.send(&client, base, Some(PROBE_TIMEOUT)).await
                    {
                        return Ok((client, base.clone(), request, body));
                    }
                }
            }
        }
        anyhow::bail!(
            "no app with a secret gets 200 for {} {} from a host that reaches the service",
            request.method,
            request.path
        )
    }

    /// The same request as `target`'s, sent to the reference server `served` on loopback by
    /// the reference's client.
    fn reference_target(&self, served: &Served, target: &Target) -> Target {
        Target::new(
            self.bare_client.clone(),
            &format!("https://{}", served.addr),
            target.request.clone(),
        )
    }

    /// `target` at the run's concurrency, then the same request against the bare axum+rustls
    /// server answering `body`.
    async fn against_bare(
        &self,
        row: RowName,
        what: String,
        target: &Target,
        body: Bytes,
    ) -> anyhow::Result<Row> {
        let c = self.sizes.concurrency;
        let measured = target.measure(self.sizes, c).await?;
        let bare = serve_bare(body.to_vec(), self.bare_tls.clone())?;
        let reference = self
            .reference_target(&bare, target)
            .measure(self.sizes, c)
            .await?;
        Row::new(
            row,
            what,
            measured.per_second,
            "req/s",
            "bare axum+rustls, same body (req/s)",
            reference.per_second,
            true,
            json!({ "measured": detail(&measured), "reference": detail(&reference) }),
        )
    }

    async fn token(&self) -> anyhow::Result<Row> {
        let client = self.client(INTERNET)?;
        let authority = self.authority()?;
        let mut working = None;
        for request in self.token_requests("https://vault.azure.net/.default") {
            if let Ok((200, _)) = request.send(&client, &authority, Some(PROBE_TIMEOUT)).await {
                working = Some(request);
                break;
            }
        }
        let request = working.context("no app with a secret gets a token")?;
        let d = Target::new(client, &authority, request)
            .measure(self.sizes, self.sizes.concurrency)
            .await?;
        let sign_time = self.sizes.sign_time;
        let signs =
            tokio::task::spawn_blocking(move || ppvnet_common::bench::rsa_sign_rate(sign_time))
                .await?
                .map_err(|_| anyhow::anyhow!("aws-lc cannot sign"))?;
        Row::new(
            RowName::Token,
            format!(
                "client-credentials tokens from the internet host, {} in flight",
                self.sizes.concurrency
            ),
            d.per_second,
            "tokens/s",
            "aws-lc RSA-2048 signatures/s (1 thread)",
            signs,
            true,
            detail(&d),
        )
    }

    async fn key_vault(&self, row: RowName) -> anyhow::Result<Row> {
        let tokens = self.app_tokens("https://vault.azure.net/.default").await?;
        let mut vaults: Vec<(String, bool)> = self
            .running
            .ready()
            .key_vaults
            .values()
            // The name Azure clients use: each host resolves it by its own DNS view.
            .map(|v| (v.azure_url.clone(), v.public_network_access == "Enabled"))
            .collect();
        // Public vaults first: they are reached from the internet host alone.
        vaults.sort_by_key(|(_, public)| !public);
        let path = format!("/secrets/{SECRET}?{KEY_VAULT_API}");
        let mut set = Request::new(Method::PUT, path.as_str());
        set.json = Some(Arc::new(json!({ "value": "v".repeat(100) })));
        let (client, base, set, set_body) = self
            .find_subject(&vaults, &tokens, &set)
            .await
            .context("no app may write a secret (Key Vault Secrets Officer) in any vault")?;
        let (request, body, what) = if row == RowName::KvGet {
            let mut get = Request::new(Method::GET, path.as_str());
            get.bearer = set.bearer.clone();
            let (_, body) = get.send(&client, &base, Some(PROBE_TIMEOUT)).await?;
            (get, body, "GET of a secret's latest version")
        } else {
            (set, set_body, "SET of a secret (a new version each)")
        };
        let target = Target::new(client, &base, request);
        let what = format!(
            "Key Vault {what} through the fabric, {} in flight",
            self.sizes.concurrency
        );
        self.against_bare(row, what, &target, body).await
    }

    async fn search(&self, row: RowName) -> anyhow::Result<Row> {
        use crate::scenario::model::ApiImplementation;
        let want = if row == RowName::Search10k {
            super::CASES_10K
        } else {
            super::CASES_1M
        };
        let api = self
            .landscape
            .scenario
            .apis
            .iter()
            .find(|a| {
                matches!(a.implementation, ApiImplementation::Search { cases, .. } if cases == want)
            })
            .with_context(|| format!("no search API with {want} cases"))?;
        let entry = self
            .running
            .ready()
            .apis
            .get(&api.name)
            .with_context(|| format!("the API {} is not in the ready file", api.name))?;
        let tokens = self
            .app_tokens(&format!("{}/.default", entry.app_id_uri))
            .await?;
        let services = [(
            format!("https://{}", entry.host_name),
            entry.public_network_access == "Enabled",
        )];
        let path = format!("/cases/search?q={SEARCH_TEXT}&top={SEARCH_TOP}");
        let (client, base, request, body) = self
            .find_subject(&services, &tokens, &Request::new(Method::GET, path))
            .await?;
        let target = Target::new(client, &base, request);
        let reference = self.search_reference(&api.name, &body).await?;
        let c = self.sizes.concurrency;
        let measured = target.measure(self.sizes, c).await?;
        let query_server = reference.serve(self.bare_tls.clone())?;
        let same_query = self
            .reference_target(&query_server, &target)
            .measure(self.sizes, c)
            .await?;
        drop(query_server);
        let body_server = serve_bare(body.to_vec(), self.bare_tls.clone())?;
        let same_body = self
            .reference_target(&body_server, &target)
            .measure(self.sizes, c)
            .await?;
        Row::new(
            row,
            format!("case search at {want} cases ({}), {c} in flight", api.name),
            measured.per_second,
            "req/s",
            "bare axum+rustls, same store query (req/s)",
            same_query.per_second,
            true,
            json!({
                "measured": detail(&measured),
                "reference": detail(&same_query),
                "bare_same_body": detail(&same_body),
            }),
        )
    }

    /// The reference of a search row: the API's own database (opened read-only beside the
    /// running API) searched with the row's query for an app's viewer. The subjects call with
    /// app-only tokens, which the API lets through only with `Cases.Read.All`: every case. The
    /// reference's first answer must be the API's `body` byte for byte (its continuation token
    /// binds query, viewer and data set), so the two do the same search.
    async fn search_reference(&self, api: &str, body: &Bytes) -> anyhow::Result<SearchReference> {
        // Where `services::search::start` builds the API's database: `Launch::state_dir("apis")`,
        // which is the run folder when no data folder is set (the bench sets none).
        let database = self.run_dir.join("apis").join(format!("{api}.sqlite"));
        let store = tokio::task::spawn_blocking(move || CaseStore::open_existing(&database))
            .await?
            .with_context(|| format!("the database of the search API {api}"))?;
        let query = SearchQuery {
            text: Some(SEARCH_TEXT.to_string()),
            status: None,
            top: SEARCH_TOP,
            after: None,
        };
        let reference = SearchReference::new(std::sync::Arc::new(store), query, Viewer::All);
        let answered = reference
            .answer()
            .await
            .map_err(|e| anyhow::anyhow!("the reference search failed: {e}"))?;
        anyhow::ensure!(
            answered == *body,
            "the reference search of {api} answers another body than the API ({} bytes, the \
             API {} bytes): not the same query, viewer or data",
            answered.len(),
            body.len()
        );
        Ok(reference)
    }
}
