//! A small landscape for the runtime tests: the real mock Entra (plain HTTP), the real fake Key
//! Vault (HTTPS as `*.vault.azure.net`, test CA), a wiremock backend reached as
//! `cases.contoso.example`, a test [`Outbound`] mapping hosts to plain clients, and the Power
//! Platform service itself.
//!
//! The connector logic is [`FakeLogic`], a few lines standing in for `Connector::prepare` and
//! the policies (built on the `pp-connector` branch): host from `@environmentVariables`, the
//! call's path and query, an `X-Api-Key` header from a Secret variable (the definition's
//! `setheader` policy), 401 → connection unauthenticated.

#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use ppvnet_common::{Clock, Endpoint};
use ppvnet_entra::config::*;
use ppvnet_entra::{Entra, EntraConfig};
use ppvnet_keyvault::{Authorization, KeyVault, KeyVaultConfig, KeyVaultRole, RoleAssignment};
use ppvnet_powerplatform::connector::{
    BackendRequest, BackendResponse, Bindings, Call, CallError, ConnectionAuth, Connector,
    ImportError, OAuthSettings, ResponseOutcome, Upload,
};
use ppvnet_powerplatform::runtime::config::{
    ClientCredential, ConnectorConfig, DATAVERSE_APP_ID, EnvironmentConfig, Limits, VariableConfig,
    VariableKind,
};
use ppvnet_powerplatform::runtime::{ConnectorLogic, Outbound, PowerPlatform, RuntimeConfig};
use serde_json::{Value, json};
use wiremock::MockServer;

pub const TENANT: &str = "8a3b2c1d-4e5f-4a6b-9c8d-7e6f5a4b3c2d";
pub const DOMAIN: &str = "contoso.onmicrosoft.com";

pub const ALICE: &str = "alice@contoso.onmicrosoft.com";
pub const ALICE_ID: &str = "a11ce000-0000-4000-8000-000000000001";
pub const ALICE_PASSWORD: &str = "Alice-Pa55word!";
pub const BOB: &str = "bob@contoso.onmicrosoft.com";
pub const BOB_ID: &str = "b0b00000-0000-4000-8000-000000000002";
pub const BOB_PASSWORD: &str = "Bob-Pa55word!";

/// "Power Apps": the public client users get API Hub tokens through.
pub const POWER_APPS: &str = "4e291c71-d680-4d0e-9640-0a3358e31177";
pub const APIHUB_APP: &str = "fe053c5f-3692-4f14-aef2-ee34fc081cae";
pub const APIHUB_SCOPE_ID: &str = "a0000000-0000-4000-8000-0000000000a1";
pub const CASES_API: &str = "11111111-aaaa-4aaa-8aaa-111111111111";
pub const CASES_URI: &str = "api://contoso-cases";
pub const CASES_READ_ID: &str = "a1111111-0000-4000-8000-000000000001";
pub const CASES_READ_ALL_ID: &str = "a1111111-0000-4000-8000-000000000002";
/// The connector's app registration (confidential client).
pub const CONNECTOR_APP: &str = "33333333-cccc-4ccc-8ccc-333333333333";
pub const CONNECTOR_SECRET: &str = "Cnx8Q~connector-secret-long-enough-0001";
pub const CONNECTOR_SECRET_ID: &str = "c3333333-0000-4000-8000-000000000001";
pub const DATAVERSE_SECRET: &str = "Dvx8Q~dataverse-secret-long-enough-0001";
pub const DATAVERSE_SP: &str = "d0000000-0000-4000-8000-0000000000d5";
/// An administrator app that writes secrets (rotation).
pub const ADMIN_APP: &str = "66666666-ffff-4fff-8fff-666666666666";
pub const ADMIN_SECRET: &str = "Adm8Q~admin-secret-long-enough-000000001";
pub const ADMIN_SP: &str = "a0000000-0000-4000-8000-0000000000ad";

pub const ENV: &str = "contoso-dev";
pub const ENV_ID: &str = "0f9e8d7c-6b5a-4c3d-8e2f-1a0b9c8d7e6f";
pub const CONNECTOR: &str = "contoso-cases";
pub const HOST_A: &str = "pp-contoso-dev-westeurope";
pub const HOST_B: &str = "pp-contoso-dev-northeurope";
/// A host whose connections are refused (no route to the backend or the vault).
pub const HOST_DOWN: &str = "pp-contoso-dev-broken";
pub const BACKEND_HOST: &str = "cases.contoso.example";
pub const API_KEY_V1: &str = "api-key-version-1";

/// The test CA and a leaf for `*.vault.azure.net`.
pub struct Pki {
    kit: ppvnet_testkit::TestPki,
    pub server: Arc<rustls::ServerConfig>,
}

impl Pki {
    pub fn new() -> Self {
        ppvnet_common::serve::install_crypto_provider();
        let kit = ppvnet_testkit::TestPki::new("ppvnet powerplatform test CA");
        Self {
            server: kit.server_config(&["*.vault.azure.net"]),
            kit,
        }
    }

    /// A client builder of a host: trusts the CA, no proxy, no redirects followed.
    fn client_builder(&self) -> reqwest::ClientBuilder {
        self.kit
            .client_builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
    }
}

/// Hosts → clients; the active host per environment can be switched, or switched by the use of
/// a host (a failover happening while a call is in flight).
pub struct TestOutbound {
    clients: HashMap<String, reqwest::Client>,
    active: Mutex<HashMap<String, String>>,
    failover_on_use: Mutex<Option<(String, String)>>,
}

impl TestOutbound {
    pub fn set_active(&self, env: &str, host: &str) {
        self.active
            .lock()
            .unwrap()
            .insert(env.to_owned(), host.to_owned());
    }

    /// When a client for `from` is next requested, the active host of [`ENV`] becomes `to`.
    pub fn fail_over_when_used(&self, from: &str, to: &str) {
        *self.failover_on_use.lock().unwrap() = Some((from.to_owned(), to.to_owned()));
    }
}

impl Outbound for TestOutbound {
    fn active_host(&self, environment: &str) -> Result<String, String> {
        self.active
            .lock()
            .unwrap()
            .get(environment)
            .cloned()
            .ok_or_else(|| format!("no active host for {environment}"))
    }

    fn client(&self, host: &str) -> Result<reqwest::Client, String> {
        let mut failover = self.failover_on_use.lock().unwrap();
        if failover.as_ref().is_some_and(|(from, _)| from == host)
            && let Some((_, to)) = failover.take()
        {
            self.set_active(ENV, &to);
        }
        self.clients
            .get(host)
            .cloned()
            .ok_or_else(|| format!("unknown host {host}"))
    }
}

fn client_for(pki: &Pki, names: &[&str], addr: SocketAddr) -> reqwest::Client {
    let mut b = pki.client_builder();
    for name in names {
        b = b.resolve(name, addr);
    }
    b.build().unwrap()
}

/// The connector definition as uploaded. The fake logic reads none of it; the runtime scans it
/// for `@environmentVariables` references, and the ignored end-to-end test imports it for real.
pub fn upload() -> Upload {
    let swagger = json!({
        "swagger": "2.0",
        "info": {"title": "Contoso Cases", "version": "1.0"},
        "host": "@environmentVariables(\"cr_BackendHost\")",
        "basePath": "/",
        "schemes": ["http"],
        "paths": {"/cases/search": {"get": {
            "operationId": "SearchCases",
            "parameters": [{"name": "q", "in": "query", "type": "string", "required": false}],
            "responses": {"200": {"description": "ok"}}
        }}}
    });
    let properties = json!({"properties": {
        "connectionParameters": {"token": {"type": "oauthSetting", "oAuthSettings": {
            "identityProvider": "aad",
            "clientId": "@environmentVariables(\"cr_ClientId\")",
            "clientSecret": "@environmentVariables(\"cr_ClientSecret\")",
            "scopes": [format!("{CASES_URI}/Cases.Read")],
            "redirectMode": "GlobalPerConnector",
            "properties": {"IsFirstParty": "False", "AzureActiveDirectoryResourceId": CASES_URI},
            "customParameters": {
                "loginUri": {"value": "https://login.microsoftonline.com"},
                "tenantId": {"value": TENANT},
                "resourceUri": {"value": CASES_URI},
                "enableOnbehalfOfLogin": {"value": "false"}
            }
        }}},
        "policyTemplateInstances": [
            {"templateId": "setheader", "title": "API key",
             "parameters": {"x-ms-apimTemplateParameter.name": "X-Api-Key",
                            "x-ms-apimTemplateParameter.value": "@environmentVariables(\"cr_ApiKey\")",
                            "x-ms-apimTemplateParameter.existsAction": "override",
                            "x-ms-apimTemplate-policySection": "Request"}},
            {"templateId": "setconnectionstatustounauthenticated", "title": "401",
             "parameters": {"x-ms-apimTemplateParameter.statusCode": 401}}
        ]
    }});
    Upload {
        swagger: serde_json::to_vec(&swagger).unwrap(),
        properties: serde_json::to_vec(&properties).unwrap(),
        script: None,
    }
}

/// [`upload`] as the connector branch would import it.
pub fn connector(name: &str) -> Connector {
    connector_with(name, &FakeLogic::default())
}

fn connector_with(name: &str, fake: &FakeLogic) -> Connector {
    Connector {
        name: name.to_owned(),
        title: "Contoso Cases".into(),
        host: "@environmentVariables(\"cr_BackendHost\")".into(),
        base_path: "/".into(),
        scheme: "http".into(),
        // The case-search app looks for this operation.
        operations: vec![ppvnet_powerplatform::connector::Operation {
            id: "SearchCases".into(),
            method: "GET".into(),
            path: "/cases/search".into(),
            summary: None,
            parameters: Vec::new(),
            trigger: false,
        }],
        policies: Vec::new(),
        auth: ConnectionAuth::OAuth(OAuthSettings {
            identity_provider: "aad".into(),
            client_id: "@environmentVariables(\"cr_ClientId\")".into(),
            client_secret: Some("@environmentVariables(\"cr_ClientSecret\")".into()),
            scopes: fake.scopes.clone(),
            redirect_mode: "GlobalPerConnector".into(),
            redirect_url: fake.redirect_url.clone(),
            resource_uri: Some(CASES_URI.into()),
            tenant_id: Some(TENANT.into()),
            login_uri: Some("https://login.microsoftonline.com".into()),
            on_behalf_of: false,
            service_principal: true,
        }),
        connection_parameters: BTreeMap::new(),
    }
}

/// Stands in for the connector branch's methods (see the module docs). The OAuth settings
/// can differ from [`upload`]'s: no scopes (v1, resource only) or a fixed redirect URL.
#[derive(Clone, Debug)]
pub struct FakeLogic {
    pub scopes: Vec<String>,
    pub redirect_url: Option<String>,
}

impl Default for FakeLogic {
    fn default() -> Self {
        Self {
            scopes: vec![format!("{CASES_URI}/Cases.Read")],
            redirect_url: None,
        }
    }
}

impl ConnectorLogic for FakeLogic {
    fn import(&self, name: &str, _upload: &Upload) -> Result<Connector, ImportError> {
        Ok(connector_with(name, self))
    }

    fn prepare(
        &self,
        connector: &Connector,
        call: &Call,
        bindings: &Bindings,
    ) -> Result<BackendRequest, CallError> {
        if call.path == "/nope" {
            return Err(CallError::NoOperation(format!(
                "No operation of '{}' matches {} {}.",
                connector.name, call.method, call.path
            )));
        }
        let host = self.expand(&connector.host, bindings)?;
        let query = if call.query.is_empty() {
            String::new()
        } else {
            format!("?{}", call.query)
        };
        let mut headers = call.headers.clone();
        let key = self.expand("@environmentVariables(\"cr_ApiKey\")", bindings)?;
        headers.push(("X-Api-Key".into(), key));
        Ok(BackendRequest {
            operation_id: "SearchCases".into(),
            method: call.method.clone(),
            url: format!("{}://{host}{}{query}", connector.scheme, call.path),
            headers,
            body: call.body.clone(),
        })
    }

    fn on_response(
        &self,
        _connector: &Connector,
        _request: &BackendRequest,
        _call: &Call,
        response: BackendResponse,
        _bindings: &Bindings,
    ) -> ResponseOutcome {
        let connection_unauthenticated = response.status == 401;
        ResponseOutcome {
            response,
            connection_unauthenticated,
            policy_error: None,
        }
    }

    fn on_failure(
        &self,
        _connector: &Connector,
        _request: &BackendRequest,
        _call: &Call,
        _bindings: &Bindings,
    ) -> Vec<(String, String)> {
        vec![("x-failure-policy".into(), "applied".into())]
    }

    fn expand(&self, setting: &str, bindings: &Bindings) -> Result<String, CallError> {
        const MARKER: &str = "@environmentVariables(\"";
        let Some(rest) = setting.strip_prefix(MARKER) else {
            return Ok(setting.to_owned());
        };
        let name = rest.trim_end_matches("\")");
        bindings
            .environment_variables
            .get(name)
            .cloned()
            .ok_or_else(|| CallError::Unresolved(format!("no variable {name}")))
    }
}

/// Which vault the connector's API key reference points at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ApiKeyVault {
    Granted,
    Denied,
}

pub struct Options {
    pub limits: Limits,
    pub api_key_vault: ApiKeyVault,
    /// `None`: [`FakeLogic::default`]; `Some`: the given logic (the real one in ignored tests).
    pub logic: Option<Arc<dyn ConnectorLogic>>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            limits: Limits::default(),
            api_key_vault: ApiKeyVault::Granted,
            logic: None,
        }
    }
}

pub struct Landscape {
    pub clock: Clock,
    pub entra: Entra,
    pub entra_base: String,
    pub backend: MockServer,
    pub outbound: Arc<TestOutbound>,
    pub pp: PowerPlatform,
    /// The runtime's base URL.
    pub base: String,
    pub http: reqwest::Client,
    kv_client: reqwest::Client,
    _stops: Vec<tokio::sync::oneshot::Sender<()>>,
}

fn shared_key_dir() -> &'static std::path::Path {
    static DIR: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    DIR.get_or_init(|| {
        let dir =
            std::env::temp_dir().join(format!("ppvnet-pp-runtime-keys-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    })
}

fn stop_pair() -> (
    tokio::sync::oneshot::Sender<()>,
    impl Future<Output = ()> + Send + 'static,
) {
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    (tx, async move {
        let _ = rx.await;
    })
}

impl Landscape {
    pub async fn start(options: Options) -> Self {
        ppvnet_common::serve::install_crypto_provider();
        let clock = Clock::new();
        let mut stops = Vec::new();
        // Entra.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let entra_base = format!("http://{}", listener.local_addr().unwrap());
        let pp_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", pp_listener.local_addr().unwrap());
        let entra = Entra::new(
            &entra_config(&base),
            clock.clone(),
            url::Url::parse(&entra_base).unwrap(),
            Some(shared_key_dir()),
        )
        .unwrap();
        let (tx, stop) = stop_pair();
        stops.push(tx);
        tokio::spawn(ppvnet_entra::run(
            entra.clone(),
            vec![Endpoint::public(listener)],
            None,
            stop,
        ));
        // Key Vault.
        let pki = Pki::new();
        let plain = reqwest::Client::builder().no_proxy().build().unwrap();
        let check = Arc::new(ppvnet_keyvault::EntraTokenCheck::new(
            &entra_base,
            [TENANT],
            plain,
            clock.clone(),
        ));
        let kv = KeyVault::new(
            keyvault_config(),
            clock.clone(),
            ppvnet_common::net::socket_peers(),
            check,
        )
        .unwrap();
        let kv_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let kv_addr = kv_listener.local_addr().unwrap();
        let (tx, stop) = stop_pair();
        stops.push(tx);
        tokio::spawn(ppvnet_keyvault::run(
            kv,
            vec![Endpoint::public(kv_listener)],
            Some(pki.server.clone()),
            stop,
        ));
        // Backend and hosts.
        let backend = MockServer::start().await;
        let backend_addr = *backend.address();
        let vaults = ["kv-granted.vault.azure.net", "kv-denied.vault.azure.net"];
        let refused: SocketAddr = "127.0.0.2:0".parse().unwrap();
        let mut clients = HashMap::new();
        clients.insert("internet".to_owned(), client_for(&pki, &[], kv_addr));
        for host in [HOST_A, HOST_B] {
            let mut c = pki.client_builder().resolve(BACKEND_HOST, backend_addr);
            for v in vaults {
                c = c.resolve(v, kv_addr);
            }
            clients.insert(host.to_owned(), c.build().unwrap());
        }
        let mut names = vaults.to_vec();
        names.push(BACKEND_HOST);
        clients.insert(HOST_DOWN.to_owned(), client_for(&pki, &names, refused));
        let kv_client = clients[HOST_A].clone();
        let outbound = Arc::new(TestOutbound {
            clients,
            active: Mutex::new(HashMap::from([(ENV.to_owned(), HOST_A.to_owned())])),
            failover_on_use: Mutex::new(None),
        });
        // Power Platform.
        let config = runtime_config(&entra_base, &base, backend_addr.port(), &options);
        let logic = options
            .logic
            .clone()
            .unwrap_or_else(|| Arc::new(FakeLogic::default()));
        let pp = PowerPlatform::with_logic(config, outbound.clone(), clock.clone(), logic)
            .await
            .unwrap();
        let (tx, stop) = stop_pair();
        stops.push(tx);
        tokio::spawn(ppvnet_powerplatform::run(
            pp.clone(),
            vec![Endpoint::public(pp_listener)],
            None,
            stop,
        ));
        Self {
            clock,
            entra,
            entra_base,
            backend,
            outbound,
            pp,
            base,
            http: reqwest::Client::builder()
                .no_proxy()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            kv_client,
            _stops: stops,
        }
    }

    /// A user token for API Hub (ROPC through the Power Apps client).
    pub async fn user_token(&self, user: &str, password: &str) -> String {
        self.ropc(user, password, "https://apihub.azure.com/Runtime.All")
            .await
    }

    pub async fn ropc(&self, user: &str, password: &str, scope: &str) -> String {
        let r = self
            .http
            .post(format!("{}/{TENANT}/oauth2/v2.0/token", self.entra_base))
            .form(&[
                ("grant_type", "password"),
                ("client_id", POWER_APPS),
                ("username", user),
                ("password", password),
                ("scope", scope),
            ])
            .send()
            .await
            .unwrap();
        let body: Value = r.json().await.unwrap();
        body["access_token"]
            .as_str()
            .unwrap_or_else(|| panic!("no token: {body}"))
            .to_owned()
    }

    /// `POST /connections` as `token`'s user.
    pub async fn create_connection(&self, token: &str, body: Value) -> (u16, Value) {
        let r = self
            .http
            .post(format!("{}/connections", self.base))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.json().await.unwrap())
    }

    /// A connected service principal connection owned by Alice; returns its id.
    pub async fn app_connection(&self, alice: &str) -> String {
        let (status, c) = self
            .create_connection(
                alice,
                json!({"environment": ENV, "connector": CONNECTOR, "servicePrincipal": true}),
            )
            .await;
        assert_eq!(status, 201, "{c}");
        assert_eq!(c["status"], "Connected", "{c}");
        c["id"].as_str().unwrap().to_owned()
    }

    /// A user connection for Alice through the consent link, signed in headlessly on the mock
    /// Entra's page; returns its id.
    pub async fn user_connection(&self, alice: &str) -> String {
        let (status, c) = self
            .create_connection(
                alice,
                json!({"environment": ENV_ID, "connector": CONNECTOR}),
            )
            .await;
        assert_eq!(status, 201, "{c}");
        assert_eq!(c["status"], "Unauthenticated");
        let link = url::Url::parse(c["consentLink"].as_str().unwrap()).unwrap();
        let mut form: Vec<(String, String)> = link.query_pairs().into_owned().collect();
        form.push(("login".into(), ALICE.into()));
        form.push(("passwd".into(), ALICE_PASSWORD.into()));
        let mut authorize = link.clone();
        authorize.set_query(None);
        let r = self.http.post(authorize).form(&form).send().await.unwrap();
        assert_eq!(r.status(), 302, "{}", r.text().await.unwrap());
        let location = r.headers()["location"].to_str().unwrap().to_owned();
        assert!(location.starts_with(&format!("{}/redirect/{CONNECTOR}?", self.base)));
        let r = self.http.get(&location).send().await.unwrap();
        assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
        c["id"].as_str().unwrap().to_owned()
    }

    /// `POST /invoke` for `connection` with `path_and_query` below it.
    /// `GET path` through the runtime on `connection` as `token`, sent.
    pub async fn call(&self, token: &str, connection: &str, path: &str) -> reqwest::Response {
        self.invoke(Some(token), connection, path)
            .send()
            .await
            .unwrap()
    }

    /// Alice's token and an app connection of hers: how most runtime tests begin.
    pub async fn alice_app_connection(&self) -> (String, String) {
        let alice = self.user_token(ALICE, ALICE_PASSWORD).await;
        let id = self.app_connection(&alice).await;
        (alice, id)
    }

    pub fn invoke(
        &self,
        token: Option<&str>,
        connection: &str,
        path: &str,
    ) -> reqwest::RequestBuilder {
        let mut r = self
            .http
            .post(format!("{}/invoke", self.base))
            .header(
                "x-ms-request-url",
                format!("/apim/{CONNECTOR}/{connection}{path}"),
            )
            .header("x-ms-request-method", "GET")
            .header(
                "x-ms-client-environment-id",
                format!("/providers/Microsoft.PowerApps/environments/{ENV}"),
            );
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        r
    }

    pub async fn control(&self, method: reqwest::Method, path: &str) -> (u16, Value) {
        let app = ppvnet_powerplatform::control_router(self.pp.clone());
        let request = axum::http::Request::builder()
            .method(method.as_str())
            .uri(path)
            .body(axum::body::Body::empty())
            .unwrap();
        let response = tower::ServiceExt::oneshot(app, request).await.unwrap();
        let status = response.status().as_u16();
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap();
        let value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        (status, value)
    }

    pub async fn connection(&self, id: &str) -> Value {
        let (status, c) = self
            .control(reqwest::Method::GET, &format!("/connections/{id}"))
            .await;
        assert_eq!(status, 200, "{c}");
        c
    }

    /// Writes a new version of `secret` in `kv-granted` as the admin app.
    pub async fn rotate_secret(&self, secret: &str, value: &str) {
        let r = self
            .http
            .post(format!("{}/{TENANT}/oauth2/v2.0/token", self.entra_base))
            .form(&[
                ("grant_type", "client_credentials"),
                ("client_id", ADMIN_APP),
                ("client_secret", ADMIN_SECRET),
                ("scope", "https://vault.azure.net/.default"),
            ])
            .send()
            .await
            .unwrap();
        let body: Value = r.json().await.unwrap();
        let token = body["access_token"].as_str().unwrap();
        let r = self
            .kv_client
            .put(format!(
                "https://kv-granted.vault.azure.net/secrets/{secret}?api-version=7.5"
            ))
            .bearer_auth(token)
            .json(&json!({ "value": value }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    }
}

fn runtime_config(entra: &str, base: &str, backend_port: u16, options: &Options) -> RuntimeConfig {
    let secret_ref = |vault: &str, name: &str| {
        format!(
            "/subscriptions/6f1a0000-0000-4000-8000-000000000001/resourceGroups/rg-contoso/providers/Microsoft.KeyVault/vaults/{vault}/secrets/{name}"
        )
    };
    let api_key_vault = match options.api_key_vault {
        ApiKeyVault::Granted => "kv-granted",
        ApiKeyVault::Denied => "kv-denied",
    };
    let variable = |name: &str, kind, value: String| VariableConfig {
        schema_name: name.to_owned(),
        kind,
        value,
    };
    RuntimeConfig {
        tenant_id: TENANT.into(),
        tenant_domain: DOMAIN.into(),
        authority_host: entra.into(),
        public_url: base.into(),
        app_url: base.into(),
        environments: vec![EnvironmentConfig {
            name: ENV.into(),
            id: ENV_ID.into(),
            variables: vec![
                variable(
                    "cr_BackendHost",
                    VariableKind::String,
                    format!("{BACKEND_HOST}:{backend_port}"),
                ),
                variable("cr_ClientId", VariableKind::String, CONNECTOR_APP.into()),
                variable(
                    "cr_ClientSecret",
                    VariableKind::Secret,
                    secret_ref("kv-granted", "connector-secret"),
                ),
                variable(
                    "cr_ApiKey",
                    VariableKind::Secret,
                    secret_ref(api_key_vault, "api-key"),
                ),
            ],
        }],
        connectors: vec![ConnectorConfig {
            name: CONNECTOR.into(),
            environments: vec![ENV.into()],
            upload: upload(),
        }],
        dataverse: ClientCredential {
            client_id: DATAVERSE_APP_ID.into(),
            client_secret: DATAVERSE_SECRET.into(),
        },
        limits: options.limits.clone(),
    }
}

fn keyvault_config() -> KeyVaultConfig {
    let seed = |name: &str, value: &str| ppvnet_keyvault::SeedSecret {
        name: name.into(),
        value: value.into(),
        content_type: None,
        tags: BTreeMap::new(),
        enabled: true,
        not_before: None,
        expires: None,
        managed: false,
    };
    let vault = |name: &str, assignments: Vec<RoleAssignment>| ppvnet_keyvault::VaultConfig {
        name: name.into(),
        tenant_id: TENANT.into(),
        subscription_id: "6f1a0000-0000-4000-8000-000000000001".into(),
        resource_group: "rg-contoso".into(),
        region: "westeurope".into(),
        public_network_access: Default::default(),
        network_acls: Default::default(),
        private_endpoints: Vec::new(),
        host_aliases: Vec::new(),
        authorization: Authorization::Rbac {
            role_assignments: assignments,
        },
        soft_delete_retention_days: 7,
        purge_protection: false,
        pending_operation_ms: 0,
        secrets: vec![
            seed("connector-secret", CONNECTOR_SECRET),
            seed("api-key", API_KEY_V1),
        ],
    };
    let role = |principal: &str, role| RoleAssignment {
        principal_id: principal.into(),
        role,
        secret: None,
    };
    KeyVaultConfig {
        vaults: vec![
            vault(
                "kv-granted",
                vec![
                    role(DATAVERSE_SP, KeyVaultRole::SecretsUser),
                    role(ADMIN_SP, KeyVaultRole::SecretsOfficer),
                ],
            ),
            vault(
                "kv-denied",
                vec![role(ADMIN_SP, KeyVaultRole::SecretsOfficer)],
            ),
        ],
        ..KeyVaultConfig::default()
    }
}

fn secret(id: &str, text: &str) -> PasswordCredential {
    PasswordCredential {
        key_id: id.into(),
        display_name: None,
        secret_text: text.into(),
        start_date_time: None,
        end_date_time: Timestamp(4_102_444_800),
    }
}

fn user(id: &str, upn: &str, password: &str) -> UserConfig {
    UserConfig {
        id: id.into(),
        user_principal_name: upn.into(),
        display_name: upn.into(),
        given_name: None,
        surname: None,
        password: password.into(),
        member_of: vec![],
        account_enabled: true,
    }
}

fn entra_config(pp_base: &str) -> EntraConfig {
    let mut apihub = ApplicationConfig::new("Azure API Connections", APIHUB_APP);
    apihub.identifier_uris = vec!["https://apihub.azure.com".into()];
    apihub.api.oauth2_permission_scopes = vec![PermissionScope {
        id: APIHUB_SCOPE_ID.into(),
        value: "Runtime.All".into(),
        is_enabled: true,
    }];
    let mut power_apps = ApplicationConfig::new("Power Apps", POWER_APPS);
    power_apps.is_fallback_public_client = true;
    power_apps.public_client.redirect_uris = vec![
        "http://localhost".into(),
        ppvnet_powerplatform::runtime::app::sign_in_redirect_uri(pp_base),
        ppvnet_powerplatform::runtime::app::signed_out_uri(pp_base),
    ];
    power_apps.required_resource_access = vec![
        RequiredResourceAccess {
            resource_app_id: APIHUB_APP.into(),
            resource_access: vec![ResourceAccess {
                id: APIHUB_SCOPE_ID.into(),
                kind: ResourceAccessType::Scope,
            }],
            admin_consent_granted: true,
        },
        RequiredResourceAccess {
            resource_app_id: CASES_API.into(),
            resource_access: vec![ResourceAccess {
                id: CASES_READ_ID.into(),
                kind: ResourceAccessType::Scope,
            }],
            admin_consent_granted: true,
        },
    ];
    let mut cases = ApplicationConfig::new("Contoso Cases API", CASES_API);
    cases.identifier_uris = vec![CASES_URI.into()];
    cases.api.requested_access_token_version = Some(2);
    cases.api.oauth2_permission_scopes = vec![PermissionScope {
        id: CASES_READ_ID.into(),
        value: "Cases.Read".into(),
        is_enabled: true,
    }];
    cases.app_roles = vec![AppRole {
        id: CASES_READ_ALL_ID.into(),
        value: "Cases.Read.All".into(),
        allowed_member_types: vec![AppRoleMemberType::Application],
        display_name: None,
        is_enabled: true,
    }];
    let mut connector = ApplicationConfig::new("Contoso Cases connector", CONNECTOR_APP);
    connector.password_credentials = vec![secret(CONNECTOR_SECRET_ID, CONNECTOR_SECRET)];
    connector.web.redirect_uris = vec![format!("{pp_base}/redirect/{CONNECTOR}")];
    connector.required_resource_access = vec![RequiredResourceAccess {
        resource_app_id: CASES_API.into(),
        resource_access: vec![
            ResourceAccess {
                id: CASES_READ_ID.into(),
                kind: ResourceAccessType::Scope,
            },
            ResourceAccess {
                id: CASES_READ_ALL_ID.into(),
                kind: ResourceAccessType::Role,
            },
        ],
        admin_consent_granted: true,
    }];
    let mut dataverse = ApplicationConfig::new("Dataverse", DATAVERSE_APP_ID);
    dataverse.service_principal_id = Some(DATAVERSE_SP.into());
    dataverse.password_credentials = vec![secret(
        "d0000000-0000-4000-8000-000000000001",
        DATAVERSE_SECRET,
    )];
    let mut admin = ApplicationConfig::new("Vault admin", ADMIN_APP);
    admin.service_principal_id = Some(ADMIN_SP.into());
    admin.password_credentials = vec![secret("ad000000-0000-4000-8000-000000000001", ADMIN_SECRET)];
    EntraConfig {
        tenant_id: TENANT.into(),
        domain: DOMAIN.into(),
        display_name: Some("Contoso".into()),
        tenant_region_scope: "EU".into(),
        users: vec![
            user(ALICE_ID, ALICE, ALICE_PASSWORD),
            user(BOB_ID, BOB, BOB_PASSWORD),
        ],
        groups: vec![],
        applications: vec![
            apihub,
            power_apps,
            cases,
            connector,
            dataverse,
            admin,
            ApplicationConfig::azure_key_vault(),
        ],
    }
}
