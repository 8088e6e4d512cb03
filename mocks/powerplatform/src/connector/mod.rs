//! Custom connectors: import of a maker's definition and the backend request of one call.
//!
//! Module map:
//! - [`import`]: `apiDefinition.swagger.json` + `apiProperties.json` → [`Connector`], refused with
//!   the maker portal's wording (not OpenAPI 2.0, ≥ 1 MB, operation without `operationId`,
//!   unknown policy template, `script.csx`).
//! - [`params`]: a call's parameters checked against the operation (required, types, enums,
//!   `x-ms-visibility: internal` defaults, `x-ms-url-encoding`) → the backend request.
//! - [`policy`]: policy templates (`policyTemplateInstances`) applied to the request before the
//!   backend call and to the response after it.
//! - [`template`]: `@environmentVariables("x")`, `@connectionParameters('x')`, `@headers('x')`,
//!   `@queryParameters('x')` expressions in definitions and policies.
//!
//! Nothing here does I/O: the runtime ([`crate::runtime`]) sends the [`BackendRequest`] from the
//! environment's host and hands the [`BackendResponse`] back for the response policies.

mod variables;

use std::collections::BTreeMap;

/// An imported connector, as saved in one environment.
#[derive(Clone, Debug)]
pub struct Connector {
    /// The landscape's name of the connector (`contoso-cases`).
    pub name: String,
    /// `info.title`.
    pub title: String,
    /// `host` of the definition; may hold `@environmentVariables("x")`.
    pub host: String,
    /// `basePath` (`/` when absent).
    pub base_path: String,
    /// `https` when the definition lists it, else its first scheme.
    pub scheme: String,
    pub operations: Vec<Operation>,
    pub policies: Vec<PolicyInstance>,
    /// How connections authenticate (`connectionParameters`).
    pub auth: ConnectionAuth,
    /// Connection parameters other than the `token*` ones (`storageAccountName`), by name.
    pub connection_parameters: BTreeMap<String, ConnectionParameter>,
}

/// One operation of the definition.
#[derive(Clone, Debug)]
pub struct Operation {
    pub id: String,
    /// Upper-case HTTP method.
    pub method: String,
    /// The path template below `basePath` (`/cases/{id}`).
    pub path: String,
    pub summary: Option<String>,
    /// Path-level and operation-level parameters, `$ref`s to `#/parameters/..` resolved.
    pub parameters: Vec<Parameter>,
    /// `x-ms-trigger` is set: only Power Automate / Logic Apps can run it.
    pub trigger: bool,
}

/// Where a parameter goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParameterLocation {
    Path,
    Query,
    Header,
    Body,
    FormData,
}

/// One parameter of an operation.
#[derive(Clone, Debug)]
pub struct Parameter {
    pub name: String,
    pub location: ParameterLocation,
    pub required: bool,
    /// `string`, `integer`, `number`, `boolean`, `array`, `file`; `None` for body parameters.
    pub kind: Option<String>,
    pub format: Option<String>,
    pub enumeration: Vec<serde_json::Value>,
    pub default: Option<serde_json::Value>,
    pub minimum: Option<f64>,
    pub maximum: Option<f64>,
    /// `x-ms-visibility` (`important`, `advanced`, `internal`).
    pub visibility: Option<String>,
    /// `x-ms-url-encoding: double` escapes a path parameter twice.
    pub double_encoded: bool,
    /// The body parameter's JSON schema, `$ref`s resolved one level.
    pub schema: Option<serde_json::Value>,
}

/// A `policyTemplateInstances` entry.
#[derive(Clone, Debug)]
pub struct PolicyInstance {
    /// Lower-cased `templateId` (`setheader`).
    pub template: String,
    pub title: Option<String>,
    /// `x-ms-apimTemplate-operationName`; empty = every operation.
    pub operations: Vec<String>,
    /// The other parameters, by their full key (`x-ms-apimTemplateParameter.name`).
    pub parameters: BTreeMap<String, serde_json::Value>,
}

/// The connector's authentication, from `connectionParameters`.
#[derive(Clone, Debug)]
pub enum ConnectionAuth {
    /// No `token` parameter.
    None,
    OAuth(OAuthSettings),
}

/// `connectionParameters.token.oAuthSettings` for the `aad` identity provider.
#[derive(Clone, Debug)]
pub struct OAuthSettings {
    /// `aad` or `aadcertificate`.
    pub identity_provider: String,
    /// May hold `@environmentVariables("x")`.
    pub client_id: String,
    /// May hold `@environmentVariables("x")`; `None` when the definition has none.
    pub client_secret: Option<String>,
    pub scopes: Vec<String>,
    /// `Global` or `GlobalPerConnector` (as written).
    pub redirect_mode: String,
    pub redirect_url: Option<String>,
    /// `AzureActiveDirectoryResourceId` / `customParameters.resourceUri`.
    pub resource_uri: Option<String>,
    /// `customParameters.tenantId` (`common` in most definitions).
    pub tenant_id: Option<String>,
    /// `customParameters.loginUri`.
    pub login_uri: Option<String>,
    /// `enableOnbehalfOfLogin` / `IsOnbehalfofLoginSupported`.
    pub on_behalf_of: bool,
    /// `token:grantType` allows `client_credentials` (service principal connections).
    pub service_principal: bool,
}

/// A non-token connection parameter.
#[derive(Clone, Debug)]
pub struct ConnectionParameter {
    /// `string`, `securestring`, `bool`, `int`.
    pub kind: String,
    pub required: bool,
    pub display_name: Option<String>,
}

/// A call as the runtime received it, below `/apim/{connector}/{connectionId}`.
#[derive(Clone, Debug, Default)]
pub struct Call {
    /// Upper-case method from `x-ms-request-method`.
    pub method: String,
    /// The path below the connection (`/cases/search`), percent-encoded as received.
    pub path: String,
    /// The query string without `?` (may be empty), percent-encoded as received.
    pub query: String,
    /// The caller's headers meant for the backend (the runtime strips its own `x-ms-*` headers
    /// and `Authorization` before).
    pub headers: Vec<(String, String)>,
    pub body: Option<Vec<u8>>,
}

/// Values the expressions of a definition may refer to.
#[derive(Clone, Debug, Default)]
pub struct Bindings {
    /// Environment variables by schema name, Secret ones resolved (as taken at save time).
    pub environment_variables: BTreeMap<String, String>,
    /// The connection's parameters (`storageAccountName`).
    pub connection_parameters: BTreeMap<String, String>,
}

/// The request the runtime sends to the backend (before it adds the connection's token).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BackendRequest {
    pub operation_id: String,
    pub method: String,
    /// Absolute URL.
    pub url: String,
    /// In order; names as written.
    pub headers: Vec<(String, String)>,
    pub body: Option<Vec<u8>>,
}

/// The backend's answer, as the response policies see and change it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BackendResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// The response after the `Response` section's policies.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResponseOutcome {
    pub response: BackendResponse,
    /// `setconnectionstatustounauthenticated` matched: the connection must turn to error.
    pub connection_unauthenticated: bool,
}

/// What a maker's upload consists of.
#[derive(Clone, Debug)]
pub struct Upload {
    pub swagger: Vec<u8>,
    pub properties: Vec<u8>,
    /// `script.csx` shipped beside the definition (its size in bytes), or named by
    /// `properties.script`.
    pub script: Option<u64>,
}

/// Why a definition was refused at import (the maker portal's words where it has them).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ImportError {
    /// The definition is not OpenAPI 2.0, not JSON, too large, or otherwise unusable.
    #[error("{0}")]
    Definition(String),
    /// `apiProperties.json` is unusable (unknown policy template, bad connection parameters).
    #[error("{0}")]
    Properties(String),
    /// Custom code cannot run in ppvnet.
    #[error("{0}")]
    CustomCode(String),
}

/// Why a call was refused before anything was sent (HTTP status and message for the runtime's
/// error shape).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    /// No operation matches the method and path (404).
    #[error("{0}")]
    NoOperation(String),
    /// The operation is a trigger (400).
    #[error("{0}")]
    Trigger(String),
    /// A parameter is missing or invalid (400).
    #[error("{0}")]
    InvalidParameter(String),
    /// An expression refers to something that does not exist (400).
    #[error("{0}")]
    Unresolved(String),
}

impl CallError {
    pub fn status(&self) -> u16 {
        match self {
            CallError::NoOperation(_) => 404,
            _ => 400,
        }
    }
}

impl Connector {
    /// Imports a maker's upload under the landscape's connector name.
    pub fn import(name: &str, upload: &Upload) -> Result<Connector, ImportError> {
        let _ = (name, upload);
        todo!("helper: connector import")
    }

    /// The operation a call's method and path select.
    pub fn operation(&self, method: &str, path: &str) -> Option<&Operation> {
        let _ = (method, path);
        todo!("helper: operation matching")
    }

    /// Checks the call against its operation and builds the backend request: parameters, then
    /// the `Request` section's policies.
    pub fn prepare(&self, call: &Call, bindings: &Bindings) -> Result<BackendRequest, CallError> {
        let _ = (call, bindings);
        todo!("helper: request building")
    }

    /// Applies the `Response` section's policies to the backend's answer.
    pub fn on_response(
        &self,
        request: &BackendRequest,
        call: &Call,
        response: BackendResponse,
        bindings: &Bindings,
    ) -> ResponseOutcome {
        let _ = (request, call, bindings);
        let _ = response;
        todo!("helper: response policies")
    }

    /// Headers the `Failure` section's policies add to the runtime's error answer when the
    /// backend call fails (no response at all).
    pub fn on_failure(
        &self,
        request: &BackendRequest,
        call: &Call,
        bindings: &Bindings,
    ) -> Vec<(String, String)> {
        let _ = (request, call, bindings);
        todo!("helper: failure policies")
    }

    /// Replaces `@environmentVariables("x")` in a setting (host, client id, client secret).
    pub fn expand(setting: &str, bindings: &Bindings) -> Result<String, CallError> {
        let _ = (setting, bindings);
        todo!("helper: expressions")
    }
}
