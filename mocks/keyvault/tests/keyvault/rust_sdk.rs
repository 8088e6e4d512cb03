//! The official Rust client (`azure_security_keyvault_secrets`) against the fake over HTTPS:
//! challenge, set, get (latest and by version), update, list, delete, purge.
//!
//! The client's transport is a `reqwest::Client` trusting the test CA, handed over through
//! `ClientOptions::transport`; its credential is a test `TokenCredential` that asks the test
//! Entra authority's signing key for a token, so the vault validates a real RS256 token.

use std::collections::HashMap;
use std::sync::Arc;

use azure_core::credentials::{AccessToken, TokenCredential, TokenRequestOptions};
use azure_core::http::{ClientOptions, Transport};
use azure_security_keyvault_secrets::models::{
    SecretClientGetSecretOptions, SetSecretParameters, UpdateSecretPropertiesParameters,
};
use azure_security_keyvault_secrets::{ResourceExt, SecretClient, SecretClientOptions};
use futures::TryStreamExt;
use ppvnet_common::Clock;
use ppvnet_keyvault::{Authorization, KeyVaultConfig, KeyVaultRole, RoleAssignment, VaultConfig};

use crate::common::{Authority, Pki, Running, TENANT, bind, new_kv};

const OID: &str = "cccccccc-0000-0000-0000-000000000001";

struct TestCredential {
    authority: Authority,
}

impl std::fmt::Debug for TestCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TestCredential")
    }
}

#[async_trait::async_trait]
impl TokenCredential for TestCredential {
    async fn get_token(
        &self,
        scopes: &[&str],
        _options: Option<TokenRequestOptions<'_>>,
    ) -> azure_core::Result<AccessToken> {
        // The client derives the scope from the vault's challenge.
        assert_eq!(scopes, ["https://vault.azure.net/.default"]);
        Ok(AccessToken::new(
            self.authority.token(OID),
            time::OffsetDateTime::now_utc() + time::Duration::hours(1),
        ))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_secret_client_roundtrip() -> anyhow::Result<()> {
    let pki = Pki::new();
    let clock = Clock::new();
    let authority = Authority::start(clock.clone(), None).await;
    let listener = bind();
    let addr = listener.local_addr()?;
    let mut vault = VaultConfig::new("kv-rust", TENANT, "westus");
    vault.host_aliases.push(addr.to_string());
    vault.pending_operation_ms = 0;
    vault.authorization = Authorization::Rbac {
        role_assignments: vec![RoleAssignment {
            principal_id: OID.into(),
            role: KeyVaultRole::SecretsOfficer,
            secret: None,
        }],
    };
    let config = KeyVaultConfig {
        vaults: vec![vault],
        ..Default::default()
    };
    let kv = new_kv(config, &clock, authority.check(reqwest::Client::new()));
    let running = Running::serve(kv, (listener, None), Some(pki.server.clone()));

    let options = SecretClientOptions {
        client_options: ClientOptions {
            transport: Some(Transport::new(Arc::new(pki.client()))),
            ..Default::default()
        },
        // A loopback address is not under vault.azure.net.
        verify_challenge_resource: Some(false),
        ..Default::default()
    };
    let client = SecretClient::new(
        &format!("https://{addr}/"),
        Arc::new(TestCredential {
            authority: authority.clone(),
        }),
        Some(options),
    )?;

    let first = client
        .set_secret(
            "rust-secret",
            SetSecretParameters {
                value: Some("v1".into()),
                ..Default::default()
            }
            .try_into()?,
            None,
        )
        .await?
        .into_model()?;
    assert_eq!(first.value.as_deref(), Some("v1"));
    let first_version = first.resource_id()?.version.expect("a version");
    client
        .set_secret(
            "rust-secret",
            SetSecretParameters {
                value: Some("v2".into()),
                ..Default::default()
            }
            .try_into()?,
            None,
        )
        .await?;
    let latest = client.get_secret("rust-secret", None).await?.into_model()?;
    assert_eq!(latest.value.as_deref(), Some("v2"));
    let old = client
        .get_secret(
            "rust-secret",
            Some(SecretClientGetSecretOptions {
                secret_version: Some(first_version),
                ..Default::default()
            }),
        )
        .await?
        .into_model()?;
    assert_eq!(old.value.as_deref(), Some("v1"));

    let updated = client
        .update_secret_properties(
            "rust-secret",
            UpdateSecretPropertiesParameters {
                content_type: Some("text/plain".into()),
                tags: Some(HashMap::from([("k".to_owned(), "v".to_owned())])),
                ..Default::default()
            }
            .try_into()?,
            None,
        )
        .await?
        .into_model()?;
    assert_eq!(updated.content_type.as_deref(), Some("text/plain"));

    let mut names = Vec::new();
    let mut pager = client.list_secret_properties(None)?;
    while let Some(item) = pager.try_next().await? {
        names.push(item.resource_id()?.name);
    }
    assert_eq!(names, ["rust-secret"]);

    client.delete_secret("rust-secret", None).await?;
    client.purge_deleted_secret("rust-secret", None).await?;
    let gone = client.get_secret("rust-secret", None).await;
    assert_eq!(
        gone.err().and_then(|e| e.http_status()).map(u16::from),
        Some(404)
    );
    running.stop().await;
    Ok(())
}
