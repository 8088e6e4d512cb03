//! The fake Key Vault's whole request path (host routing, challenge, token, network rules,
//! api-version, routing, authorization, body parsing, the store), driven in-process through its
//! axum router with arbitrary method, path, query, headers and body (`ppvnet_fuzz` request text).
//!
//! Tokens are not what this target fuzzes (the `token` target does): the vault is built with a
//! token check that maps a few fixed bearer values to callers, so the fuzzer gets past 401 and
//! reaches every operation as an officer, a reader, an access-policy user or a stranger.
//! A fresh vault per input keeps executions independent, so a saved crash replays alone.
//!
//! Oracle: no panic, no 5xx, every body JSON.
#![no_main]

use std::sync::Arc;

use futures::future::BoxFuture;
use libfuzzer_sys::fuzz_target;
use ppvnet_common::Clock;
use ppvnet_keyvault::{
    AccessPolicy, AccessTokenCheck, Authorization, Caller, KeyVault, KeyVaultConfig, KeyVaultRole,
    PublicNetworkAccess, RoleAssignment, SecretPermission, SeedSecret, TokenRejection, VaultConfig,
};

const TENANT: &str = "c76cdc05-9ef7-4021-9a9c-171dd3832ea4";
const OFFICER: &str = "aaaaaaaa-0000-4000-8000-000000000001";
const READER: &str = "aaaaaaaa-0000-4000-8000-000000000002";
const POLICY_USER: &str = "aaaaaaaa-0000-4000-8000-000000000003";
const STRANGER: &str = "aaaaaaaa-0000-4000-8000-000000000004";

/// `Bearer officer` etc.; anything else is refused as an invalid token.
struct FixedTokens;

impl AccessTokenCheck for FixedTokens {
    fn check<'a>(
        &'a self,
        tenant_id: &'a str,
        token: &'a str,
    ) -> BoxFuture<'a, Result<Caller, TokenRejection>> {
        Box::pin(async move {
            let object_id = match token {
                _ if tenant_id != TENANT => None,
                "officer" => Some(OFFICER),
                "reader" => Some(READER),
                "policy" => Some(POLICY_USER),
                "stranger" => Some(STRANGER),
                _ => None,
            };
            match object_id {
                Some(oid) => Ok(Caller {
                    app_id: "fuzz-client".to_owned(),
                    object_id: oid.to_owned(),
                    issuer: format!("https://sts.windows.net/{TENANT}/"),
                }),
                None => Err(TokenRejection {
                    message: "AKV10032: Invalid issuer.".to_owned(),
                }),
            }
        })
    }
}

fn seeded(mut vault: VaultConfig) -> VaultConfig {
    let mut with_attributes = SeedSecret::new("db-password", "s3cret");
    with_attributes.content_type = Some("text/plain".to_owned());
    with_attributes
        .tags
        .insert("env".to_owned(), "prod".to_owned());
    vault.secrets = vec![
        with_attributes,
        SeedSecret::new("api-key", "k-123"),
        SeedSecret::new("Disabled-One", "off"),
    ];
    vault.secrets[2].enabled = false;
    vault
}

/// An RBAC vault, an access-policy vault and one with public access disabled, all in memory.
fn vaults() -> KeyVault {
    let mut rbac = seeded(VaultConfig::new("kv-fuzz-rbac", TENANT, "westus"));
    rbac.authorization = Authorization::Rbac {
        role_assignments: vec![
            RoleAssignment {
                principal_id: OFFICER.to_owned(),
                role: KeyVaultRole::SecretsOfficer,
                secret: None,
            },
            RoleAssignment {
                principal_id: READER.to_owned(),
                role: KeyVaultRole::SecretsUser,
                secret: Some("api-key".to_owned()),
            },
        ],
    };
    let mut policies = seeded(VaultConfig::new("kv-fuzz-policies", TENANT, "eastus"));
    policies.authorization = Authorization::AccessPolicies {
        access_policies: vec![
            AccessPolicy {
                object_id: POLICY_USER.to_owned(),
                secret_permissions: vec![SecretPermission::All],
            },
            AccessPolicy {
                object_id: READER.to_owned(),
                secret_permissions: vec![SecretPermission::Get, SecretPermission::List],
            },
        ],
    };
    let mut closed = seeded(VaultConfig::new("kv-fuzz-closed", TENANT, "westus"));
    closed.public_network_access = PublicNetworkAccess::Disabled;
    let config = KeyVaultConfig {
        vaults: vec![rbac, policies, closed],
        ..Default::default()
    };
    KeyVault::new(
        config,
        Clock::new(),
        ppvnet_common::net::socket_peers(),
        Arc::new(FixedTokens),
    )
    .expect("the fuzz vaults are valid")
}

fuzz_target!(|data: &[u8]| {
    let Some(request) = ppvnet_fuzz::parse_request(data) else {
        return;
    };
    let what = format!("{} {}", request.method(), request.uri());
    let (status, _, body) = ppvnet_fuzz::call(ppvnet_keyvault::router(vaults()), request);
    ppvnet_fuzz::assert_well_formed(status, &body, &what);
});
