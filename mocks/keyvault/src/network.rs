//! Network rules: public network access, private endpoints and the vault firewall.
//!
//! Key Vault evaluates them after authenticating the caller (its 403 texts name the caller),
//! so a request without a token still gets the 401 challenge from anywhere.

use ppvnet_common::{Face, Peer};

use crate::auth::Caller;
use crate::config::{DefaultAction, PublicNetworkAccess, VaultConfig};
use crate::error::{KeyVaultError, VaultLabel};

/// Allows or refuses a request that arrived on `ingress` from `peer`.
pub fn check_network(
    vault: &VaultConfig,
    ingress: &Face,
    peer: &Peer,
    caller: &Caller,
) -> Result<(), KeyVaultError> {
    let label = || VaultLabel {
        name: vault.name.clone(),
        region: vault.region.clone(),
    };
    // A private endpoint connected to this vault bypasses both public access and firewall.
    if let Face::PrivateEndpoint(name) = ingress
        && vault
            .private_endpoints
            .iter()
            .any(|pe| pe.eq_ignore_ascii_case(name))
    {
        return Ok(());
    }
    if vault.public_network_access == PublicNetworkAccess::Disabled {
        return Err(KeyVaultError::ForbiddenByConnection {
            caller: Box::new(caller.clone()),
            vault: label(),
        });
    }
    let acls = &vault.network_acls;
    if acls.default_action == DefaultAction::Allow {
        return Ok(());
    }
    let by_ip = acls.ip_rules.iter().any(|net| net.contains(&peer.address));
    let by_subnet = peer
        .subnet
        .as_ref()
        .is_some_and(|s| acls.virtual_network_rules.contains(s));
    if by_ip || by_subnet {
        Ok(())
    } else {
        Err(KeyVaultError::ForbiddenByFirewall {
            client_address: peer.address.to_string(),
            caller: Box::new(caller.clone()),
            vault: label(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::NetworkAcls;
    use ppvnet_common::net::SubnetRef;

    fn peer(ip: &str, subnet: Option<(&str, &str)>) -> Peer {
        Peer {
            address: ip.parse().unwrap(),
            host: None,
            subnet: subnet.map(|(v, s)| SubnetRef {
                vnet: v.into(),
                subnet: s.into(),
            }),
        }
    }

    #[test]
    fn disabled_public_access_admits_only_the_vaults_private_endpoints() {
        let mut v = VaultConfig::new("kv-a", "t", "westus");
        v.public_network_access = PublicNetworkAccess::Disabled;
        v.private_endpoints = vec!["pe-kv".into()];
        let p = peer("203.0.113.7", None);
        let c = Caller::default();
        let e = check_network(&v, &Face::Public, &p, &c).unwrap_err();
        assert!(matches!(e, KeyVaultError::ForbiddenByConnection { .. }));
        assert!(check_network(&v, &Face::PrivateEndpoint("pe-kv".into()), &p, &c).is_ok());
        let other = Face::PrivateEndpoint("pe-other".into());
        assert!(check_network(&v, &other, &p, &c).is_err());
    }

    #[test]
    fn firewall_admits_ip_rules_and_subnets_and_names_the_client_address() {
        let mut v = VaultConfig::new("kv-a", "t", "westus");
        v.network_acls = NetworkAcls {
            default_action: DefaultAction::Deny,
            ip_rules: vec!["198.51.100.0/24".parse().unwrap()],
            virtual_network_rules: vec![SubnetRef {
                vnet: "vnet".into(),
                subnet: "pp".into(),
            }],
        };
        let c = Caller::default();
        assert!(check_network(&v, &Face::Public, &peer("198.51.100.9", None), &c).is_ok());
        assert!(
            check_network(
                &v,
                &Face::Public,
                &peer("10.0.0.4", Some(("vnet", "pp"))),
                &c
            )
            .is_ok()
        );
        let e = check_network(&v, &Face::Public, &peer("203.0.113.7", None), &c).unwrap_err();
        assert!(
            e.to_string().contains("Client address: 203.0.113.7\r\n"),
            "{e}"
        );
    }
}
