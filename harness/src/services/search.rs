//! Landscape → `ppvnet_search_api::SearchApiConfig` for each builtin search API.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Context;
use ppvnet_search_api::{CaseOwner, DataConfig, SearchApiConfig};

use crate::landscape::Landscape;
use crate::scenario::model::{Api, ApiImplementation, PublicNetworkAccess};
use crate::services::launch::{Launch, Tasks};

/// The configuration of one API; `authority_host` is where the mock Entra answers and
/// `database` the file the API builds its case database in.
pub fn config(
    landscape: &Landscape,
    api: &Api,
    authority_host: &str,
    database: &Path,
) -> anyhow::Result<SearchApiConfig> {
    let s = &landscape.scenario;
    let app = s
        .apps
        .iter()
        .find(|a| a.name == api.app)
        .with_context(|| format!("api {}: unknown app {}", api.name, api.app))?;
    let identifier_uri = app
        .identifier_uris
        .first()
        .cloned()
        .unwrap_or_else(|| format!("api://{}", app.client_id));
    let mut config = SearchApiConfig::for_entra(
        authority_host,
        &s.tenant.id,
        &app.client_id,
        &identifier_uri,
    );
    let group_id = |name: &str| {
        s.groups
            .iter()
            .find(|g| g.name == name)
            .map(|g| g.id.clone())
    };
    // Tokens carry `groups` when the app asks for group claims; the directory answers for the
    // others, as a Graph lookup would.
    config.directory = s
        .users
        .iter()
        .map(|u| {
            (
                u.object_id.clone(),
                u.groups.iter().filter_map(|g| group_id(g)).collect(),
            )
        })
        .collect::<BTreeMap<_, _>>();
    let ApiImplementation::Search { cases, seed } = &api.implementation else {
        anyhow::bail!("api {} is not a builtin search API", api.name);
    };
    config.data = DataConfig {
        seed: *seed,
        count: u64::from(*cases),
        owners: s
            .users
            .iter()
            .filter_map(|u| {
                Some(CaseOwner {
                    object_id: u.object_id.clone(),
                    team_group_id: group_id(u.groups.first()?)?,
                })
            })
            .collect(),
    };
    config.database = Some(database.to_path_buf());
    config.public_network_access_enabled =
        api.public_network_access == PublicNetworkAccess::Enabled;
    config
        .check()
        .map_err(|e| anyhow::anyhow!("api {}: {e}", api.name))?;
    Ok(config)
}

/// The builtin case search API of `api` on its bound faces.
pub async fn start(
    run: Launch<'_>,
    entra: &crate::services::entra::Started,
    api: &Api,
    endpoints: Vec<ppvnet_common::Endpoint>,
    leaf: &crate::pki::Leaf,
    tasks: &mut Tasks,
) -> anyhow::Result<()> {
    let db_dir = run.state_dir("apis");
    ppvnet_common::private_fs::create_dir_all(&db_dir)?;
    let mut config = config(
        run.landscape,
        api,
        &entra.entry.authority_host,
        &db_dir.join(format!("{}.sqlite", api.name)),
    )?;
    // Case databases built by earlier runs are copied instead of built again.
    config.case_cache = run.opts.cache.as_ref().map(|c| c.join("cases"));
    // App Service reaches Entra over the public internet.
    let state =
        ppvnet_search_api::SearchApi::open(config, run.internet_client()?, run.clock.clone())
            .await
            .with_context(|| format!("api {}", api.name))?;
    let tls = run.pki.server_config(leaf)?;
    let name = api.name.clone();
    let shutdown = run.stopped();
    tasks.spawn(async move {
        ppvnet_search_api::run(state, endpoints, Some(tls), shutdown)
            .await
            .with_context(|| format!("api {name}"))
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contoso_prod_api_validates_for_cases_api_and_owns_cases_by_team() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/contoso.yaml");
        let l = crate::scenario::load(&path).unwrap();
        let api = l
            .scenario
            .apis
            .iter()
            .find(|a| a.name == "cases-api-prod")
            .unwrap();
        let c = config(&l, api, "https://127.0.0.1:8443", Path::new("/tmp/x.db")).unwrap();
        assert_eq!(
            c.audiences,
            vec![
                "5e9c218b-a6be-46b5-8f6a-07731e1a4a91",
                "api://contoso-cases"
            ]
        );
        assert!(!c.public_network_access_enabled);
        assert_eq!(c.data.count, 10_000);
        assert_eq!(c.data.owners.len(), 3);
        assert_eq!(
            c.directory["2276843a-7273-459b-b0e8-730c2b509e9b"],
            vec!["8f1da8ea-c517-4c5b-91b3-6952ece13786".to_string()]
        );
    }
}
