//! The landscape's APIs on their faces: the builtin case search API in-process
//! ([`crate::services::search`]), a team's own program ([`crate::services::program`]) or image
//! ([`crate::services::container`]).

use std::collections::BTreeMap;

use anyhow::Context;

use crate::scenario::model::{ApiImplementation, PublicNetworkAccess};
use crate::services::launch::{BoundFaces, Launch, Tasks, bind_faces};

/// The started APIs: their ready-file entries, and the stubs tests drive.
pub struct Started {
    pub entries: BTreeMap<String, crate::ready::ApiEntry>,
    pub stubs: BTreeMap<String, crate::services::stub::Stub>,
}

/// Each API of the landscape on its public face and its private endpoints: the builtin search
/// API in-process, a team's own program handed its faces
/// ([`crate::services::program::start`]), or a stub ([`crate::services::stub::start`]).
pub async fn start(
    run: Launch<'_>,
    entra: &crate::services::entra::Started,
    tasks: &mut Tasks,
) -> anyhow::Result<Started> {
    let Launch {
        landscape, fabric, ..
    } = run;
    let s = &landscape.scenario;
    let mut entries = BTreeMap::new();
    let mut stubs = BTreeMap::new();
    for api in &s.apis {
        let service = landscape
            .service(&api.name)
            .with_context(|| format!("api {} has no service entry", api.name))?;
        let app = s
            .apps
            .iter()
            .find(|a| a.name == api.app)
            .with_context(|| format!("api {}: unknown app {}", api.name, api.app))?;
        // A program gets every face it serves as a listener; App Service's 403 page on a
        // disabled public face is served here.
        let public_enabled = api.public_network_access == PublicNetworkAccess::Enabled;
        let program = matches!(api.implementation, ApiImplementation::Command { .. });
        let BoundFaces {
            endpoints,
            public_url,
            private_urls,
            addresses,
        } = bind_faces(fabric, service, |face| {
            program && (public_enabled || *face != crate::fabric::Face::Public)
        })?;
        let ips: Vec<_> = addresses.iter().map(|a| a.ip()).collect();
        let leaf = run
            .pki
            .leaf(&[service.host_name.clone(), "localhost".into()], &ips)?;
        match &api.implementation {
            ApiImplementation::Search { .. } => {
                crate::services::search::start(run, entra, api, endpoints, &leaf, tasks).await?;
            }
            ApiImplementation::Command { argv } => {
                let program = crate::services::program::Program { api, app, argv };
                crate::services::program::start(run, entra, program, endpoints, &leaf, tasks)?;
            }
            ApiImplementation::Container {
                image,
                port,
                command,
                env,
            } => {
                let c = crate::services::container::ContainerApi {
                    api,
                    app,
                    image,
                    port: *port,
                    command: command.as_deref(),
                    env,
                };
                crate::services::container::start_api(run, entra, c, endpoints, &leaf, tasks)
                    .await?;
            }
            ApiImplementation::Stub { mappings } => {
                let stub = crate::services::stub::start(
                    run,
                    api,
                    mappings.as_deref(),
                    endpoints,
                    &leaf,
                    tasks,
                )
                .await?;
                stubs.insert(api.name.clone(), stub);
            }
        }
        entries.insert(
            api.name.clone(),
            crate::ready::ApiEntry {
                url: public_url,
                app_id_uri: app.identifier_uris.first().cloned().unwrap_or_default(),
                client_id: app.client_id.clone(),
                public_network_access: format!("{:?}", api.public_network_access),
                host_name: service.host_name.clone(),
                private_endpoints: private_urls,
            },
        );
    }
    Ok(Started { entries, stubs })
}
