//! `api-version`: required on every request, checked against the versions the resource provider
//! registers for the resource type.
//!
//! ARM answers a missing one with `MissingApiVersionParameter` before it looks at the token (a bare
//! `GET https://management.azure.com/` shows it; MicrosoftDocs/feedback#2279). An unsupported one
//! is `InvalidApiVersionParameter` for `Microsoft.Resources` (tenants, subscriptions, resource
//! groups, generic resources; Azure/azure-cli#28038, ansible-collections/azure#1739) and
//! `NoRegisteredProviderFound` for a resource provider's types (Azure/azure-cli#28496).
//!
//! The lists: `Microsoft.Resources` is the list ARM printed in ansible-collections/azure#1739
//! (2024), plus the 2024-11-01 the Azure CLI 2.9x uses; the providers' lists are the stable and
//! preview folders of azure-rest-api-specs `specification/{keyvault,network,privatedns,
//! powerplatform}/resource-manager` plus the versions azure-cli 2.91 sends (keyvault 2026-02-01,
//! network 2025-07-01, 2025-09-01 and 2026-01-01, private DNS 2018-09-01). Real ARM may register
//! more versions than these (UNVERIFIED completeness): a version missing here is refused with ARM's
//! error, which names the supported ones.

use crate::error::ArmError;
use crate::resources;

const RESOURCES: &[&str] = &[
    "2024-11-01",
    "2024-08-01",
    "2024-07-01",
    "2024-06-01-preview",
    "2024-03-01",
    "2023-07-01",
    "2023-07-01-preview",
    "2023-03-01-preview",
    "2022-12-01",
    "2022-11-01-preview",
    "2022-09-01",
    "2022-06-01",
    "2022-05-01",
    "2022-03-01-preview",
    "2022-01-01",
    "2021-04-01",
    "2021-01-01",
    "2020-10-01",
    "2020-09-01",
    "2020-08-01",
    "2020-07-01",
    "2020-06-01",
    "2020-05-01",
    "2020-01-01",
    "2019-11-01",
    "2019-10-01",
    "2019-09-01",
    "2019-08-01",
    "2019-07-01",
    "2019-06-01",
    "2019-05-10",
    "2019-05-01",
    "2019-03-01",
    "2018-11-01",
    "2018-09-01",
    "2018-08-01",
    "2018-07-01",
    "2018-06-01",
    "2018-05-01",
    "2018-02-01",
    "2018-01-01",
    "2017-12-01",
    "2017-08-01",
    "2017-06-01",
    "2017-05-10",
    "2017-05-01",
    "2017-03-01",
    "2016-09-01",
    "2016-07-01",
    "2016-06-01",
    "2016-02-01",
    "2015-11-01",
    "2015-01-01",
    "2014-04-01-preview",
    "2014-04-01",
    "2014-01-01",
    "2013-03-01",
    "2014-02-26",
    "2014-04",
];

const KEY_VAULT: &[&str] = &[
    "2015-06-01",
    "2016-10-01",
    "2018-02-14-preview",
    "2018-02-14",
    "2019-09-01",
    "2020-04-01-preview",
    "2021-04-01-preview",
    "2021-06-01-preview",
    "2021-10-01",
    "2021-11-01-preview",
    "2022-07-01",
    "2022-11-01",
    "2023-02-01",
    "2023-07-01",
    "2024-04-01-preview",
    "2024-11-01",
    "2024-12-01-preview",
    "2025-05-01",
    "2026-02-01",
];

const NETWORK: &[&str] = &[
    "2015-06-15",
    "2016-03-30",
    "2016-06-01",
    "2016-09-01",
    "2016-12-01",
    "2017-03-01",
    "2017-06-01",
    "2017-08-01",
    "2017-09-01",
    "2017-10-01",
    "2017-11-01",
    "2018-01-01",
    "2018-02-01",
    "2018-04-01",
    "2018-06-01",
    "2018-07-01",
    "2018-08-01",
    "2018-10-01",
    "2018-11-01",
    "2018-12-01",
    "2019-02-01",
    "2019-04-01",
    "2019-06-01",
    "2019-07-01",
    "2019-08-01",
    "2019-09-01",
    "2019-11-01",
    "2019-12-01",
    "2020-03-01",
    "2020-04-01",
    "2020-05-01",
    "2020-06-01",
    "2020-07-01",
    "2020-08-01",
    "2020-11-01",
    "2021-02-01",
    "2021-03-01",
    "2021-05-01",
    "2021-08-01",
    "2022-01-01",
    "2022-05-01",
    "2022-07-01",
    "2022-09-01",
    "2022-11-01",
    "2023-02-01",
    "2023-04-01",
    "2023-05-01",
    "2023-06-01",
    "2023-09-01",
    "2023-11-01",
    "2024-01-01",
    "2024-03-01",
    "2024-05-01",
    "2024-07-01",
    "2024-10-01",
    "2025-01-01",
    "2025-03-01",
    "2025-05-01",
    "2025-07-01",
    "2025-09-01",
    "2026-01-01",
];

const PRIVATE_DNS: &[&str] = &["2018-09-01", "2020-01-01", "2020-06-01", "2024-06-01"];

const POWER_PLATFORM: &[&str] = &["2020-10-30-preview"];

/// Which versions answer requests on `kind` (`None`: `Microsoft.Resources`).
pub fn supported(kind: Option<&str>) -> &'static [&'static str] {
    match kind {
        None => RESOURCES,
        Some(k) if k.eq_ignore_ascii_case(resources::VAULTS) => KEY_VAULT,
        Some(k) if k.eq_ignore_ascii_case(resources::PRIVATE_DNS_ZONES) => PRIVATE_DNS,
        Some(k) if k.eq_ignore_ascii_case(resources::ENTERPRISE_POLICIES) => POWER_PLATFORM,
        Some(_) => NETWORK,
    }
}

/// Checks the request's `api-version` for `kind` (`None`: `Microsoft.Resources`). `location`
/// and `type_name` go into `NoRegisteredProviderFound`'s text.
pub fn check(
    given: Option<&str>,
    kind: Option<&str>,
    location: &str,
    locations: &[String],
) -> Result<(), ArmError> {
    let Some(version) = given.filter(|v| !v.is_empty()) else {
        return Err(ArmError::MissingApiVersion);
    };
    let versions = supported(kind);
    if versions.iter().any(|v| v.eq_ignore_ascii_case(version)) {
        return Ok(());
    }
    Err(match kind {
        None => ArmError::InvalidApiVersion {
            version: version.to_string(),
            supported: versions.join(","),
        },
        Some(kind) => ArmError::NoRegisteredProvider {
            location: location.to_string(),
            version: version.to_string(),
            type_name: kind.rsplit('/').next().unwrap_or(kind).to_string(),
            supported: versions.join(", "),
            locations: locations.join(", "),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_versions_azure_cli_sends_are_supported() {
        assert!(check(Some("2022-12-01"), None, "", &[]).is_ok());
        assert!(check(Some("2024-11-01"), None, "", &[]).is_ok());
        assert!(check(Some("2015-11-01"), None, "", &[]).is_ok());
        assert!(check(Some("2026-02-01"), Some(resources::VAULTS), "", &[]).is_ok());
        assert!(
            check(
                Some("2025-07-01"),
                Some(resources::VIRTUAL_NETWORKS),
                "",
                &[]
            )
            .is_ok()
        );
        assert!(
            check(
                Some("2026-01-01"),
                Some(resources::PRIVATE_ENDPOINTS),
                "",
                &[]
            )
            .is_ok()
        );
    }

    #[test]
    fn missing_and_unknown_versions_are_refused_as_arm_does() {
        assert_eq!(check(None, None, "", &[]), Err(ArmError::MissingApiVersion));
        assert_eq!(
            check(Some(""), Some(resources::VAULTS), "", &[]),
            Err(ArmError::MissingApiVersion)
        );
        let Err(ArmError::InvalidApiVersion { version, .. }) =
            check(Some("2021-03-01"), None, "", &[])
        else {
            panic!("Microsoft.Resources refuses with InvalidApiVersionParameter")
        };
        assert_eq!(version, "2021-03-01");
        let err = check(
            Some("2099-01-01"),
            Some(resources::VAULTS),
            "westus",
            &["westus".to_string()],
        )
        .unwrap_err();
        assert!(
            err.message().starts_with("No registered resource provider found for location 'westus' and API version '2099-01-01' for type 'vaults'. The supported api-versions are '2015-06-01, "),
            "{}",
            err.message()
        );
    }
}
