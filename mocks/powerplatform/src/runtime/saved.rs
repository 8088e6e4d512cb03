//! Connectors as saved in an environment: the imported definition plus the environment
//! variables it refers to, taken at save time.
//!
//! "The custom connector uses the value of the environment variables during save time… custom
//! connectors need to be resaved" (microsoft/powerplatform-developerhub:
//! docs/custom-connectors/environment-variables.md): a secret rotated in Key Vault reaches calls
//! only after a re-save. A save whose variables could not all be resolved still saves: the
//! connector stays listed with its errors, and calls fail naming them.

use std::sync::Arc;

use super::Outbound;
use super::config::{ConnectorConfig, EnvironmentConfig, RuntimeConfig};
use super::engine::ConnectorLogic;
use super::variables::{self, VariableError, VariableOutcome};
use crate::connector::{Bindings, Connector};

/// One connector saved in one environment.
#[derive(Clone, Debug)]
pub struct SavedConnector {
    pub name: String,
    pub environment: String,
    /// `None` when the definition was refused at import.
    pub connector: Option<Arc<Connector>>,
    pub import_error: Option<String>,
    /// The variables the definition refers to, as taken at this save.
    pub variables: Vec<VariableOutcome>,
    /// What the definition's expressions see: the resolved variables.
    pub bindings: Bindings,
    /// Unix seconds (run clock).
    pub saved_at: i64,
}

impl SavedConnector {
    /// Every problem of this save, one line each.
    pub fn errors(&self) -> Vec<String> {
        let mut errors: Vec<String> = self.import_error.iter().cloned().collect();
        errors.extend(self.unresolved().map(VariableError::message));
        errors
    }

    /// Variables that have no value.
    pub fn unresolved(&self) -> impl Iterator<Item = &VariableError> {
        self.variables.iter().filter_map(|v| v.value.as_ref().err())
    }
}

/// What saving needs from the service.
pub struct SaveContext<'a> {
    pub config: &'a RuntimeConfig,
    pub outbound: &'a dyn Outbound,
    pub logic: &'a dyn ConnectorLogic,
    pub now: i64,
}

/// Imports `connector` and takes the variables it refers to from `environment`.
pub async fn save(
    ctx: &SaveContext<'_>,
    environment: &EnvironmentConfig,
    connector: &ConnectorConfig,
) -> SavedConnector {
    let upload = &connector.upload;
    let (imported, import_error) = match ctx.logic.import(&connector.name, upload) {
        Ok(c) => (Some(Arc::new(c)), None),
        Err(e) => (
            None,
            Some(format!("The connector definition was refused: {e}")),
        ),
    };
    let names = variables::referenced_names(&[&upload.swagger, &upload.properties]);
    let outcomes = variables::resolve(ctx.config, ctx.outbound, ctx.now, environment, &names).await;
    let mut bindings = Bindings::default();
    for outcome in &outcomes {
        if let Ok(value) = &outcome.value {
            bindings
                .environment_variables
                .insert(outcome.schema_name.clone(), value.clone());
        }
    }
    for error in outcomes.iter().filter_map(|o| o.value.as_ref().err()) {
        tracing::warn!(
            environment = %environment.name,
            connector = %connector.name,
            error = %error,
            "connector saved with an unresolved environment variable"
        );
    }
    SavedConnector {
        name: connector.name.clone(),
        environment: environment.name.clone(),
        connector: imported,
        import_error,
        variables: outcomes,
        bindings,
        saved_at: ctx.now,
    }
}
