//! Key rotation: a token signed before a switch validates (against the published JWKS) until
//! its key is retired, then not.

use crate::common::*;

#[tokio::test]
async fn token_signed_before_a_switch_validates_until_its_key_is_retired() {
    let m = start_isolated().await;
    let cc = [
        ("grant_type", "client_credentials"),
        ("client_id", CONNECTOR),
        ("client_secret", CONNECTOR_SECRET),
        ("scope", "api://case-search/.default"),
    ];
    let old = m.token(&cc).await.1["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let old_kid = jsonwebtoken::decode_header(&old).unwrap().kid.unwrap();

    let next = m.entra.publish_next_signing_key().unwrap();
    let jwks = m.jwks().await;
    assert!(
        jwks.find(&next).is_some(),
        "the next key is published before it signs"
    );
    let still_old = m.token(&cc).await.1["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        jsonwebtoken::decode_header(&still_old)
            .unwrap()
            .kid
            .unwrap(),
        old_kid
    );

    assert_eq!(m.entra.switch_signing_key().unwrap(), next);
    let new = m.token(&cc).await.1["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        jsonwebtoken::decode_header(&new).unwrap().kid.unwrap(),
        next
    );
    let jwks = m.jwks().await;
    assert!(
        validate_with(&jwks, &old, API, &v2_iss()).is_ok(),
        "old token still validates"
    );
    assert!(validate_with(&jwks, &new, API, &v2_iss()).is_ok());

    assert_eq!(
        m.entra.retire_previous_signing_keys().unwrap(),
        vec![old_kid.clone()]
    );
    let jwks = m.jwks().await;
    assert!(jwks.find(&old_kid).is_none());
    assert!(
        validate_with(&jwks, &old, API, &v2_iss()).is_err(),
        "retired key: token no longer validates"
    );
    assert!(validate_with(&jwks, &new, API, &v2_iss()).is_ok());

    // The one-step rotation keeps the previous key published.
    let rotated = m.entra.rotate_signing_keys().unwrap();
    let jwks = m.jwks().await;
    assert!(jwks.find(&rotated).is_some() && jwks.find(&next).is_some());
    assert!(matches!(
        m.entra.switch_signing_key(),
        Err(ppvnet_entra::ControlError::NoNextKey)
    ));
}

#[tokio::test]
async fn signing_keys_persist_in_the_data_dir() {
    let dir = tempfile::tempdir().unwrap();
    let cert = ClientCert::generate();
    let cfg = config(&cert);
    let url = url::Url::parse("https://127.0.0.1:1").unwrap();
    let a = ppvnet_entra::Entra::new(
        &cfg,
        ppvnet_common::Clock::new(),
        url.clone(),
        Some(dir.path()),
    )
    .unwrap();
    a.rotate_signing_keys().unwrap();
    let b =
        ppvnet_entra::Entra::new(&cfg, ppvnet_common::Clock::new(), url, Some(dir.path())).unwrap();
    assert_eq!(a.signing_keys(), b.signing_keys());
    assert_eq!(b.signing_keys().len(), 2);
}
