//! What the harness tells the Power Platform service: the tenant, the environments with their
//! variables, the connectors saved in each, Dataverse's credential, and the runtime's limits.
//! Outbound traffic goes through an [`Outbound`] the harness implements over its fabric.

use std::time::Duration;

use crate::connector::Upload;

/// Application id of the Dataverse service principal, which reads Secret environment variables
/// from Key Vault (MicrosoftDocs/powerapps-docs:
/// powerapps-docs/maker/data-platform/EnvironmentVariables-azure-key-vault-secrets.md).
pub const DATAVERSE_APP_ID: &str = "00000007-0000-0000-c000-000000000000";
/// Audience of the tokens Power Apps sends to the connector runtime (microsoft/Power-Fx:
/// src/libraries/Microsoft.PowerFx.Connectors/PowerPlatformConnectorClient.cs).
pub const APIHUB_AUDIENCE: &str = "https://apihub.azure.com";
/// Application id of the Power Apps client that signs users in and calls `/invoke`
/// (UNVERIFIED: the first-party "PowerApps" app id as seen in sign-in logs). The case-search app
/// ([`super::app`]) signs users in as this client.
pub const POWER_APPS_CLIENT_ID: &str = "4e291c71-d680-4d0e-9640-0a3358e31177";

/// The whole service.
#[derive(Clone, Debug)]
pub struct RuntimeConfig {
    pub tenant_id: String,
    pub tenant_domain: String,
    /// Entra's authority host as the runtime reaches it (`https://login.microsoftonline.com`, or
    /// the loopback address), no trailing slash.
    pub authority_host: String,
    /// The public URL of this service (consent redirects come back here).
    pub public_url: String,
    /// Where users open the case-search app, by host name (`https://unitedstates-001.azure-apim.net`);
    /// [`super::app::sign_in_redirect_uri`] and [`super::app::signed_out_uri`] below it are reply
    /// URLs of the Power Apps client.
    pub app_url: String,
    pub environments: Vec<EnvironmentConfig>,
    pub connectors: Vec<ConnectorConfig>,
    /// The credential Dataverse uses for client-credentials tokens (a per-run secret the
    /// harness registers in the mock Entra; Dataverse's real credential is Microsoft's).
    pub dataverse: ClientCredential,
    pub limits: Limits,
}

/// One Power Platform environment.
#[derive(Clone, Debug)]
pub struct EnvironmentConfig {
    pub name: String,
    /// Environment id (a GUID), as in `x-ms-client-environment-id`.
    pub id: String,
    pub variables: Vec<VariableConfig>,
}

/// An environment variable's definition and current value.
#[derive(Clone, Debug)]
pub struct VariableConfig {
    pub schema_name: String,
    pub kind: VariableKind,
    /// Text, or a Key Vault secret reference for [`VariableKind::Secret`].
    pub value: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VariableKind {
    String,
    Number,
    Boolean,
    Json,
    Secret,
}

/// A connector definition and the environments it is saved in.
#[derive(Clone, Debug)]
pub struct ConnectorConfig {
    pub name: String,
    pub environments: Vec<String>,
    pub upload: Upload,
}

#[derive(Clone, Debug)]
pub struct ClientCredential {
    pub client_id: String,
    pub client_secret: String,
}

/// The runtime's limits (microsoft/powerplatform-developerhub: docs/custom-connectors/faq.md; the
/// 120 s timeout from MicrosoftDocs/power-automate-docs `articles/limits-and-config.md`).
#[derive(Clone, Debug)]
pub struct Limits {
    /// A synchronous outbound request: 120 s.
    pub call_timeout: Duration,
    /// Calls per minute per connection: 500.
    pub calls_per_minute: u32,
    /// Request content length: 3,182,218 bytes.
    pub max_request_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            call_timeout: Duration::from_secs(120),
            calls_per_minute: 500,
            max_request_bytes: 3_182_218,
        }
    }
}

/// Where the runtime's traffic leaves from. The harness implements it over its fabric: the
/// client of a host sends from that host's address and resolves names by its DNS view, so
/// NSGs, peerings, private DNS and flow logs apply to connector traffic.
pub trait Outbound: Send + Sync + 'static {
    /// The host an environment's runtime sends from now: `pp-<env>-<active region>`.
    fn active_host(&self, environment: &str) -> Result<String, String>;
    /// An HTTP client whose connections originate from `host` (`internet` for Microsoft's
    /// cloud-side calls such as the token exchange).
    fn client(&self, host: &str) -> Result<reqwest::Client, String>;

    /// Told after each backend request sent from `host` (answered or not), with the call's
    /// correlation id and when the attempt started, so the network's flow log can name the
    /// calls each connection carried. Does nothing by default.
    fn sent(&self, host: &str, url: &str, correlation_id: &str, started: std::time::SystemTime) {
        let _ = (host, url, correlation_id, started);
    }
}
