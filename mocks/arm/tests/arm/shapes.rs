//! ARM's JSON shapes: `value` lists with `nextLink`, ids, types, locations, properties.

use serde_json::Value;

use crate::support::*;

const NET: &str = "api-version=2025-07-01";

#[tokio::test]
async fn tenants_subscriptions_and_resource_groups() {
    let l = Landscape::start().await;
    let t = l.token(&READER).await;
    let (status, body, _) = l.get(Some(&t), "/tenants?api-version=2022-12-01").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["value"][0]["tenantId"], TENANT);
    assert_eq!(body["value"][0]["id"], format!("/tenants/{TENANT}"));
    assert_eq!(
        body["value"][0]["defaultDomain"],
        "fabrikam.onmicrosoft.com"
    );

    let (status, body, _) = l
        .get(Some(&t), "/subscriptions?api-version=2022-12-01")
        .await;
    assert_eq!(status, 200, "{body}");
    let sub = &body["value"][0];
    assert_eq!(sub["id"], format!("/subscriptions/{SUB}"));
    assert_eq!(sub["subscriptionId"], SUB);
    assert_eq!(sub["tenantId"], TENANT);
    assert_eq!(sub["state"], "Enabled");
    assert_eq!(sub["displayName"], "minimal");
    assert_eq!(body["count"]["value"], 1);

    let (status, body, _) = l
        .get(
            Some(&t),
            &format!("/subscriptions/{SUB}?api-version=2022-12-01"),
        )
        .await;
    assert_eq!((status, body["subscriptionId"].as_str()), (200, Some(SUB)));

    // The CLI spells the collection `resourcegroups`; ARM's segments are case-insensitive.
    let (status, body, _) = l
        .get(
            Some(&t),
            &format!("/subscriptions/{SUB}/resourcegroups?api-version=2024-11-01"),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    // Reader on rg-test sees that group only.
    assert_eq!(body["value"].as_array().unwrap().len(), 1);
    assert_eq!(
        body["value"][0],
        serde_json::json!({
            "id": format!("/subscriptions/{SUB}/resourceGroups/{RG}"),
            "name": RG,
            "type": "Microsoft.Resources/resourceGroups",
            "location": "westus",
            "properties": { "provisioningState": "Succeeded" }
        })
    );
    let o = l.token(&OWNER).await;
    let (_, body, _) = l
        .get(
            Some(&o),
            &format!("/subscriptions/{SUB}/resourceGroups?api-version=2024-11-01"),
        )
        .await;
    assert_eq!(body["value"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn vaults_list_and_get() {
    let l = Landscape::start().await;
    let t = l.token(&READER).await;
    let vault = id("Microsoft.KeyVault/vaults", "kv-test");
    let (status, body, _) = l
        .get(Some(&t), &format!("{vault}?api-version=2026-02-01"))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["id"], vault);
    assert_eq!(body["name"], "kv-test");
    assert_eq!(body["type"], "Microsoft.KeyVault/vaults");
    assert_eq!(body["location"], "westus");
    let p = &body["properties"];
    assert_eq!(p["vaultUri"], "https://kv-test.vault.azure.net/");
    assert_eq!(p["tenantId"], TENANT);
    assert_eq!(p["enableRbacAuthorization"], true);
    assert_eq!(p["enablePurgeProtection"], true);
    assert_eq!(p["publicNetworkAccess"], "Disabled");
    assert_eq!(p["sku"]["name"], "standard");
    assert_eq!(p["networkAcls"]["defaultAction"], "Deny");
    assert_eq!(p["networkAcls"]["ipRules"][0]["value"], "203.0.113.7/32");
    assert_eq!(
        p["privateEndpointConnections"][0]["properties"]["privateEndpoint"]["id"],
        id("Microsoft.Network/privateEndpoints", "pe-kv-test")
    );
    for path in [
        format!("/subscriptions/{SUB}/providers/Microsoft.KeyVault/vaults?api-version=2023-07-01"),
        format!(
            "/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.KeyVault/vaults?api-version=2023-07-01"
        ),
    ] {
        let (status, list, _) = l.get(Some(&t), &path).await;
        assert_eq!(status, 200, "{path}: {list}");
        assert_eq!(list["value"][0]["id"], vault, "{path}");
        assert!(list.get("nextLink").is_none());
    }
    // What `az keyvault show -n` asks to find the vault's group.
    let (status, list, _) = l
        .get(
            Some(&t),
            &format!(
                "/subscriptions/{SUB}/resources?$filter=resourceType%20eq%20%27Microsoft.KeyVault%2Fvaults%27%20and%20name%20eq%20%27kv-test%27&api-version=2015-11-01"
            ),
        )
        .await;
    assert_eq!(status, 200, "{list}");
    assert_eq!(
        list["value"],
        serde_json::json!([{ "id": vault, "name": "kv-test", "type": "Microsoft.KeyVault/vaults", "location": "westus" }])
    );
}

#[tokio::test]
async fn virtual_networks_subnets_and_peerings() {
    let l = Landscape::start().await;
    let t = l.token(&READER).await;
    let west = id("Microsoft.Network/virtualNetworks", "vnet-west");
    let (status, v, _) = l.get(Some(&t), &format!("{west}?{NET}")).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["type"], "Microsoft.Network/virtualNetworks");
    assert_eq!(v["properties"]["provisioningState"], "Succeeded");
    assert_eq!(
        v["properties"]["addressSpace"]["addressPrefixes"][0],
        "10.1.0.0/16"
    );
    assert!(v["etag"].as_str().unwrap().starts_with("W/\""));
    let pp = &v["properties"]["subnets"][0];
    assert_eq!(pp["id"], format!("{west}/subnets/snet-pp"));
    assert_eq!(pp["type"], "Microsoft.Network/virtualNetworks/subnets");
    let delegation = &pp["properties"]["delegations"][0];
    assert_eq!(
        delegation["properties"]["serviceName"],
        "Microsoft.PowerPlatform/enterprisePolicies"
    );
    assert_eq!(
        delegation["type"],
        "Microsoft.Network/virtualNetworks/subnets/delegations"
    );
    let pe_subnet = &v["properties"]["subnets"][1]["properties"];
    assert_eq!(
        pe_subnet["networkSecurityGroup"]["id"],
        id("Microsoft.Network/networkSecurityGroups", "nsg-pe")
    );
    assert_eq!(
        pe_subnet["privateEndpoints"][0]["id"],
        id("Microsoft.Network/privateEndpoints", "pe-kv-test")
    );
    // A peering is Connected when the remote network peers back, Initiated otherwise.
    let peerings = &v["properties"]["virtualNetworkPeerings"];
    assert_eq!(peerings[0]["properties"]["peeringState"], "Connected");
    assert_eq!(
        peerings[0]["properties"]["remoteAddressSpace"]["addressPrefixes"][0],
        "10.2.0.0/16"
    );
    assert_eq!(peerings[1]["properties"]["peeringState"], "Initiated");

    let (status, subnets, _) = l.get(Some(&t), &format!("{west}/subnets?{NET}")).await;
    assert_eq!(status, 200);
    assert_eq!(subnets["value"].as_array().unwrap().len(), 2);
    let (status, one, _) = l
        .get(Some(&t), &format!("{west}/subnets/snet-pe?{NET}"))
        .await;
    assert_eq!((status, &one["name"]), (200, &Value::from("snet-pe")));
    let (status, peering, _) = l
        .get(
            Some(&t),
            &format!("{west}/virtualNetworkPeerings/west-to-east?{NET}"),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        peering["properties"]["remoteVirtualNetwork"]["id"],
        id("Microsoft.Network/virtualNetworks", "vnet-east")
    );
    let (status, missing, _) = l
        .get(Some(&t), &format!("{west}/subnets/snet-none?{NET}"))
        .await;
    assert_eq!((status, code(&missing)), (404, "NotFound"));
    assert_eq!(
        message(&missing),
        format!("Resource {west}/subnets/snet-none not found.")
    );
}

#[tokio::test]
async fn endpoints_nsgs_dns_zones_and_enterprise_policies() {
    let l = Landscape::start().await;
    let t = l.token(&OWNER).await;
    let (status, nsg, _) = l
        .get(
            Some(&t),
            &format!(
                "{}?{NET}",
                id("Microsoft.Network/networkSecurityGroups", "nsg-pe")
            ),
        )
        .await;
    assert_eq!(status, 200, "{nsg}");
    let rule = &nsg["properties"]["securityRules"][0]["properties"];
    // One-item lists in the singular property, longer ones in the plural, as ARM writes them.
    assert_eq!(rule["sourceAddressPrefix"], "VirtualNetwork");
    assert_eq!(rule["destinationPortRange"], "443");
    assert_eq!(
        rule["destinationAddressPrefixes"].as_array().unwrap().len(),
        2
    );
    assert!(rule.get("destinationAddressPrefix").is_none());
    let defaults: Vec<&str> = nsg["properties"]["defaultSecurityRules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        defaults,
        [
            "AllowVnetInBound",
            "AllowAzureLoadBalancerInBound",
            "DenyAllInBound",
            "AllowVnetOutBound",
            "AllowInternetOutBound",
            "DenyAllOutBound"
        ]
    );

    let (status, pe, _) = l
        .get(
            Some(&t),
            &format!(
                "{}?api-version=2026-01-01",
                id("Microsoft.Network/privateEndpoints", "pe-kv-test")
            ),
        )
        .await;
    assert_eq!(status, 200, "{pe}");
    let connection = &pe["properties"]["privateLinkServiceConnections"][0]["properties"];
    assert_eq!(
        connection["privateLinkServiceId"],
        id("Microsoft.KeyVault/vaults", "kv-test")
    );
    assert_eq!(connection["groupIds"][0], "vault");
    assert_eq!(
        connection["privateLinkServiceConnectionState"]["status"],
        "Approved"
    );
    assert_eq!(
        pe["properties"]["customDnsConfigs"][0]["ipAddresses"][0],
        "10.1.2.4"
    );

    let zone = format!(
        "/subscriptions/{SUB}/resourceGroups/{DNS_RG}/providers/Microsoft.Network/privateDnsZones/privatelink.vaultcore.azure.net"
    );
    let (status, z, _) = l
        .get(Some(&t), &format!("{zone}?api-version=2024-06-01"))
        .await;
    assert_eq!(status, 200, "{z}");
    assert_eq!(z["location"], "global");
    assert_eq!(z["properties"]["numberOfVirtualNetworkLinks"], 1);
    let (status, links, _) = l
        .get(
            Some(&t),
            &format!("{zone}/virtualNetworkLinks?api-version=2024-06-01"),
        )
        .await;
    assert_eq!(status, 200, "{links}");
    assert_eq!(
        links["value"][0]["properties"]["virtualNetwork"]["id"],
        id("Microsoft.Network/virtualNetworks", "vnet-west")
    );

    let (status, ep, _) = l
        .get(
            Some(&t),
            &format!(
                "/subscriptions/{SUB}/providers/Microsoft.PowerPlatform/enterprisePolicies?api-version=2020-10-30-preview"
            ),
        )
        .await;
    assert_eq!(status, 200, "{ep}");
    let policy = &ep["value"][0];
    assert_eq!(policy["kind"], "NetworkInjection");
    assert_eq!(policy["location"], "unitedstates");
    assert_eq!(
        policy["properties"]["networkInjection"]["virtualNetworks"][0],
        serde_json::json!({ "id": id("Microsoft.Network/virtualNetworks", "vnet-west"), "subnet": { "name": "snet-pp" } })
    );
}

#[tokio::test]
async fn lists_page_with_top_and_next_link() {
    let l = Landscape::start().await;
    let t = l.token(&OWNER).await;
    let mut url =
        format!("/subscriptions/{SUB}/providers/Microsoft.Network/virtualNetworks?{NET}&$top=2");
    let mut names = Vec::new();
    let mut pages = 0;
    loop {
        let (status, body, _) = l.get(Some(&t), &url).await;
        assert_eq!(status, 200, "{body}");
        pages += 1;
        names.extend(
            body["value"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v["name"].as_str().unwrap().to_string()),
        );
        match body["nextLink"].as_str() {
            Some(next) => {
                assert!(next.starts_with(&l.arm), "{next}");
                url = next[l.arm.len()..].to_string();
            }
            None => break,
        }
    }
    assert_eq!(pages, 2);
    assert_eq!(names, ["vnet-west", "vnet-east", "vnet-third"]);
}
