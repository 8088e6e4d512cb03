//! Custom connectors: import of a maker's definition and the backend request of one call.
//!
//! Module map:
//! - [`import`]: `apiDefinition.swagger.json` + `apiProperties.json` → [`Connector`], refused
//!   when not OpenAPI 2.0, not JSON, ≥ 1 MB, an operation lacks an `operationId` or repeats one,
//!   a policy template is unknown, or custom code (`script.csx`) comes with it. `$ref`s to
//!   `#/parameters` and `#/definitions` are resolved, path-level parameters merged.
//! - [`params`]: operation matching (literal segments beat parameters) and a call's parameters
//!   checked against the operation (required, types, enums, bounds, `x-ms-visibility: internal`
//!   defaults, `x-ms-url-encoding`) → the backend request.
//! - [`policy`]: policy templates (`policyTemplateInstances`) applied in definition order to the
//!   request before the backend call (`Request`), to the response after it (`Response`), and to
//!   the error answer when the call fails (`Failure`); `policy::body` holds the JSON body ones.
//! - [`template`]: `@environmentVariables("x")`, `@connectionParameters('x')`, `@headers('x')`,
//!   `@queryParameters('x')`, `@body().a.b`, `@item()`, `@Request.OriginalHTTPMethod`.
//!
//! - `variables`: which environment variables a connector's settings refer to (checked by
//!   `ppvnet validate` against each environment the connector is saved in).
//!
//! Nothing here does I/O: the runtime ([`crate::runtime`]) sends the [`BackendRequest`] from the
//! environment's host and hands the [`BackendResponse`] back for the response policies.

pub mod import;
pub mod params;
pub mod policy;
pub mod template;
#[cfg(test)]
mod testing;
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
// Not boxed: the runtime matches on `OAuth(settings)` and a connector holds one of these.
#[allow(clippy::large_enum_variant)]
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
    /// The public URL calls to this connection arrive under
    /// (`https://{apim-host}/apim/{connector}/{connectionId}`): `updatenextlink` points next
    /// links there. `None` leaves them as the path below the connection (`/items?page=2`).
    pub connection_url: Option<String>,
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
    /// A response policy could not apply (an expression named something absent); `response`
    /// is then the backend's answer unchanged by any policy.
    pub policy_error: Option<CallError>,
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
    /// A policy template applies to the operation that ppvnet cannot run (`pollingtrigger`,
    /// `setvaluefromurl`) (501: the emulator's limit, not the caller's error).
    #[error("{0}")]
    Unsupported(String),
}

impl CallError {
    pub fn status(&self) -> u16 {
        match self {
            CallError::NoOperation(_) => 404,
            CallError::Unsupported(_) => 501,
            _ => 400,
        }
    }
}

impl Connector {
    /// Imports a maker's upload under the landscape's connector name.
    pub fn import(name: &str, upload: &Upload) -> Result<Connector, ImportError> {
        import::import(name, upload)
    }

    /// The operation a call's method and path select. The path is below basePath and
    /// percent-encoded; where several templates match, the one with a literal segment at the
    /// first place they differ wins (`/cases/search` over `/cases/{id}`).
    pub fn operation(&self, method: &str, path: &str) -> Option<&Operation> {
        let mut best: Option<(&Operation, Vec<bool>)> = None;
        for op in self
            .operations
            .iter()
            .filter(|op| op.method.eq_ignore_ascii_case(method))
        {
            let Some((_, rank)) = params::match_path(&op.path, path) else {
                continue;
            };
            if best.as_ref().is_none_or(|(_, r)| rank > *r) {
                best = Some((op, rank));
            }
        }
        best.map(|(op, _)| op)
    }

    /// Checks the call against its operation and builds the backend request: parameters, then
    /// the `Request` section's policies.
    pub fn prepare(&self, call: &Call, bindings: &Bindings) -> Result<BackendRequest, CallError> {
        let op = self.operation(&call.method, &call.path).ok_or_else(|| {
            CallError::NoOperation(format!(
                "The connector '{}' has no operation for {} {}.",
                self.name, call.method, call.path
            ))
        })?;
        if op.trigger {
            return Err(CallError::Trigger(format!(
                "The operation '{}' is a trigger: triggers run only in Power Automate or Logic \
                 Apps, not as a call from an app.",
                op.id
            )));
        }
        policy::check_supported(&self.policies, op)?;
        let captures = params::match_path(&op.path, &call.path)
            .map(|(c, _)| c)
            .unwrap_or_default();
        let mut out = params::build(op, call, self.static_base(bindings)?, &captures)?;
        policy::apply_request(
            &self.policies,
            op,
            &mut out,
            bindings,
            &call.method,
            &self.scheme,
        )?;
        Ok(BackendRequest {
            operation_id: op.id.clone(),
            url: out.url(),
            method: out.method,
            headers: out.headers,
            body: out.body,
        })
    }

    /// `scheme://host/basePath` without a trailing `/`, environment variables expanded.
    fn static_base(&self, bindings: &Bindings) -> Result<String, CallError> {
        let host = Connector::expand(&self.host, bindings)?;
        if host.is_empty() {
            return Err(CallError::Unresolved(format!(
                "The connector '{}' defines no host.",
                self.name
            )));
        }
        let base = format!("{}://{}{}", self.scheme, host, self.base_path);
        Ok(base.trim_end_matches('/').to_string())
    }

    /// The base the request went to: `dynamichosturl` evaluated again over the request as
    /// sent (its headers and query), else the definition's.
    fn request_base(
        &self,
        op: &Operation,
        request: &BackendRequest,
        call: &Call,
        bindings: &Bindings,
    ) -> Result<String, CallError> {
        let query = request
            .url
            .split_once('?')
            .map(|(_, q)| params::parse_query(q))
            .unwrap_or_default();
        let scope = template::Scope {
            bindings: Some(bindings),
            headers: &request.headers,
            query: &query,
            method: Some(&call.method),
            ..template::Scope::default()
        };
        let dynamic = self.policies.iter().rfind(|p| {
            p.template == "dynamichosturl"
                && (p.operations.is_empty() || p.operations.contains(&op.id))
        });
        match dynamic {
            Some(p) => policy::dynamic_base(p, &scope, &self.scheme),
            None => self.static_base(bindings),
        }
    }

    /// Applies the `Response` section's policies to the backend's answer.
    pub fn on_response(
        &self,
        request: &BackendRequest,
        call: &Call,
        response: BackendResponse,
        bindings: &Bindings,
    ) -> ResponseOutcome {
        let mut outcome = ResponseOutcome {
            response: response.clone(),
            connection_unauthenticated: false,
            policy_error: None,
        };
        let Some(op) = self
            .operations
            .iter()
            .find(|o| o.id == request.operation_id)
        else {
            return outcome;
        };
        let result = self
            .request_base(op, request, call, bindings)
            .and_then(|base| {
                let ctx = policy::ResponseContext {
                    bindings,
                    request,
                    original_method: &call.method,
                    base: &base,
                };
                policy::apply_response(&self.policies, op, &mut outcome.response, &ctx)
            });
        match result {
            Ok(unauthenticated) => outcome.connection_unauthenticated = unauthenticated,
            Err(e) => {
                outcome.response = response;
                outcome.policy_error = Some(e);
            }
        }
        outcome
    }

    /// Headers the `Failure` section's policies add to the runtime's error answer when the
    /// backend call fails (no response at all).
    pub fn on_failure(
        &self,
        request: &BackendRequest,
        call: &Call,
        bindings: &Bindings,
    ) -> Vec<(String, String)> {
        match self
            .operations
            .iter()
            .find(|o| o.id == request.operation_id)
        {
            Some(op) => {
                policy::failure_headers(&self.policies, op, request, bindings, &call.method)
            }
            None => Vec::new(),
        }
    }

    /// Replaces `@environmentVariables("x")` in a setting (host, client id, client secret).
    pub fn expand(setting: &str, bindings: &Bindings) -> Result<String, CallError> {
        template::expand_environment(setting, bindings)
    }
}
