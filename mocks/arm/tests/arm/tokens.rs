//! Tokens and api-versions, checked as ARM checks them: api-version first (even without a
//! token), then the bearer token (401 with ARM's challenge), with ARM's codes and texts.

use crate::support::*;

#[tokio::test]
async fn api_version_is_checked_before_the_token() {
    let l = Landscape::start().await;
    let (status, body, _) = l.get(None, "/subscriptions").await;
    assert_eq!((status, code(&body)), (400, "MissingApiVersionParameter"));
    assert_eq!(
        message(&body),
        "The api-version query parameter (?api-version=) is required for all requests."
    );
    let (status, body, _) = l
        .get(
            None,
            &format!("/subscriptions/{SUB}/resourceGroups?api-version=2021-03-01"),
        )
        .await;
    assert_eq!((status, code(&body)), (400, "InvalidApiVersionParameter"));
    assert!(
        message(&body).starts_with("The api-version '2021-03-01' is invalid. The supported versions are '2024-11-01,2024-08-01,"),
        "{body}"
    );
    let (status, body, _) = l
        .get(
            None,
            &format!(
                "{}?api-version=2019-01-01",
                id("Microsoft.KeyVault/vaults", "kv-test")
            ),
        )
        .await;
    assert_eq!((status, code(&body)), (400, "NoRegisteredProviderFound"));
    assert!(
        message(&body).starts_with("No registered resource provider found for location 'westus' and API version '2019-01-01' for type 'vaults'. The supported api-versions are '2015-06-01, "),
        "{body}"
    );
}

#[tokio::test]
async fn a_missing_token_gets_arms_challenge_naming_the_tenant() {
    let l = Landscape::start().await;
    let (status, body, challenge) = l
        .get(
            None,
            &format!("/subscriptions/{SUB}?api-version=2022-12-01"),
        )
        .await;
    assert_eq!((status, code(&body)), (401, "AuthenticationFailed"));
    assert_eq!(
        message(&body),
        "Authentication failed. The 'Authorization' header is missing."
    );
    // Tools read the subscription's tenant from this challenge.
    assert_eq!(
        challenge.unwrap(),
        format!(
            "Bearer authorization_uri=\"https://login.windows.net/{TENANT}\", error=\"invalid_token\", error_description=\"The authentication failed because of missing 'Authorization' header.\""
        )
    );
    let (status, body, _) = l
        .send(
            reqwest::Method::GET,
            None,
            "/subscriptions?api-version=2022-12-01",
        )
        .await;
    assert_eq!((status, code(&body)), (401, "AuthenticationFailed"));
}

#[tokio::test]
async fn refused_tokens_get_arms_codes() {
    let l = Landscape::start().await;
    let path = format!("/subscriptions/{SUB}?api-version=2022-12-01");
    // A Key Vault token is for another audience.
    let vault = l
        .token_for(&READER, "https://vault.azure.net/.default")
        .await;
    let (status, body, challenge) = l.get(Some(&vault), &path).await;
    assert_eq!(
        (status, code(&body)),
        (401, "InvalidAuthenticationTokenAudience")
    );
    assert_eq!(
        message(&body),
        "The access token has been obtained for wrong audience or resource 'https://vault.azure.net'. It should exactly match with one of the allowed audiences 'https://management.core.windows.net/','https://management.core.windows.net','https://management.azure.com/','https://management.azure.com'."
    );
    assert!(challenge.unwrap().starts_with(&format!(
        "Bearer authorization_uri=\"https://login.windows.net/{TENANT}\", error=\"invalid_token\""
    )));
    // A forged signature.
    let token = l.token(&READER).await;
    let mut forged = token.clone();
    forged.truncate(forged.len() - 4);
    forged.push_str("AAAA");
    let (status, body, _) = l.get(Some(&forged), &path).await;
    assert_eq!((status, code(&body)), (401, "InvalidAuthenticationToken"));
    assert_eq!(message(&body), "The access token is invalid.");
    let (status, body, _) = l.get(Some("not-a-jwt"), &path).await;
    assert_eq!((status, code(&body)), (401, "InvalidAuthenticationToken"));
    // `Basic` is not a bearer credential.
    let r = l
        .http
        .get(format!("{}{path}", l.arm))
        .header("authorization", "Basic dXNlcjpwYXNz")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(code(&body), "AuthenticationFailedInvalidHeader");
    // The same token after its lifetime (the run clock moved two hours on).
    let (status, _, _) = l.get(Some(&token), &path).await;
    assert_eq!(status, 200);
    l.clock.shift_secs(2 * 3600);
    let (status, body, _) = l.get(Some(&token), &path).await;
    assert_eq!((status, code(&body)), (401, "ExpiredAuthenticationToken"));
    assert!(
        message(&body).starts_with("The access token expiry UTC time '")
            && message(&body).contains("' is earlier than current UTC time '"),
        "{body}"
    );
}

/// The Azure SDKs ask for `https://management.azure.com/.default`, the CLI for
/// `https://management.core.windows.net//.default`: ARM takes both audiences. A v1 token asked
/// for by ARM's app id carries the app id as `aud`, which is none of the four audiences ARM's
/// error lists, so it is refused (UNVERIFIED against the live service).
#[tokio::test]
async fn both_arm_identifiers_are_accepted_audiences() {
    let l = Landscape::start().await;
    let path = format!("/subscriptions/{SUB}?api-version=2022-12-01");
    for scope in [
        "https://management.azure.com/.default",
        "https://management.core.windows.net//.default",
    ] {
        let token = l.token_for(&READER, scope).await;
        let (status, body, _) = l.get(Some(&token), &path).await;
        assert_eq!(status, 200, "{scope}: {body}");
    }
    let token = l
        .token_for(&READER, "797f4846-ba00-4fd7-ba43-dac1f8f63013/.default")
        .await;
    let (status, body, _) = l.get(Some(&token), &path).await;
    assert_eq!(
        (status, code(&body)),
        (401, "InvalidAuthenticationTokenAudience")
    );
}
