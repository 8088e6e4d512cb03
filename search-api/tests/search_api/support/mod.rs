//! A local token issuer (discovery + JWKS served over loopback, RSA keys of our own) and a
//! running search API wired to it, with contoso's users and groups.

use std::sync::{Arc, Mutex};

use axum::Json;
use axum::extract::State;
use axum::routing;
use ppvnet_common::{Clock, Endpoint};
use ppvnet_search_api::{CaseOwner, SearchApi, SearchApiConfig};
use serde_json::{Value, json};

pub const TENANT: &str = "c76cdc05-9ef7-4021-9a9c-171dd3832ea4";
pub const API_CLIENT_ID: &str = "5e9c218b-a6be-46b5-8f6a-07731e1a4a91";
pub const API_URI: &str = "api://contoso-cases";
pub const CONNECTOR_CLIENT_ID: &str = "3eb65b93-4e4d-414a-bce7-1d626fd5acf6";
pub const CONNECTOR_SP: &str = "edf349a2-f52f-41fc-af88-96e0b16c7b1d";
pub const TEAM_NORTH: &str = "8f1da8ea-c517-4c5b-91b3-6952ece13786";
pub const TEAM_SOUTH: &str = "8a039948-af2d-4408-8900-b16181b8d55f";
pub const SUPERVISORS: &str = "03adf887-ed2f-4962-8530-7bf50650efcb";

#[derive(Clone, Copy, Debug)]
pub struct User {
    pub name: &'static str,
    pub oid: &'static str,
    pub group: &'static str,
}

pub const ALICE: User = User {
    name: "alice",
    oid: "2276843a-7273-459b-b0e8-730c2b509e9b",
    group: TEAM_NORTH,
};
pub const BOB: User = User {
    name: "bob",
    oid: "963b66a7-fcf7-47df-93c8-b847268009a4",
    group: TEAM_SOUTH,
};
pub const CAROL: User = User {
    name: "carol",
    oid: "5253c455-822c-46d6-9513-f9e099fdffa3",
    group: SUPERVISORS,
};

/// The testkit's signing authority: one RSA key with its Entra-shaped JWK.
pub type SigningKey = ppvnet_testkit::TokenAuthority;

pub fn signing_key(kid: &str) -> SigningKey {
    SigningKey::new(kid)
}

/// Discovery and JWKS on loopback; the published key set can be replaced at any time.
#[derive(Clone)]
pub struct Issuer {
    pub base: String,
    pub published: Arc<Mutex<Vec<Value>>>,
}

impl Issuer {
    pub async fn start(keys: Vec<Value>) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let issuer = Self {
            base: format!("http://{}", listener.local_addr().unwrap()),
            published: Arc::new(Mutex::new(keys)),
        };
        let router = axum::Router::new()
            .route(
                "/{tenant}/v2.0/.well-known/openid-configuration",
                routing::get(|State(i): State<Issuer>| async move {
                    Json(json!({
                        "issuer": format!("https://login.microsoftonline.com/{TENANT}/v2.0"),
                        "jwks_uri": format!("{}/{TENANT}/discovery/v2.0/keys", i.base),
                        "id_token_signing_alg_values_supported": ["RS256"],
                    }))
                }),
            )
            .route(
                "/{tenant}/discovery/v2.0/keys",
                routing::get(|State(i): State<Issuer>| async move {
                    Json(json!({"keys": *i.published.lock().unwrap()}))
                }),
            )
            .with_state(issuer.clone());
        tokio::spawn(async move { axum::serve(listener, router).await });
        issuer
    }

    pub fn publish(&self, keys: Vec<Value>) {
        *self.published.lock().unwrap() = keys;
    }
}

/// A v2 delegated access token for the API, shaped like Entra's (`access-tokens.md` sample).
pub fn user_claims(user: User, clock: &Clock) -> Value {
    let now = clock.unix();
    json!({
        "aud": API_CLIENT_ID,
        "iss": format!("https://login.microsoftonline.com/{TENANT}/v2.0"),
        "iat": now, "nbf": now, "exp": now + 3600,
        "aio": "opaque", "azp": CONNECTOR_CLIENT_ID, "azpacr": "1",
        "name": user.name, "oid": user.oid,
        "preferred_username": format!("{}@contoso.onmicrosoft.com", user.name),
        "rh": "opaque", "scp": "Cases.Read", "sub": format!("sub-{}", user.name),
        "tid": TENANT, "uti": "uti", "ver": "2.0",
        "groups": [user.group],
    })
}

/// A v2 client-credentials token of the connector's service principal.
pub fn app_claims(clock: &Clock, roles: &[&str]) -> Value {
    let now = clock.unix();
    json!({
        "aud": API_CLIENT_ID,
        "iss": format!("https://login.microsoftonline.com/{TENANT}/v2.0"),
        "iat": now, "nbf": now, "exp": now + 3600,
        "azp": CONNECTOR_CLIENT_ID, "azpacr": "1", "idtyp": "app",
        "oid": CONNECTOR_SP, "sub": CONNECTOR_SP, "roles": roles,
        "tid": TENANT, "ver": "2.0",
    })
}

pub fn sign(key: &SigningKey, claims: &Value) -> String {
    key.sign(claims)
}

pub fn config(issuer: &Issuer, cases: u64) -> SearchApiConfig {
    let mut config = SearchApiConfig::for_entra(&issuer.base, TENANT, API_CLIENT_ID, API_URI);
    config.data.seed = 11;
    config.data.count = cases;
    config.data.owners = [ALICE, BOB, CAROL]
        .iter()
        .map(|u| CaseOwner {
            object_id: u.oid.to_owned(),
            team_group_id: u.group.to_owned(),
        })
        .collect();
    config
}

/// A served API: `public` and `private` are the base URLs of its two listeners.
pub struct Running {
    pub api: SearchApi,
    pub public: String,
    pub private: String,
    pub clock: Clock,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Installs, once per process, a global subscriber that records nothing and enables INFO and
/// above. Tracing caches each callsite's interest process-wide, computed by the first thread
/// that reaches it; while the only subscriber is a thread-scoped one (the `logs` test's
/// capture), that computation asks the reaching thread's own default. A test on another thread
/// logging a request first would then cache "never" for the request-log line and the capture
/// would see nothing (tokio-rs/tracing#3611). With a global subscriber registered too, the
/// interest is computed over all of them. [`serve`] calls this before any search API code runs.
pub fn install_global_subscriber() {
    use tracing_subscriber::layer::SubscriberExt;
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let quiet =
            tracing_subscriber::registry().with(tracing_subscriber::filter::LevelFilter::INFO);
        // Failing means another global subscriber exists, which serves the same purpose.
        let _ = tracing::subscriber::set_global_default(quiet);
    });
}

pub async fn serve(config: SearchApiConfig, clock: Clock) -> Running {
    install_global_subscriber();
    ppvnet_common::serve::install_crypto_provider();
    let api = SearchApi::open(config, reqwest::Client::new(), clock.clone())
        .await
        .unwrap();
    let public = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let private = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let (public_url, private_url) = (
        format!("http://{}", public.local_addr().unwrap()),
        format!("http://{}", private.local_addr().unwrap()),
    );
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(ppvnet_search_api::run(
        api.clone(),
        vec![
            Endpoint::public(public),
            Endpoint::private(private, "pe-cases-api"),
        ],
        None,
        async move {
            let _ = stopped.await;
        },
    ));
    Running {
        api,
        public: public_url,
        private: private_url,
        clock,
        stop: Some(stop),
    }
}

/// Issuer with one key plus an API over `cases` cases.
pub async fn landscape(cases: u64) -> (Issuer, SigningKey, Running) {
    let key = signing_key("key-1");
    let issuer = Issuer::start(vec![key.jwk.clone()]).await;
    let running = serve(config(&issuer, cases), Clock::new()).await;
    (issuer, key, running)
}

pub async fn get(url: &str, token: Option<&str>) -> reqwest::Response {
    let mut request = reqwest::Client::new().get(url);
    if let Some(t) = token {
        request = request.bearer_auth(t);
    }
    request.send().await.unwrap()
}

pub fn www_authenticate(response: &reqwest::Response) -> String {
    response
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default()
}

/// Every page of a search, following continuation tokens; returns the case ids in order.
pub async fn all_pages(base: &str, token: &str, query: &str, top: u32) -> Vec<Value> {
    let mut cases = Vec::new();
    let mut continuation: Option<String> = None;
    loop {
        let mut url = reqwest::Url::parse(&format!("{base}/cases/search?{query}")).unwrap();
        url.query_pairs_mut().append_pair("top", &top.to_string());
        if let Some(c) = &continuation {
            url.query_pairs_mut().append_pair("continuationToken", c);
        }
        let response = get(url.as_str(), Some(token)).await;
        assert_eq!(response.status(), 200, "{url}");
        let body: Value = response.json().await.unwrap();
        let page = body["value"].as_array().unwrap();
        assert!(page.len() <= top as usize);
        cases.extend(page.iter().cloned());
        match body.get("continuationToken").and_then(Value::as_str) {
            Some(c) => continuation = Some(c.to_owned()),
            None => return cases,
        }
    }
}
