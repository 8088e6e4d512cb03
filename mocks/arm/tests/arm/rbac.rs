//! RBAC: Reader, Contributor or Owner at the subscription, a resource group or the resource
//! itself allows reads; Key Vault data roles do not; anyone else gets `AuthorizationFailed` in
//! ARM's words.

use crate::support::*;

fn authorization_failed(p: &Principal, action: &str, scope: &str) -> String {
    format!(
        "The client '{0}' with object id '{0}' does not have authorization to perform action '{action}' over scope '{scope}' or the scope is invalid. If access was recently granted, please refresh your credentials.",
        p.object_id
    )
}

#[tokio::test]
async fn a_principal_without_a_role_is_refused_in_arms_words() {
    let l = Landscape::start().await;
    let t = l.token(&NOBODY).await;
    let vnet = id("Microsoft.Network/virtualNetworks", "vnet-west");
    let (status, body, _) = l
        .get(Some(&t), &format!("{vnet}?api-version=2025-07-01"))
        .await;
    assert_eq!(
        (status, code(&body)),
        (403, "AuthorizationFailed"),
        "{body}"
    );
    assert_eq!(
        message(&body),
        authorization_failed(&NOBODY, "Microsoft.Network/virtualNetworks/read", &vnet)
    );
    // It sees no subscription, so `az login` finds none.
    let (status, body, _) = l
        .get(Some(&t), "/subscriptions?api-version=2022-12-01")
        .await;
    assert_eq!(status, 200);
    assert_eq!(body["value"], serde_json::json!([]));
    let (status, body, _) = l
        .get(
            Some(&t),
            &format!("/subscriptions/{SUB}/resourceGroups?api-version=2024-11-01"),
        )
        .await;
    assert_eq!((status, code(&body)), (403, "AuthorizationFailed"));
    assert_eq!(
        message(&body),
        authorization_failed(
            &NOBODY,
            "Microsoft.Resources/subscriptions/resourceGroups/read",
            &format!("/subscriptions/{SUB}")
        )
    );
}

#[tokio::test]
async fn key_vault_data_roles_grant_no_management_read() {
    let l = Landscape::start().await;
    let t = l.token(&OFFICER).await;
    let vault = id("Microsoft.KeyVault/vaults", "kv-test");
    let (status, body, _) = l
        .get(Some(&t), &format!("{vault}?api-version=2023-07-01"))
        .await;
    assert_eq!(
        (status, code(&body)),
        (403, "AuthorizationFailed"),
        "{body}"
    );
    assert_eq!(
        message(&body),
        authorization_failed(&OFFICER, "Microsoft.KeyVault/vaults/read", &vault)
    );
}

#[tokio::test]
async fn assignments_inherit_down_and_lists_show_what_the_caller_may_read() {
    let l = Landscape::start().await;
    // Reader on the vault alone: the vault reads, the network does not; the subscription's
    // vault list shows the vault, the network list is refused.
    let t = l.token(&VAULT_READER).await;
    let vault = id("Microsoft.KeyVault/vaults", "kv-test");
    let (status, _, _) = l
        .get(Some(&t), &format!("{vault}?api-version=2023-07-01"))
        .await;
    assert_eq!(status, 200);
    let (status, body, _) = l
        .get(
            Some(&t),
            &format!(
                "/subscriptions/{SUB}/providers/Microsoft.KeyVault/vaults?api-version=2023-07-01"
            ),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["value"].as_array().unwrap().len(), 1);
    let (status, body, _) = l
        .get(
            Some(&t),
            &format!("/subscriptions/{SUB}/resources?api-version=2015-11-01"),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["value"].as_array().unwrap().len(), 1, "{body}");
    let vnet = id("Microsoft.Network/virtualNetworks", "vnet-west");
    let (status, body, _) = l
        .get(Some(&t), &format!("{vnet}?api-version=2025-07-01"))
        .await;
    assert_eq!((status, code(&body)), (403, "AuthorizationFailed"));
    // Owner at the subscription reads everything, in every group.
    let o = l.token(&OWNER).await;
    let (status, body, _) = l
        .get(
            Some(&o),
            &format!("/subscriptions/{SUB}/resources?api-version=2015-11-01"),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(body["value"].as_array().unwrap().len(), 8, "{body}");
}

#[tokio::test]
async fn missing_groups_and_resources_are_404_once_the_read_is_allowed() {
    let l = Landscape::start().await;
    let t = l.token(&OWNER).await;
    let (status, body, _) = l
        .get(
            Some(&t),
            &format!("/subscriptions/{SUB}/resourceGroups/rg-none?api-version=2024-11-01"),
        )
        .await;
    assert_eq!((status, code(&body)), (404, "ResourceGroupNotFound"));
    assert_eq!(
        message(&body),
        "Resource group 'rg-none' could not be found."
    );
    let (status, body, _) = l
        .get(
            Some(&t),
            &format!(
                "{}?api-version=2023-07-01",
                id("Microsoft.KeyVault/vaults", "kv-none")
            ),
        )
        .await;
    assert_eq!((status, code(&body)), (404, "ResourceNotFound"));
    assert_eq!(
        message(&body),
        format!(
            "The Resource 'Microsoft.KeyVault/vaults/kv-none' under resource group '{RG}' was not found. For more details please go to https://aka.ms/ARMResourceNotFoundFix"
        )
    );
    let other = "22222222-2222-4333-8444-555555555555";
    let (status, body, _) = l
        .get(
            Some(&t),
            &format!("/subscriptions/{other}?api-version=2022-12-01"),
        )
        .await;
    assert_eq!((status, code(&body)), (404, "SubscriptionNotFound"));
    assert_eq!(
        message(&body),
        format!("The subscription '{other}' could not be found.")
    );
    // Reader on rg-test: a missing vault in its group is 404, outside its group 403.
    let r = l.token(&READER).await;
    let (status, _, _) = l
        .get(
            Some(&r),
            &format!(
                "{}?api-version=2023-07-01",
                id("Microsoft.KeyVault/vaults", "kv-none")
            ),
        )
        .await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn writes_are_authorized_first_and_then_refused_as_read_only() {
    let l = Landscape::start().await;
    let vault = id("Microsoft.KeyVault/vaults", "kv-test");
    let path = format!("{vault}?api-version=2023-07-01");
    let r = l.token(&READER).await;
    let (status, body, _) = l.send(reqwest::Method::PUT, Some(&r), &path).await;
    assert_eq!((status, code(&body)), (403, "AuthorizationFailed"));
    assert_eq!(
        message(&body),
        authorization_failed(&READER, "Microsoft.KeyVault/vaults/write", &vault)
    );
    let o = l.token(&OWNER).await;
    let (status, body, _) = l.send(reqwest::Method::DELETE, Some(&o), &path).await;
    assert_eq!((status, code(&body)), (405, "MethodNotAllowed"), "{body}");
}
