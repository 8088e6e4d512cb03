//! Golden tests: discovery documents and key sets against the recorded real ones
//! (`tests/data/`, see SOURCES.md), plus instance discovery and `userrealm`.

use std::collections::BTreeSet;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde_json::Value;

use crate::common::*;

fn fixture(name: &str) -> Value {
    let path = format!("{}/tests/data/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn field_names(v: &Value) -> BTreeSet<String> {
    v.as_object().unwrap().keys().cloned().collect()
}

/// Every member except the URLs that name the host must equal the recording.
fn assert_same_except_urls(mine: &Value, recorded: &Value, url_fields: &[&str]) {
    for (k, v) in recorded.as_object().unwrap() {
        if url_fields.contains(&k.as_str()) {
            continue;
        }
        assert_eq!(&mine[k], v, "member {k}");
    }
}

const URL_FIELDS: [&str; 6] = [
    "token_endpoint",
    "jwks_uri",
    "authorization_endpoint",
    "device_authorization_endpoint",
    "end_session_endpoint",
    "kerberos_endpoint",
];

#[tokio::test]
async fn v2_discovery_for_aliases_matches_the_recorded_documents() {
    let m = start().await;
    for alias in ["common", "organizations"] {
        let recorded = fixture(&format!("openid-configuration-v2-{alias}.json"));
        let (status, mine) = m
            .get_json(&format!("/{alias}/v2.0/.well-known/openid-configuration"))
            .await;
        assert_eq!(status, 200);
        assert_eq!(field_names(&mine), field_names(&recorded));
        assert_same_except_urls(&mine, &recorded, &URL_FIELDS);
        assert_eq!(
            mine["issuer"],
            "https://login.microsoftonline.com/{tenantid}/v2.0"
        );
        assert_eq!(
            mine["token_endpoint"],
            format!("{}/{alias}/oauth2/v2.0/token", m.base),
            "endpoint URLs point at the address the mock was reached on"
        );
        assert_eq!(
            mine["jwks_uri"],
            format!("{}/{alias}/discovery/v2.0/keys", m.base)
        );
    }
}

#[tokio::test]
async fn v2_discovery_for_the_tenant_matches_the_recorded_tenant_document() {
    let m = start().await;
    let recording = fixture("recording-go-azidentity-client-secret-v2-discovery-and-token.json");
    let recorded = &recording["Entries"][1]["ResponseBody"];
    for segment in [TENANT, DOMAIN] {
        let (status, mine) = m
            .get_json(&format!("/{segment}/v2.0/.well-known/openid-configuration"))
            .await;
        assert_eq!(status, 200);
        assert_eq!(field_names(&mine), field_names(recorded));
        assert_same_except_urls(&mine, recorded, &[&URL_FIELDS[..], &["issuer"]].concat());
        // A domain in the path resolves to the tenant GUID.
        assert_eq!(mine["issuer"], v2_iss());
        assert_eq!(
            mine["token_endpoint"],
            format!("{}/{TENANT}/oauth2/v2.0/token", m.base)
        );
        assert_eq!(mine["tenant_region_scope"], "NA");
    }
}

#[tokio::test]
async fn discovery_uses_the_host_the_client_used() {
    let m = start().await;
    let doc: Value = m
        .http
        .get(format!(
            "{}/{TENANT}/v2.0/.well-known/openid-configuration",
            m.base
        ))
        .header("host", "login.microsoftonline.com")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        doc["token_endpoint"],
        format!("http://login.microsoftonline.com/{TENANT}/oauth2/v2.0/token")
    );
}

#[tokio::test]
async fn v1_discovery_has_the_v1_field_set_and_issuer() {
    let m = start().await;
    let (status, doc) = m
        .get_json(&format!("/{DOMAIN}/.well-known/openid-configuration"))
        .await;
    assert_eq!(status, 200);
    let expected: BTreeSet<String> = [
        "authorization_endpoint",
        "token_endpoint",
        "token_endpoint_auth_methods_supported",
        "jwks_uri",
        "response_modes_supported",
        "subject_types_supported",
        "id_token_signing_alg_values_supported",
        "http_logout_supported",
        "frontchannel_logout_supported",
        "end_session_endpoint",
        "response_types_supported",
        "scopes_supported",
        "issuer",
        "claims_supported",
        "microsoft_multi_refresh_token",
        "check_session_iframe",
        "userinfo_endpoint",
        "tenant_region_scope",
        "cloud_instance_name",
        "cloud_graph_host_name",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    assert_eq!(field_names(&doc), expected);
    assert_eq!(doc["issuer"], v1_iss());
    assert_eq!(
        doc["token_endpoint"],
        format!("{}/{TENANT}/oauth2/token", m.base)
    );
    assert_eq!(doc["jwks_uri"], format!("{}/common/discovery/keys", m.base));
    assert_eq!(doc["microsoft_multi_refresh_token"], true);
}

#[tokio::test]
async fn jwks_keys_have_the_recorded_shape_and_a_matching_certificate() {
    let m = start().await;
    let recorded = fixture("jwks-v2-common.json");
    let recorded_key = &recorded["keys"][0];
    for (path, issuer) in [
        (format!("/{TENANT}/discovery/v2.0/keys"), v2_iss()),
        (
            "/common/discovery/v2.0/keys".to_string(),
            "https://login.microsoftonline.com/{tenantid}/v2.0".to_string(),
        ),
        (format!("/{TENANT}/discovery/keys"), v2_iss()),
    ] {
        let (status, jwks) = m.get_json(&path).await;
        assert_eq!(status, 200, "{path}");
        let keys = jwks["keys"].as_array().unwrap();
        assert!(!keys.is_empty());
        for key in keys {
            assert_eq!(field_names(key), field_names(recorded_key), "{path}");
            assert!(key.get("alg").is_none());
            assert_eq!(key["kty"], "RSA");
            assert_eq!(key["use"], "sig");
            assert_eq!(key["e"], recorded_key["e"]);
            assert_eq!(key["x5t"], key["kid"]);
            assert_eq!(key["issuer"], issuer);
            let n = URL_SAFE_NO_PAD.decode(key["n"].as_str().unwrap()).unwrap();
            assert_eq!(n.len(), 256, "RSA-2048 modulus");
            // x5t is the SHA-1 thumbprint of the x5c certificate, which holds the same key.
            let der = STANDARD.decode(key["x5c"][0].as_str().unwrap()).unwrap();
            use sha1::Digest;
            assert_eq!(URL_SAFE_NO_PAD.encode(sha1::Sha1::digest(&der)), key["kid"]);
            let (_, cert) = x509_parser::parse_x509_certificate(&der).unwrap();
            let cn = cert.subject().iter_common_name().next().unwrap();
            assert_eq!(cn.as_str().unwrap(), "accounts.accesscontrol.windows.net");
            let spki = cert.public_key().parsed().unwrap();
            let x509_parser::public_key::PublicKey::RSA(rsa) = spki else {
                panic!("not RSA")
            };
            assert_eq!(
                rsa.modulus
                    .iter()
                    .skip_while(|b| **b == 0)
                    .copied()
                    .collect::<Vec<_>>(),
                n
            );
        }
    }
}

#[tokio::test]
async fn unknown_tenant_discovery_answers_aadsts90002() {
    let m = start().await;
    let reply = m
        .get_json("/fabrikam.onmicrosoft.com/v2.0/.well-known/openid-configuration")
        .await;
    assert_aadsts(
        &reply,
        400,
        "invalid_tenant",
        90002,
        "Tenant 'fabrikam.onmicrosoft.com' not found.",
    );
    let reply = m
        .get_json("/fabrikam.onmicrosoft.com/discovery/v2.0/keys")
        .await;
    assert_aadsts(
        &reply,
        400,
        "invalid_tenant",
        90002,
        "Tenant 'fabrikam.onmicrosoft.com' not found.",
    );
}

#[tokio::test]
async fn instance_discovery_answers_for_public_cloud_hosts_only() {
    let m = start().await;
    let recording = fixture("recording-go-azidentity-client-secret-v2-discovery-and-token.json");
    let recorded = &recording["Entries"][0]["ResponseBody"];
    let (status, body) = m
        .get_json("/common/discovery/instance?api-version=1.1&authorization_endpoint=https%3A%2F%2Flogin.microsoftonline.com%2Ffake-tenant%2Foauth2%2Fv2.0%2Fauthorize")
        .await;
    assert_eq!(status, 200);
    assert_eq!(&body, recorded);

    let reply = m
        .get_json("/common/discovery/instance?api-version=1.1&authorization_endpoint=https%3A%2F%2Fevil.example%2Ft%2Foauth2%2Fv2.0%2Fauthorize")
        .await;
    assert_aadsts(
        &reply,
        400,
        "invalid_instance",
        50049,
        "Unknown or invalid instance.",
    );
}

#[tokio::test]
async fn userrealm_reports_managed_for_the_tenant_users() {
    let m = start().await;
    let (status, body) = m
        .get_json(&format!("/common/userrealm/{ALICE}?api-version=1.0"))
        .await;
    assert_eq!(status, 200);
    assert_eq!(body["account_type"], "Managed");
    assert_eq!(body["domain_name"], DOMAIN);
    assert_eq!(body["cloud_audience_urn"], "urn:federation:MicrosoftOnline");
    let (_, body) = m
        .get_json("/common/userrealm/someone@fabrikam.example?api-version=1.0")
        .await;
    assert_eq!(body["account_type"], "Unknown");
}
