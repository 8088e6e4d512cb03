//! The authorize endpoint: sign-in page, response modes, hybrid ID tokens, SSO session,
//! `prompt`, consent and logout.

use std::collections::HashMap;

use crate::common::*;

fn authorize_url(m: &Running) -> String {
    format!("{}/{TENANT}/oauth2/v2.0/authorize", m.base)
}

fn params_of(location: &str, in_fragment: bool) -> HashMap<String, String> {
    let url = url::Url::parse(location).unwrap();
    let raw = if in_fragment {
        url.fragment().unwrap_or_default().to_string()
    } else {
        url.query().unwrap_or_default().to_string()
    };
    url::form_urlencoded::parse(raw.as_bytes())
        .into_owned()
        .collect()
}

#[tokio::test]
async fn wrong_password_shows_the_page_again_with_the_aadsts_text() {
    let m = start().await;
    let r = m
        .http
        .post(authorize_url(&m))
        .form(&[
            ("client_id", SPA),
            ("redirect_uri", SPA_REDIRECT),
            ("scope", "openid"),
            ("login", ALICE),
            ("passwd", "nope"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let html = r.text().await.unwrap();
    assert!(
        html.contains("AADSTS50126: Error validating credentials"),
        "{html}"
    );
    assert!(html.contains("name=\"passwd\""));
}

#[tokio::test]
async fn hybrid_flow_form_post_returns_code_and_id_token_with_c_hash_and_nonce() {
    let m = start().await;
    let r = m
        .http
        .post(authorize_url(&m))
        .form(&[
            ("client_id", CONNECTOR),
            ("response_type", "code id_token"),
            ("response_mode", "form_post"),
            ("redirect_uri", CONNECTOR_REDIRECT),
            ("scope", "openid profile api://case-search/Cases.Read"),
            ("nonce", "abc123"),
            ("state", "st"),
            ("login", ALICE),
            ("passwd", ALICE_PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let html = r.text().await.unwrap();
    assert!(html.contains(&format!("action=\"{CONNECTOR_REDIRECT}\"")));
    let value_of = |name: &str| {
        let marker = format!("name=\"{name}\" value=\"");
        let start = html.find(&marker).unwrap() + marker.len();
        html[start..start + html[start..].find('"').unwrap()].to_string()
    };
    let code = value_of("code");
    assert_eq!(value_of("state"), "st");
    let id = validate(&m, &value_of("id_token"), CONNECTOR, &v2_iss()).await;
    assert_eq!(id["nonce"], "abc123");
    assert_eq!(id["name"], "Alice Case");
    use base64::Engine;
    use sha2::Digest;
    let digest = sha2::Sha256::digest(code.as_bytes());
    let expected = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&digest[..16]);
    assert_eq!(id["c_hash"], expected);
    // The web app redeems its code with its secret.
    let (status, reply) = m
        .token(&[
            ("grant_type", "authorization_code"),
            ("client_id", CONNECTOR),
            ("code", &code),
            ("redirect_uri", CONNECTOR_REDIRECT),
            ("scope", "api://case-search/Cases.Read"),
        ])
        .await;
    assert_eq!(status, 401, "web redirect = confidential client: {reply}");
    let code2 = {
        let r = m
            .http
            .get(authorize_url(&m))
            .header("cookie", "ESTSAUTH=unknown")
            .query(&[
                ("client_id", CONNECTOR),
                ("response_type", "code"),
                ("redirect_uri", CONNECTOR_REDIRECT),
                ("scope", "api://case-search/Cases.Read"),
                ("prompt", "none"),
            ])
            .send()
            .await
            .unwrap();
        let p = params_of(r.headers()["location"].to_str().unwrap(), false);
        assert_eq!(p["error"], "login_required");
        assert!(p["error_description"].starts_with("AADSTS50058"));
        p.get("code").cloned()
    };
    assert!(code2.is_none());
}

#[tokio::test]
async fn sso_session_prompt_none_and_logout() {
    let m = start().await;
    let r = m
        .http
        .post(authorize_url(&m))
        .form(&[
            ("client_id", SPA),
            ("redirect_uri", SPA_REDIRECT),
            ("scope", "api://case-search/Cases.Read"),
            ("login", ALICE),
            ("passwd", ALICE_PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    let cookie = r.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    assert!(cookie.starts_with("ESTSAUTH="));
    let silent = |cookie: String, prompt: &'static str| {
        let m = &m;
        async move {
            m.http
                .get(authorize_url(m))
                .header("cookie", cookie)
                .query(&[
                    ("client_id", SPA),
                    ("redirect_uri", SPA_REDIRECT),
                    ("scope", "api://case-search/Cases.Read"),
                    ("response_mode", "fragment"),
                    ("prompt", prompt),
                ])
                .send()
                .await
                .unwrap()
        }
    };
    let r = silent(cookie.clone(), "none").await;
    assert_eq!(r.status(), 302);
    let p = params_of(r.headers()["location"].to_str().unwrap(), true);
    assert!(
        p.contains_key("code"),
        "the session signs in silently: {p:?}"
    );
    // prompt=login shows the page even with a session.
    let r = silent(cookie.clone(), "login").await;
    assert_eq!(r.status(), 200);

    let r = m
        .http
        .get(format!("{}/{TENANT}/oauth2/v2.0/logout", m.base))
        .header("cookie", cookie.clone())
        .query(&[("post_logout_redirect_uri", SPA_REDIRECT), ("state", "bye")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 302);
    assert_eq!(r.headers()["location"], format!("{SPA_REDIRECT}?state=bye"));
    let r = silent(cookie, "none").await;
    let p = params_of(r.headers()["location"].to_str().unwrap(), true);
    assert_eq!(p["error"], "login_required", "logout ended the session");
}

#[tokio::test]
async fn missing_consent_goes_back_as_consent_required() {
    let m = start().await;
    let r = m
        .http
        .get(authorize_url(&m))
        .query(&[
            ("client_id", SPA),
            ("redirect_uri", SPA_REDIRECT),
            ("scope", "api://legacy/user_impersonation"),
            ("state", "s1"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 302);
    let p = params_of(r.headers()["location"].to_str().unwrap(), false);
    assert_eq!(p["error"], "consent_required");
    assert!(p["error_description"].starts_with(&format!("AADSTS65001: The user or administrator has not consented to use the application with ID '{SPA}'")));
    assert_eq!(p["state"], "s1");
}

#[tokio::test]
async fn id_token_response_type_needs_implicit_issuance_enabled() {
    let m = start().await;
    let r = m
        .http
        .get(authorize_url(&m))
        .query(&[
            ("client_id", SPA),
            ("redirect_uri", SPA_REDIRECT),
            ("response_type", "id_token"),
            ("scope", "openid"),
            ("nonce", "n"),
        ])
        .send()
        .await
        .unwrap();
    let p = params_of(r.headers()["location"].to_str().unwrap(), true);
    assert_eq!(p["error"], "unsupported_response_type");
    assert!(p["error_description"].starts_with("AADSTS700054"));
}
