//! The data plane over HTTP with real token validation: every 4xx of the issue, network rules,
//! RBAC and access policies, headers, paging, soft delete, backup/restore and persistence.

use std::time::Duration;

use ppvnet_common::Clock;
use ppvnet_keyvault::{
    AccessPolicy, Authorization, DefaultAction, KeyVault, KeyVaultConfig, KeyVaultRole,
    PublicNetworkAccess, RoleAssignment, SecretPermission, SeedSecret, VaultConfig,
};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::common::{Authority, Running, TENANT, bind, new_kv};

const OFFICER: &str = "aaaaaaaa-0000-0000-0000-000000000001";
const READER: &str = "aaaaaaaa-0000-0000-0000-000000000002";
const NOBODY: &str = "aaaaaaaa-0000-0000-0000-000000000003";

fn vault(name: &str, addr: std::net::SocketAddr) -> VaultConfig {
    let mut v = VaultConfig::new(name, TENANT, "westus");
    v.host_aliases.push(addr.to_string());
    v.authorization = Authorization::Rbac {
        role_assignments: vec![
            RoleAssignment {
                principal_id: OFFICER.into(),
                role: KeyVaultRole::SecretsOfficer,
                secret: None,
            },
            RoleAssignment {
                principal_id: READER.into(),
                role: KeyVaultRole::SecretsUser,
                secret: None,
            },
        ],
    };
    v
}

struct Fixture {
    clock: Clock,
    authority: Authority,
    running: Running,
    http: reqwest::Client,
}

impl Fixture {
    async fn start(edit: impl FnOnce(&mut VaultConfig)) -> Self {
        Self::start_with(edit, None).await
    }

    async fn start_with(
        edit: impl FnOnce(&mut VaultConfig),
        data_dir: Option<std::path::PathBuf>,
    ) -> Self {
        let clock = Clock::new();
        let authority = Authority::start(clock.clone(), None).await;
        let public = bind();
        let private = bind();
        let mut v = vault("kv-test", public.local_addr().unwrap());
        v.host_aliases
            .push(private.local_addr().unwrap().to_string());
        edit(&mut v);
        let config = KeyVaultConfig {
            vaults: vec![v],
            data_dir,
            ..Default::default()
        };
        let kv = new_kv(config, &clock, authority.check(reqwest::Client::new()));
        let running = Running::serve(kv, (public, Some((private, "pe-kv-test"))), None);
        Self {
            clock,
            authority,
            running,
            http: reqwest::Client::new(),
        }
    }

    fn url(&self, path: &str) -> String {
        let sep = if path.contains('?') { '&' } else { '?' };
        format!(
            "http://{}{path}{sep}api-version=2025-07-01",
            self.running.public
        )
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        oid: &str,
        body: Option<Value>,
    ) -> (StatusCode, reqwest::header::HeaderMap, Value) {
        self.call_url(
            method,
            &self.url(path),
            Some(self.authority.token(oid)),
            body,
        )
        .await
    }

    async fn call_url(
        &self,
        method: Method,
        url: &str,
        token: Option<String>,
        body: Option<Value>,
    ) -> (StatusCode, reqwest::header::HeaderMap, Value) {
        let mut req = self
            .http
            .request(method, url)
            .header("x-ms-client-request-id", "client-42");
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status();
        let headers = resp.headers().clone();
        let bytes = resp.bytes().await.unwrap();
        let json = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap()
        };
        (status, headers, json)
    }

    async fn put(
        &self,
        path: &str,
        oid: &str,
        body: Value,
    ) -> (StatusCode, reqwest::header::HeaderMap, Value) {
        self.call(Method::PUT, path, oid, Some(body)).await
    }

    async fn restore(&self, blob: &str) -> (StatusCode, reqwest::header::HeaderMap, Value) {
        self.call(
            Method::POST,
            "/secrets/restore",
            OFFICER,
            Some(json!({"value": blob})),
        )
        .await
    }

    async fn delete_and_purge(&self, name: &str) {
        self.call(Method::DELETE, &format!("/secrets/{name}"), OFFICER, None)
            .await;
        self.call(
            Method::DELETE,
            &format!("/deletedsecrets/{name}"),
            OFFICER,
            None,
        )
        .await;
    }

    async fn set(&self, name: &str, value: &str) -> Value {
        let (s, _, b) = self
            .put(
                &format!("/secrets/{name}"),
                OFFICER,
                json!({"value": value}),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{b}");
        b
    }
}

fn error(body: &Value) -> (&str, &str, Option<&str>) {
    (
        body["error"]["code"].as_str().unwrap(),
        body["error"]["message"].as_str().unwrap(),
        body["error"]["innererror"]["code"].as_str(),
    )
}

#[tokio::test]
async fn no_token_gets_the_challenge_before_the_body_is_sent() {
    let f = Fixture::start(|_| {}).await;
    // Headers announce a body that never comes: the vault must answer without waiting for it.
    let mut tcp = tokio::net::TcpStream::connect(f.running.public)
        .await
        .unwrap();
    let request = format!(
        "PUT /secrets/probe?api-version=2025-07-01 HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n",
        f.running.public
    );
    tcp.write_all(request.as_bytes()).await.unwrap();
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(5), tcp.read(&mut buf))
        .await
        .unwrap()
        .unwrap();
    let text = String::from_utf8_lossy(&buf[..n]);
    assert!(text.starts_with("HTTP/1.1 401"), "{text}");
    assert!(text.contains(&format!(
        "www-authenticate: Bearer authorization=\"https://login.microsoftonline.com/{TENANT}\", resource=\"https://vault.azure.net\""
    )), "{text}");
    assert!(
        text.contains("AKV10000: Request is missing a Bearer, PoP, or MTLS_POP token."),
        "{text}"
    );
}

#[tokio::test]
async fn tokens_are_validated_for_audience_issuer_signature_and_expiry() {
    let f = Fixture::start(|_| {}).await;
    let url = f.url("/secrets");
    let get = |token: String| f.call_url(Method::GET, &url, Some(token), None);
    // Both audience spellings Key Vault accepts.
    for aud in ["https://vault.azure.net", "https://vault.azure.net/"] {
        let (s, _, _) = get(f.authority.token_for(TENANT, OFFICER, "app", aud)).await;
        assert_eq!(s, StatusCode::OK, "{aud}");
    }
    let (s, h, b) =
        get(f
            .authority
            .token_for(TENANT, OFFICER, "app", "https://management.azure.com/"))
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert!(h.get("www-authenticate").is_some());
    assert_eq!(
        error(&b).1,
        "AKV10022: Invalid audience. Expected https://vault.azure.net, found: https://management.azure.com/."
    );
    // A token of another tenant (its own issuer) is refused with AKV10032.
    let other = "22222222-3333-4444-5555-666666666666";
    let (s, _, b) = get(f
        .authority
        .token_for(other, OFFICER, "app", "https://vault.azure.net"))
    .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert_eq!(
        error(&b).1,
        format!(
            "AKV10032: Invalid issuer. Expected one of https://sts.windows.net/{TENANT}/, found https://sts.windows.net/{other}/."
        )
    );
    // v2 issuer of the vault's tenant is accepted.
    let now = f.clock.unix();
    let v2 = f.authority.sign(&json!({"aud": "https://vault.azure.net", "iss": format!("https://login.microsoftonline.com/{TENANT}/v2.0"),
        "iat": now, "nbf": now, "exp": now + 600, "azp": "app", "oid": OFFICER, "tid": TENANT, "ver": "2.0"}));
    assert_eq!(get(v2).await.0, StatusCode::OK);
    // A forged signature.
    let mut forged = f.authority.token(OFFICER);
    forged.truncate(forged.len() - 4);
    forged.push_str("AAAA");
    assert_eq!(get(forged).await.0, StatusCode::UNAUTHORIZED);
    // Expiry on the run clock.
    let token = f.authority.token(OFFICER);
    f.clock.shift_secs(2 * 3600);
    let (s, _, b) = get(token).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert!(error(&b).1.contains("expired"), "{b}");
}

#[tokio::test]
async fn api_version_missing_or_unknown_is_a_bad_parameter_and_old_versions_work() {
    let f = Fixture::start(|_| {}).await;
    let token = Some(f.authority.token(OFFICER));
    let base = format!("http://{}/secrets", f.running.public);
    let (s, _, b) = f.call_url(Method::GET, &base, token.clone(), None).await;
    assert_eq!((s, error(&b).0), (StatusCode::BAD_REQUEST, "BadParameter"));
    let (s, _, b) = f
        .call_url(
            Method::GET,
            &format!("{base}?api-version=1999-01-01"),
            token.clone(),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(
        error(&b).1,
        "The specified version (1999-01-01) is not recognized. Consider using the latest supported version (2025-07-01)."
    );
    for v in ["7.0", "7.4", "7.6", "2025-06-01", "2026-03-01-preview"] {
        let (s, _, _) = f
            .call_url(
                Method::GET,
                &format!("{base}?api-version={v}"),
                token.clone(),
                None,
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
    }
}

#[tokio::test]
async fn secret_crud_versions_and_headers() {
    let f = Fixture::start(|_| {}).await;
    let first = f.set("app-secret", "v1").await;
    let id1 = first["id"].as_str().unwrap().to_owned();
    assert!(
        id1.starts_with(&format!("http://{}/secrets/app-secret/", f.running.public)),
        "{id1}"
    );
    let version1 = id1.rsplit('/').next().unwrap().to_owned();
    assert_eq!(version1.len(), 32);
    assert_eq!(
        first["attributes"]["recoveryLevel"],
        "Recoverable+Purgeable"
    );
    assert_eq!(first["attributes"]["recoverableDays"], 90);
    let (s, h, second) = f.put("/secrets/app-secret", OFFICER, json!({"value": "v2", "contentType": "text/plain", "tags": {"a": "b"}, "attributes": {"exp": 2527401600i64}})).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(h["x-ms-client-request-id"], "client-42");
    assert_eq!(h["x-ms-keyvault-region"], "westus");
    assert_eq!(h["x-ms-keyvault-service-version"], "1.9.3070.1");
    assert_eq!(
        h["x-ms-keyvault-network-info"],
        "conn_type=Ipv4;addr=127.0.0.1;act_addr_fam=InterNetwork;"
    );
    assert_eq!(h["x-ms-request-id"].len(), 36);
    assert_eq!(h["x-ms-keyvault-rbac-assignment-id"].len(), 32);
    assert_eq!(h["content-type"], "application/json; charset=utf-8");
    assert_eq!(second["attributes"]["exp"], 2527401600i64);

    // Latest with and without the trailing slash; a version by id.
    for path in [
        "/secrets/app-secret",
        "/secrets/app-secret/",
        "/secrets/APP-SECRET/",
    ] {
        let (s, _, b) = f.call(Method::GET, path, READER, None).await;
        assert_eq!(
            (s, b["value"].as_str()),
            (StatusCode::OK, Some("v2")),
            "{path}"
        );
    }
    let (_, _, b) = f
        .call(
            Method::GET,
            &format!("/secrets/app-secret/{version1}"),
            READER,
            None,
        )
        .await;
    assert_eq!(b["value"], "v1");

    // Update: attributes, tags and content type; the answer carries no value.
    let (s, _, b) = f.call(Method::PATCH, &format!("/secrets/app-secret/{version1}"), OFFICER,
        Some(json!({"contentType": "password", "tags": {"x": "y"}, "attributes": {"enabled": false, "created": 1}}))).await;
    assert_eq!(s, StatusCode::OK);
    assert!(b.get("value").is_none());
    assert_eq!(b["tags"]["x"], "y");
    assert_eq!(b["attributes"]["enabled"], false);
    assert_ne!(b["attributes"]["created"], 1);
    let (s, _, b) = f
        .call(
            Method::GET,
            &format!("/secrets/app-secret/{version1}"),
            READER,
            None,
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert_eq!(
        error(&b),
        (
            "Forbidden",
            "Operation get is not allowed on a disabled secret.",
            Some("SecretDisabled")
        )
    );

    // Versions list: versioned ids.
    let (_, _, b) = f
        .call(Method::GET, "/secrets/app-secret/versions", READER, None)
        .await;
    let ids: Vec<&str> = b["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 2);
    assert!(ids.contains(&id1.as_str()));
    let (s, _, b) = f
        .call(Method::GET, "/secrets/never-created/versions", READER, None)
        .await;
    assert_eq!(
        (s, b.clone()),
        (StatusCode::OK, json!({"value": [], "nextLink": null}))
    );
}

#[tokio::test]
async fn bad_requests_and_not_found_use_the_service_texts() {
    let f = Fixture::start(|_| {}).await;
    let (s, _, b) = f
        .put("/secrets/bad_name", OFFICER, json!({"value": "x"}))
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(
        error(&b),
        (
            "BadParameter",
            "The request URI contains an invalid name: bad_name",
            None
        )
    );
    let long = "n".repeat(128);
    assert_eq!(
        f.put(&format!("/secrets/{long}"), OFFICER, json!({"value": "x"}))
            .await
            .0,
        StatusCode::BAD_REQUEST
    );
    let (s, _, _) = f
        .put(
            "/secrets/big",
            OFFICER,
            json!({"value": "x".repeat(25 * 1024 + 1)}),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(
        f.put(
            "/secrets/big",
            OFFICER,
            json!({"value": "x".repeat(25 * 1024)})
        )
        .await
        .0,
        StatusCode::OK
    );
    let (s, _, _) = f
        .put(
            "/secrets/ct",
            OFFICER,
            json!({"value": "x", "contentType": "c".repeat(256)}),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (s, _, _) = f
        .put("/secrets/novalue", OFFICER, json!({"tags": {}}))
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (s, _, b) = f.call(Method::GET, "/secrets/missing/", READER, None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_eq!(
        error(&b).1,
        "A secret with (name/id) missing was not found in this key vault. If you recently deleted this secret you may be able to recover it using the correct recovery command. For help resolving this issue, please see https://go.microsoft.com/fwlink/?linkid=2125182"
    );
    let (s, _, b) = f
        .call(Method::GET, "/deletedsecrets/missing", READER, None)
        .await;
    assert_eq!(
        (s, error(&b).1),
        (StatusCode::NOT_FOUND, "Deleted Secret not found: missing")
    );
    for max in ["0", "26", "x"] {
        let (s, _, _) = f
            .call(
                Method::GET,
                &format!("/secrets?maxresults={max}"),
                READER,
                None,
            )
            .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{max}");
    }
}

#[tokio::test]
async fn soft_delete_recover_purge_and_name_reuse() {
    let f = Fixture::start(|_| {}).await;
    f.set("gone", "x").await;
    let (s, _, b) = f.call(Method::DELETE, "/secrets/gone", OFFICER, None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        b["scheduledPurgeDate"].as_i64().unwrap() - b["deletedDate"].as_i64().unwrap(),
        90 * 86400
    );
    assert!(
        b["recoveryId"]
            .as_str()
            .unwrap()
            .ends_with("/deletedsecrets/gone")
    );
    // The delete completes asynchronously, as in the recordings.
    let (s, _, _) = f
        .call(Method::GET, "/deletedsecrets/gone", READER, None)
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _, b) = f.put("/secrets/gone", OFFICER, json!({"value": "y"})).await;
    assert_eq!((s, error(&b).0), (StatusCode::CONFLICT, "Conflict"));
    f.clock.shift_secs(2);
    let (s, _, b) = f
        .call(Method::GET, "/deletedsecrets/gone", READER, None)
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let (s, _, b) = f.put("/secrets/gone", OFFICER, json!({"value": "y"})).await;
    assert_eq!(s, StatusCode::CONFLICT);
    assert_eq!(
        error(&b),
        (
            "Conflict",
            "Secret gone is currently in a deleted but recoverable state, and its name cannot be reused; in this state, the secret can only be recovered or purged.",
            Some("ObjectIsDeletedButRecoverable")
        )
    );
    let (_, _, b) = f.call(Method::GET, "/deletedsecrets", READER, None).await;
    assert_eq!(
        b["value"][0]["id"],
        format!("http://{}/secrets/gone", f.running.public)
    );
    // Recover, then the secret is back (after the recovery completes).
    let (s, _, b) = f
        .call(Method::POST, "/deletedsecrets/gone/recover", OFFICER, None)
        .await;
    assert_eq!(s, StatusCode::OK);
    assert!(b.get("value").is_none());
    f.clock.shift_secs(2);
    let (_, _, b) = f.call(Method::GET, "/secrets/gone/", READER, None).await;
    assert_eq!(b["value"], "x");
    // Delete and purge: 204 with no body, then the name is free.
    f.call(Method::DELETE, "/secrets/gone", OFFICER, None).await;
    let (s, h, b) = f
        .call(Method::DELETE, "/deletedsecrets/gone", OFFICER, None)
        .await;
    assert_eq!((s, b), (StatusCode::NO_CONTENT, Value::Null));
    assert!(h.get("content-type").is_none());
    f.set("gone", "new").await;
}

#[tokio::test]
async fn purge_protection_refuses_purge() {
    let f = Fixture::start(|v| {
        v.purge_protection = true;
        v.soft_delete_retention_days = 7;
    })
    .await;
    let b = f.set("kept", "x").await;
    assert_eq!(b["attributes"]["recoveryLevel"], "CustomizedRecoverable");
    f.call(Method::DELETE, "/secrets/kept", OFFICER, None).await;
    f.clock.shift_secs(2);
    let (s, _, b) = f
        .call(Method::DELETE, "/deletedsecrets/kept", OFFICER, None)
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert!(
        error(&b).1.starts_with(
            "Operation \"purge\" is not allowed because purge protection is enabled for this vault."
        ),
        "{b}"
    );
}

#[tokio::test]
async fn listing_pages_with_absolute_next_links() {
    let f = Fixture::start(|_| {}).await;
    for i in 0..30 {
        f.set(&format!("s{i:02}"), "x").await;
    }
    let (_, _, page) = f.call(Method::GET, "/secrets", READER, None).await;
    assert_eq!(page["value"].as_array().unwrap().len(), 25);
    let next = page["nextLink"].as_str().unwrap();
    assert!(
        next.starts_with(&format!(
            "http://{}/secrets?api-version=2025-07-01&$skiptoken=",
            f.running.public
        )),
        "{next}"
    );
    assert!(page["value"][0].get("value").is_none());
    assert_eq!(
        page["value"][0]["id"],
        format!("http://{}/secrets/s00", f.running.public)
    );
    let (_, _, page) = f
        .call_url(Method::GET, next, Some(f.authority.token(READER)), None)
        .await;
    assert_eq!(page["value"].as_array().unwrap().len(), 5);
    assert_eq!(page["nextLink"], Value::Null);
    // maxresults is kept in the link.
    let mut names = Vec::new();
    let mut url = f.url("/secrets?maxresults=7");
    loop {
        let (_, _, page) = f
            .call_url(Method::GET, &url, Some(f.authority.token(READER)), None)
            .await;
        names.extend(page["value"].as_array().unwrap().iter().map(|i| {
            i["id"]
                .as_str()
                .unwrap()
                .rsplit('/')
                .next()
                .unwrap()
                .to_owned()
        }));
        match page["nextLink"].as_str() {
            Some(n) => {
                assert!(n.contains("maxresults=7"));
                url = n.to_owned();
            }
            None => break,
        }
    }
    assert_eq!(
        names,
        (0..30).map(|i| format!("s{i:02}")).collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn public_access_disabled_refuses_public_traffic_and_admits_the_private_endpoint() {
    let f = Fixture::start(|v| {
        v.public_network_access = PublicNetworkAccess::Disabled;
        v.private_endpoints = vec!["pe-kv-test".into()];
        v.secrets.push(SeedSecret::new("conn", "s3cret"));
    })
    .await;
    let (s, _, b) = f.call(Method::GET, "/secrets/conn", READER, None).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (code, message, inner) = error(&b);
    assert_eq!((code, inner), ("Forbidden", Some("ForbiddenByConnection")));
    assert_eq!(
        message,
        format!(
            "Public network access is disabled and request is not from a trusted service nor via an approved private link.\r\nCaller: appid=11111111-2222-3333-4444-555555555555;oid={READER};iss=https://sts.windows.net/{TENANT}/\r\nVault: kv-test;location=westus"
        )
    );
    // Without a token the challenge still comes first.
    let (s, _, _) = f
        .call_url(Method::GET, &f.url("/secrets/conn"), None, None)
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    // Through the private endpoint.
    let private = format!(
        "http://{}/secrets/conn?api-version=2025-07-01",
        f.running.private.unwrap()
    );
    let (s, _, b) = f
        .call_url(Method::GET, &private, Some(f.authority.token(READER)), None)
        .await;
    assert_eq!((s, b["value"].as_str()), (StatusCode::OK, Some("s3cret")));
}

#[tokio::test]
async fn firewall_refuses_unlisted_addresses_and_admits_ip_rules() {
    let f = Fixture::start(|v| {
        v.network_acls.default_action = DefaultAction::Deny;
        v.network_acls.ip_rules = vec!["203.0.113.0/24".parse().unwrap()];
    })
    .await;
    let (s, _, b) = f.call(Method::GET, "/secrets", READER, None).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert_eq!(error(&b).2, Some("ForbiddenByFirewall"));
    assert!(error(&b).1.starts_with("Client address is not authorized and caller is not a trusted service.\r\nClient address: 127.0.0.1\r\n"), "{b}");
    let g = Fixture::start(|v| {
        v.network_acls.default_action = DefaultAction::Deny;
        v.network_acls.ip_rules = vec!["127.0.0.0/8".parse().unwrap()];
    })
    .await;
    assert_eq!(
        g.call(Method::GET, "/secrets", READER, None).await.0,
        StatusCode::OK
    );
}

#[tokio::test]
async fn rbac_refuses_a_principal_without_a_role_and_limits_secrets_user() {
    let f = Fixture::start(|_| {}).await;
    f.set("s", "x").await;
    let (s, _, b) = f.call(Method::GET, "/secrets/s", NOBODY, None).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (code, message, inner) = error(&b);
    assert_eq!((code, inner), ("Forbidden", Some("ForbiddenByRbac")));
    assert_eq!(
        message,
        format!(
            "Caller is not authorized to perform action on resource.\r\nIf role assignments, deny assignments or role definitions were changed recently, please observe propagation time.\r\nCaller: appid=11111111-2222-3333-4444-555555555555;oid={NOBODY};iss=https://sts.windows.net/{TENANT}/\r\nAction: 'Microsoft.KeyVault/vaults/secrets/getSecret/action'\r\nResource: '/subscriptions/00000000-0000-0000-0000-000000000000/resourcegroups/ppvnet/providers/microsoft.keyvault/vaults/kv-test/secrets/s'\r\nAssignment: (not found)\r\nDenyAssignmentId: null\r\nDecisionReason: null \r\nVault: kv-test;location=westus\r\n"
        )
    );
    // Secrets User reads but cannot write or delete.
    assert_eq!(
        f.call(Method::GET, "/secrets/s", READER, None).await.0,
        StatusCode::OK
    );
    assert_eq!(
        f.put("/secrets/s", READER, json!({"value": "y"})).await.0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        f.call(Method::DELETE, "/secrets/s", READER, None).await.0,
        StatusCode::FORBIDDEN
    );
}

#[tokio::test]
async fn access_policy_vaults_check_permissions() {
    let f = Fixture::start(|v| {
        v.authorization = Authorization::AccessPolicies {
            access_policies: vec![
                AccessPolicy {
                    object_id: READER.into(),
                    secret_permissions: vec![SecretPermission::Get, SecretPermission::List],
                },
                AccessPolicy {
                    object_id: OFFICER.into(),
                    secret_permissions: vec![SecretPermission::All],
                },
            ],
        };
    })
    .await;
    f.set("s", "x").await;
    assert_eq!(
        f.call(Method::GET, "/secrets/s", READER, None).await.0,
        StatusCode::OK
    );
    let (s, h, b) = f.put("/secrets/s", READER, json!({"value": "y"})).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert!(h.get("x-ms-keyvault-rbac-assignment-id").is_none());
    assert_eq!(
        error(&b).1,
        format!(
            "The user, group or application 'appid=11111111-2222-3333-4444-555555555555;oid={READER};iss=https://sts.windows.net/{TENANT}/' does not have secrets set permission on key vault 'kv-test;location=westus'. For help resolving this issue, please see https://go.microsoft.com/fwlink/?linkid=2125287"
        )
    );
}

#[tokio::test]
async fn backup_restores_after_purge_and_tampered_or_foreign_blobs_are_refused() {
    let f = Fixture::start(|_| {}).await;
    let original = f.set("bk", "payload").await;
    let (s, _, b) = f
        .call(Method::POST, "/secrets/bk/backup", OFFICER, None)
        .await;
    assert_eq!(s, StatusCode::OK);
    let blob = b["value"].as_str().unwrap().to_owned();
    assert!(!blob.contains("payload"));
    let (s, _, b) = f.restore(&blob).await;
    assert_eq!((s, error(&b).0), (StatusCode::CONFLICT, "Conflict"));
    f.delete_and_purge("bk").await;
    let (s, _, b) = f.restore(&blob).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["id"], original["id"]);
    assert_eq!(
        b["attributes"]["created"],
        original["attributes"]["created"]
    );
    let (_, _, b) = f.call(Method::GET, "/secrets/bk", READER, None).await;
    assert_eq!(b["value"], "payload");
    // One changed character.
    let mut tampered = blob.clone().into_bytes();
    let i = tampered.len() / 2;
    tampered[i] = if tampered[i] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    f.delete_and_purge("bk").await;
    let (s, _, b) = f.restore(&tampered).await;
    assert_eq!((s, error(&b).0), (StatusCode::BAD_REQUEST, "BadParameter"));
    // A vault in another subscription cannot restore it.
    let g =
        Fixture::start(|v| v.subscription_id = "99999999-0000-0000-0000-000000000000".into()).await;
    let (s, _, _) = g.restore(&blob).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn unknown_hosts_and_operations_are_refused() {
    let f = Fixture::start(|_| {}).await;
    let token = f.authority.token(OFFICER);
    let resp = f
        .http
        .get(f.url("/secrets"))
        .header("host", "nope.vault.azure.net")
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    let resp = f
        .http
        .get(f.url("/secrets"))
        .header("host", "kv-test.vault.azure.net")
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let page: Value = resp.json().await.unwrap();
    assert_eq!(page["nextLink"], Value::Null);
    let (s, _, _) = f.call(Method::GET, "/keys/k1", OFFICER, None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}

async fn snapshot(f: &Fixture) -> (Value, Value, Value) {
    let (_, _, list) = f.call(Method::GET, "/secrets", READER, None).await;
    let (_, _, versions) = f
        .call(Method::GET, "/secrets/a/versions", READER, None)
        .await;
    let (_, _, deleted) = f.call(Method::GET, "/deletedsecrets", READER, None).await;
    (list, versions, deleted)
}

#[tokio::test]
async fn acknowledged_state_survives_a_restart_and_corrupt_files_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let f = Fixture::start_with(
        |v| {
            v.pending_operation_ms = 0;
            v.secrets.push(SeedSecret::new("seeded", "s"));
        },
        Some(dir.path().to_path_buf()),
    )
    .await;
    f.set("a", "1").await;
    f.set("a", "2").await;
    f.call(
        Method::PATCH,
        "/secrets/a/",
        OFFICER,
        Some(json!({"tags": {"t": "1"}})),
    )
    .await;
    f.set("b", "x").await;
    f.call(Method::DELETE, "/secrets/b", OFFICER, None).await;
    f.call(Method::DELETE, "/secrets/seeded", OFFICER, None)
        .await;
    f.call(Method::DELETE, "/deletedsecrets/seeded", OFFICER, None)
        .await;
    let before = snapshot(&f).await;
    let addr = f.running.public;
    let Fixture {
        clock,
        authority,
        running,
        ..
    } = f;
    running.stop().await;

    // Same config (including the seed, which must not come back after its purge), same port.
    let mut v = vault("kv-test", addr);
    v.pending_operation_ms = 0;
    v.secrets.push(SeedSecret::new("seeded", "s"));
    let config = KeyVaultConfig {
        vaults: vec![v],
        data_dir: Some(dir.path().to_path_buf()),
        ..Default::default()
    };
    let kv = new_kv(
        config.clone(),
        &clock,
        authority.check(reqwest::Client::new()),
    );
    let running = Running::serve(kv, (std::net::TcpListener::bind(addr).unwrap(), None), None);
    let g = Fixture {
        clock: clock.clone(),
        authority: authority.clone(),
        running,
        http: reqwest::Client::new(),
    };
    let after = snapshot(&g).await;
    assert_eq!(before, after);
    assert_eq!(before.0["value"].as_array().unwrap().len(), 1);
    assert_eq!(
        before.2["value"][0]["id"],
        format!("http://{addr}/secrets/b")
    );
    let (_, _, b) = g.call(Method::GET, "/secrets/a", READER, None).await;
    assert_eq!(
        (b["value"].as_str(), b["tags"]["t"].as_str()),
        (Some("2"), Some("1"))
    );
    g.running.stop().await;

    // Corrupt the file: the vault refuses to start and says which file.
    let path = dir.path().join("kv-test.kvstore");
    let _ = std::fs::remove_file(dir.path().join("kv-test.kvstore-wal"));
    let _ = std::fs::remove_file(dir.path().join("kv-test.kvstore-shm"));
    std::fs::write(
        &path,
        b"this is not a vault store at all, just text that replaced it...".repeat(100),
    )
    .unwrap();
    let err = KeyVault::new(
        config,
        clock,
        ppvnet_common::net::socket_peers(),
        authority.check(reqwest::Client::new()),
    )
    .err()
    .expect("a corrupt store must be refused");
    let text = err.to_string();
    assert!(
        text.contains("kv-test.kvstore") && text.contains("corrupt"),
        "{text}"
    );
}
