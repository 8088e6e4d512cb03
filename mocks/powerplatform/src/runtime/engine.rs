//! The seam between the runtime and the connector logic.
//!
//! The runtime never interprets a definition itself: importing, building the backend request and
//! the response/failure policies are [`Connector`]'s methods. They are reached through
//! [`ConnectorLogic`] so that the runtime's own behaviour (tokens, limits, egress, failover) can
//! be exercised with a small fake definition in tests; the service uses [`StandardLogic`].

use crate::connector::{
    BackendRequest, BackendResponse, Bindings, Call, CallError, Connector, ImportError,
    ResponseOutcome, Upload,
};

/// What the runtime needs from a connector definition.
pub trait ConnectorLogic: Send + Sync + 'static {
    fn import(&self, name: &str, upload: &Upload) -> Result<Connector, ImportError>;
    fn prepare(
        &self,
        connector: &Connector,
        call: &Call,
        bindings: &Bindings,
    ) -> Result<BackendRequest, CallError>;
    fn on_response(
        &self,
        connector: &Connector,
        request: &BackendRequest,
        call: &Call,
        response: BackendResponse,
        bindings: &Bindings,
    ) -> ResponseOutcome;
    fn on_failure(
        &self,
        connector: &Connector,
        request: &BackendRequest,
        call: &Call,
        bindings: &Bindings,
    ) -> Vec<(String, String)>;
    fn expand(&self, setting: &str, bindings: &Bindings) -> Result<String, CallError>;
}

/// [`Connector`]'s own implementation: what `ppvnet up` runs.
#[derive(Clone, Copy, Debug, Default)]
pub struct StandardLogic;

impl ConnectorLogic for StandardLogic {
    fn import(&self, name: &str, upload: &Upload) -> Result<Connector, ImportError> {
        Connector::import(name, upload)
    }

    fn prepare(
        &self,
        connector: &Connector,
        call: &Call,
        bindings: &Bindings,
    ) -> Result<BackendRequest, CallError> {
        connector.prepare(call, bindings)
    }

    fn on_response(
        &self,
        connector: &Connector,
        request: &BackendRequest,
        call: &Call,
        response: BackendResponse,
        bindings: &Bindings,
    ) -> ResponseOutcome {
        connector.on_response(request, call, response, bindings)
    }

    fn on_failure(
        &self,
        connector: &Connector,
        request: &BackendRequest,
        call: &Call,
        bindings: &Bindings,
    ) -> Vec<(String, String)> {
        connector.on_failure(request, call, bindings)
    }

    fn expand(&self, setting: &str, bindings: &Bindings) -> Result<String, CallError> {
        Connector::expand(setting, bindings)
    }
}
