//! A small landscape as ARM resources, the real mock Entra issuing ARM tokens, and ARM served
//! on loopback.

use std::future::Future;

use ppvnet_arm::config::*;
use ppvnet_arm::{Arm, ArmTokens};
use ppvnet_common::{Clock, Endpoint};
use ppvnet_entra::config::{ApplicationConfig, PasswordCredential, Timestamp};
use ppvnet_entra::{Entra, EntraConfig};
use serde_json::Value;

pub const TENANT: &str = "0b6f8c8e-7a51-4d0e-9a43-3b1f2f5d9c11";
pub const SUB: &str = "11111111-2222-4333-8444-555555555555";
pub const RG: &str = "rg-test";
pub const DNS_RG: &str = "rg-test-dns";

/// A service principal of the test tenant and its client secret.
pub struct Principal {
    pub app_id: &'static str,
    pub object_id: &'static str,
    pub secret: &'static str,
}

/// Reader on `rg-test`.
pub const READER: Principal = Principal {
    app_id: "a0000000-0000-4000-8000-000000000001",
    object_id: "b0000000-0000-4000-8000-000000000001",
    secret: "reader-secret",
};
/// No role at all.
pub const NOBODY: Principal = Principal {
    app_id: "a0000000-0000-4000-8000-000000000002",
    object_id: "b0000000-0000-4000-8000-000000000002",
    secret: "nobody-secret",
};
/// Key Vault Secrets Officer on the vault (a data role).
pub const OFFICER: Principal = Principal {
    app_id: "a0000000-0000-4000-8000-000000000003",
    object_id: "b0000000-0000-4000-8000-000000000003",
    secret: "officer-secret",
};
/// Owner of the subscription.
pub const OWNER: Principal = Principal {
    app_id: "a0000000-0000-4000-8000-000000000004",
    object_id: "b0000000-0000-4000-8000-000000000004",
    secret: "owner-secret",
};
/// Reader on the vault only.
pub const VAULT_READER: Principal = Principal {
    app_id: "a0000000-0000-4000-8000-000000000005",
    object_id: "b0000000-0000-4000-8000-000000000005",
    secret: "vault-reader-secret",
};

const PRINCIPALS: [&Principal; 5] = [&READER, &NOBODY, &OFFICER, &OWNER, &VAULT_READER];

pub fn id(kind: &str, name: &str) -> String {
    format!("/subscriptions/{SUB}/resourceGroups/{RG}/providers/{kind}/{name}")
}

fn at(name: &str, location: &str) -> Placement {
    Placement {
        resource_group: RG.into(),
        name: name.into(),
        location: location.into(),
    }
}

fn subnet(name: &str, prefix: &str) -> SubnetResource {
    SubnetResource {
        name: name.into(),
        address_prefix: prefix.into(),
        delegations: vec![],
        network_security_group: None,
        nat_gateway: None,
        service_endpoints: vec![],
    }
}

pub fn arm_config() -> ArmConfig {
    let west = id("Microsoft.Network/virtualNetworks", "vnet-west");
    let east = id("Microsoft.Network/virtualNetworks", "vnet-east");
    let third = id("Microsoft.Network/virtualNetworks", "vnet-third");
    let nsg = id("Microsoft.Network/networkSecurityGroups", "nsg-pe");
    let vault = id("Microsoft.KeyVault/vaults", "kv-test");
    let mut pp = subnet("snet-pp", "10.1.1.0/24");
    pp.delegations = vec!["Microsoft.PowerPlatform/enterprisePolicies".into()];
    let mut pe = subnet("snet-pe", "10.1.2.0/24");
    pe.network_security_group = Some(nsg.clone());
    let peering = |name: &str, remote: &str| PeeringResource {
        name: name.into(),
        remote_virtual_network: remote.into(),
        allow_virtual_network_access: true,
    };
    let role = |p: &Principal, role: &str, scope: String| RoleAssignment {
        principal_id: p.object_id.into(),
        role: role.into(),
        scope,
    };
    ArmConfig {
        tenant: TenantConfig {
            id: TENANT.into(),
            display_name: "fabrikam".into(),
            default_domain: "fabrikam.onmicrosoft.com".into(),
        },
        subscription: SubscriptionConfig {
            id: SUB.into(),
            display_name: "minimal".into(),
        },
        resource_groups: vec![
            ResourceGroupConfig {
                name: RG.into(),
                location: "westus".into(),
            },
            ResourceGroupConfig {
                name: DNS_RG.into(),
                location: "westus".into(),
            },
        ],
        key_vaults: vec![VaultResource {
            at: at("kv-test", "westus"),
            enable_rbac_authorization: true,
            public_network_access_enabled: false,
            soft_delete_retention_days: 90,
            purge_protection: true,
            default_action: Some("Deny".into()),
            ip_rules: vec!["203.0.113.7/32".into()],
            virtual_network_rules: vec![],
            access_policies: vec![],
        }],
        virtual_networks: vec![
            VirtualNetworkResource {
                at: at("vnet-west", "westus"),
                address_prefixes: vec!["10.1.0.0/16".into()],
                dns_servers: vec![],
                subnets: vec![pp, pe],
                peerings: vec![
                    peering("west-to-east", &east),
                    peering("west-to-third", &third),
                ],
            },
            VirtualNetworkResource {
                at: at("vnet-east", "eastus"),
                address_prefixes: vec!["10.2.0.0/16".into()],
                dns_servers: vec![],
                subnets: vec![subnet("snet-pp", "10.2.1.0/24")],
                peerings: vec![peering("east-to-west", &west)],
            },
            VirtualNetworkResource {
                at: at("vnet-third", "eastus"),
                address_prefixes: vec!["10.3.0.0/16".into()],
                dns_servers: vec![],
                subnets: vec![],
                peerings: vec![],
            },
        ],
        network_security_groups: vec![NsgResource {
            at: at("nsg-pe", "westus"),
            security_rules: vec![SecurityRule {
                name: "AllowVnetHttpsInbound".into(),
                priority: 100,
                direction: "Inbound".into(),
                access: "Allow".into(),
                protocol: "Tcp".into(),
                source_address_prefixes: vec!["VirtualNetwork".into()],
                source_port_ranges: vec!["*".into()],
                destination_address_prefixes: vec!["10.1.2.0/24".into(), "10.1.3.0/24".into()],
                destination_port_ranges: vec!["443".into()],
            }],
            subnets: vec![format!("{west}/subnets/snet-pe")],
        }],
        private_endpoints: vec![PrivateEndpointResource {
            at: at("pe-kv-test", "westus"),
            subnet: format!("{west}/subnets/snet-pe"),
            private_link_service_id: vault.clone(),
            group_id: "vault".into(),
            private_ip_address: "10.1.2.4".into(),
            fqdn: "kv-test.vault.azure.net".into(),
        }],
        private_dns_zones: vec![PrivateDnsZoneResource {
            resource_group: DNS_RG.into(),
            name: "privatelink.vaultcore.azure.net".into(),
            record_sets: 2,
            virtual_network_links: vec![VirtualNetworkLink {
                name: "vnet-west-link".into(),
                virtual_network: west.clone(),
            }],
        }],
        enterprise_policies: vec![EnterprisePolicyResource {
            at: at("ep-test", "unitedstates"),
            kind: "NetworkInjection".into(),
            virtual_networks: vec![(west.clone(), "snet-pp".into()), (east, "snet-pp".into())],
        }],
        role_assignments: vec![
            role(
                &READER,
                "Reader",
                format!("/subscriptions/{SUB}/resourceGroups/{RG}"),
            ),
            role(&OFFICER, "Key Vault Secrets Officer", vault.clone()),
            role(&OWNER, "Owner", format!("/subscriptions/{SUB}")),
            role(&VAULT_READER, "Reader", vault),
        ],
    }
}

fn entra_config() -> EntraConfig {
    let mut applications = vec![
        ApplicationConfig::azure_resource_manager(),
        ApplicationConfig::azure_key_vault(),
    ];
    for p in PRINCIPALS {
        let mut app = ApplicationConfig::new(p.app_id, p.app_id);
        app.service_principal_id = Some(p.object_id.into());
        app.password_credentials = vec![PasswordCredential {
            key_id: p.object_id.replace("b0", "c0"),
            display_name: None,
            secret_text: p.secret.into(),
            start_date_time: None,
            end_date_time: Timestamp(4_102_444_800),
        }];
        applications.push(app);
    }
    EntraConfig {
        tenant_id: TENANT.into(),
        domain: "fabrikam.onmicrosoft.com".into(),
        display_name: Some("Fabrikam".into()),
        tenant_region_scope: "NA".into(),
        users: vec![],
        groups: vec![],
        applications,
    }
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

/// Entra and ARM running on loopback (plain HTTP).
pub struct Landscape {
    pub entra: String,
    pub arm: String,
    pub clock: Clock,
    pub http: reqwest::Client,
    _stops: Vec<tokio::sync::oneshot::Sender<()>>,
    _keys: tempfile_dir::Dir,
}

/// A temporary folder for Entra's signing keys, removed on drop.
mod tempfile_dir {
    pub struct Dir(pub std::path::PathBuf);
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

impl Landscape {
    pub async fn start() -> Self {
        let clock = Clock::new();
        let keys = std::env::temp_dir().join(format!(
            "ppvnet-arm-test-keys-{}-{}",
            std::process::id(),
            uuid_like()
        ));
        std::fs::create_dir_all(&keys).unwrap();
        let entra_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let entra_base = format!("http://{}", entra_listener.local_addr().unwrap());
        let entra = Entra::new(
            &entra_config(),
            clock.clone(),
            url::Url::parse(&entra_base).unwrap(),
            Some(&keys),
        )
        .unwrap();
        let mut stops = Vec::new();
        let (tx, stop) = stop_pair();
        stops.push(tx);
        tokio::spawn(ppvnet_entra::run(
            entra,
            vec![Endpoint::public(entra_listener)],
            None,
            stop,
        ));
        let http = reqwest::Client::builder().no_proxy().build().unwrap();
        let tokens = ArmTokens::new(&entra_base, TENANT, http.clone(), clock.clone());
        let arm = Arm::new(arm_config(), tokens);
        let arm_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let arm_base = format!("http://{}", arm_listener.local_addr().unwrap());
        let (tx, stop) = stop_pair();
        stops.push(tx);
        tokio::spawn(ppvnet_arm::run(
            arm,
            vec![Endpoint::public(arm_listener)],
            None,
            stop,
        ));
        Self {
            entra: entra_base,
            arm: arm_base,
            clock,
            http,
            _stops: stops,
            _keys: tempfile_dir::Dir(keys),
        }
    }

    /// A client-credentials token of `p` for `scope`.
    pub async fn token_for(&self, p: &Principal, scope: &str) -> String {
        let r = self
            .http
            .post(format!("{}/{TENANT}/oauth2/v2.0/token", self.entra))
            .form(&[
                ("grant_type", "client_credentials"),
                ("client_id", p.app_id),
                ("client_secret", p.secret),
                ("scope", scope),
            ])
            .send()
            .await
            .unwrap();
        let body: Value = r.json().await.unwrap();
        body["access_token"]
            .as_str()
            .unwrap_or_else(|| panic!("no token: {body}"))
            .to_string()
    }

    /// An ARM token of `p`, as the Azure CLI asks for it.
    pub async fn token(&self, p: &Principal) -> String {
        self.token_for(p, "https://management.core.windows.net//.default")
            .await
    }

    /// `GET {arm}{path_and_query}` with `token`; status, body, `WWW-Authenticate`.
    pub async fn get(&self, token: Option<&str>, path: &str) -> (u16, Value, Option<String>) {
        self.send(reqwest::Method::GET, token, path).await
    }

    pub async fn send(
        &self,
        method: reqwest::Method,
        token: Option<&str>,
        path: &str,
    ) -> (u16, Value, Option<String>) {
        let mut request = self.http.request(method, format!("{}{path}", self.arm));
        if let Some(t) = token {
            request = request.bearer_auth(t);
        }
        let r = request.send().await.unwrap();
        let status = r.status().as_u16();
        let challenge = r
            .headers()
            .get("www-authenticate")
            .map(|v| v.to_str().unwrap().to_string());
        let text = r.text().await.unwrap();
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}"))
        };
        (status, body, challenge)
    }
}

fn uuid_like() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default()
}

/// The error envelope's code.
pub fn code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or_default()
}

pub fn message(body: &Value) -> &str {
    body["error"]["message"].as_str().unwrap_or_default()
}
