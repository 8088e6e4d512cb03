//! Metadata endpoints: OpenID discovery documents (v2 and v1), the signing key sets, MSAL's
//! instance discovery and the `userrealm` lookup MSAL makes before ROPC.
//!
//! Field sets follow the recorded documents (`tests/data/`, from panva/wellknown
//! `issuers/entra-{common,organizations}`; v1 from a published capture); URLs of endpoints
//! point at the address the client used, issuers are the real Entra ones.

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::error::EntraError;
use crate::request::{Tenant, TenantPath, error_envelope, json_reply, request_origin};
use crate::state::Entra;
use crate::tokens::{v1_issuer, v2_issuer};

const CLAIMS_V2: [&str; 19] = [
    "sub",
    "iss",
    "cloud_instance_name",
    "cloud_instance_host_name",
    "cloud_graph_host_name",
    "msgraph_host",
    "aud",
    "exp",
    "iat",
    "auth_time",
    "acr",
    "nonce",
    "preferred_username",
    "name",
    "tid",
    "ver",
    "at_hash",
    "c_hash",
    "email",
];

const CLAIMS_V1: [&str; 15] = [
    "sub",
    "iss",
    "cloud_instance_name",
    "cloud_graph_host_name",
    "aud",
    "exp",
    "iat",
    "auth_time",
    "acr",
    "amr",
    "nonce",
    "email",
    "given_name",
    "family_name",
    "nickname",
];

/// The public cloud's host aliases as instance discovery lists them (recorded reply).
const PUBLIC_CLOUD_ALIASES: [&str; 4] = [
    "login.microsoftonline.com",
    "login.windows.net",
    "login.microsoft.com",
    "sts.windows.net",
];

fn metadata_response(body: Value) -> Response {
    let mut response = json_reply(StatusCode::OK, &body, "max-age=86400, private");
    let h = response.headers_mut();
    h.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    h.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("GET, OPTIONS"),
    );
    response
}

fn error_response(entra: &Entra, headers: &HeaderMap, error: EntraError) -> Response {
    error_envelope(entra, headers, &error).into_response()
}

fn resolve(entra: &Entra, tenant: &str) -> Result<TenantPath, EntraError> {
    TenantPath::resolve(&entra.directory(), tenant).ok_or_else(|| {
        EntraError::DiscoveryTenantNotFound {
            tenant: tenant.to_string(),
        }
    })
}

/// What both OpenID documents are built from: the address the client used, the tenant
/// segment for endpoint URLs, the tenant issuers name, and the region (none on an alias).
struct OpenIdBase {
    origin: String,
    tenant: String,
    issuer_tenant: String,
    region: Value,
}

impl OpenIdBase {
    fn resolve(
        entra: &Entra,
        tenant: &str,
        uri: &Uri,
        headers: &HeaderMap,
    ) -> Result<Self, EntraError> {
        let path = resolve(entra, tenant)?;
        let dir = entra.directory();
        Ok(Self {
            origin: request_origin(entra, headers, uri),
            tenant: path.canonical(&dir).to_string(),
            issuer_tenant: path.issuer_tenant(&dir).to_string(),
            region: match path {
                TenantPath::Tenant => json!(dir.region_scope),
                TenantPath::Alias(_) => Value::Null,
            },
        })
    }
}

/// `GET /{tenant}/v2.0/.well-known/openid-configuration`
pub(crate) async fn openid_configuration_v2(
    State(entra): State<Entra>,
    Tenant(tenant): Tenant,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let OpenIdBase {
        origin,
        tenant: t,
        issuer_tenant,
        region,
    } = match OpenIdBase::resolve(&entra, &tenant, &uri, &headers) {
        Ok(base) => base,
        Err(e) => return error_response(&entra, &headers, e),
    };
    let issuer = v2_issuer(&issuer_tenant);
    metadata_response(json!({
        "token_endpoint": format!("{origin}/{t}/oauth2/v2.0/token"),
        "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
        "jwks_uri": format!("{origin}/{t}/discovery/v2.0/keys"),
        "response_modes_supported": ["query", "fragment", "form_post"],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
        "scopes_supported": ["openid", "profile", "email", "offline_access"],
        "issuer": issuer,
        "request_uri_parameter_supported": false,
        "userinfo_endpoint": "https://graph.microsoft.com/oidc/userinfo",
        "authorization_endpoint": format!("{origin}/{t}/oauth2/v2.0/authorize"),
        "device_authorization_endpoint": format!("{origin}/{t}/oauth2/v2.0/devicecode"),
        "http_logout_supported": true,
        "frontchannel_logout_supported": true,
        "end_session_endpoint": format!("{origin}/{t}/oauth2/v2.0/logout"),
        "claims_supported": CLAIMS_V2,
        "kerberos_endpoint": format!("{origin}/{t}/kerberos"),
        "tenant_region_scope": region,
        "cloud_instance_name": "microsoftonline.com",
        "cloud_graph_host_name": "graph.windows.net",
        "msgraph_host": "graph.microsoft.com",
        "rbac_url": "https://pas.windows.net",
    }))
}

/// `GET /{tenant}/.well-known/openid-configuration` (the v1 document, which APIs use to
/// validate v1 tokens).
pub(crate) async fn openid_configuration_v1(
    State(entra): State<Entra>,
    Tenant(tenant): Tenant,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let OpenIdBase {
        origin,
        tenant: t,
        issuer_tenant,
        region,
    } = match OpenIdBase::resolve(&entra, &tenant, &uri, &headers) {
        Ok(base) => base,
        Err(e) => return error_response(&entra, &headers, e),
    };
    let issuer = v1_issuer(&issuer_tenant);
    metadata_response(json!({
        "authorization_endpoint": format!("{origin}/{t}/oauth2/authorize"),
        "token_endpoint": format!("{origin}/{t}/oauth2/token"),
        // The 2017 capture lists post and private_key_jwt; Basic is accepted here as on v2.
        "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
        "jwks_uri": format!("{origin}/common/discovery/keys"),
        "response_modes_supported": ["query", "fragment", "form_post"],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "http_logout_supported": true,
        "frontchannel_logout_supported": true,
        "end_session_endpoint": format!("{origin}/{t}/oauth2/logout"),
        "response_types_supported": ["code", "id_token", "code id_token", "token id_token", "token"],
        "scopes_supported": ["openid"],
        "issuer": issuer,
        "claims_supported": CLAIMS_V1,
        "microsoft_multi_refresh_token": true,
        "check_session_iframe": format!("{origin}/{t}/oauth2/checksession"),
        "userinfo_endpoint": format!("{origin}/{t}/openid/userinfo"),
        "tenant_region_scope": region,
        "cloud_instance_name": "microsoftonline.com",
        "cloud_graph_host_name": "graph.windows.net",
    }))
}

/// `GET /{tenant}/discovery/v2.0/keys` and `/{tenant}/discovery/keys`.
pub(crate) async fn keys(
    State(entra): State<Entra>,
    Tenant(tenant): Tenant,
    headers: HeaderMap,
) -> Response {
    let path = match resolve(&entra, &tenant) {
        Ok(p) => p,
        Err(e) => return error_response(&entra, &headers, e),
    };
    let issuer = v2_issuer(path.issuer_tenant(&entra.directory()));
    metadata_response(entra.keys().jwks(&issuer))
}

#[derive(Deserialize)]
pub(crate) struct InstanceQuery {
    authorization_endpoint: Option<String>,
    #[serde(rename = "api-version")]
    api_version: Option<String>,
}

/// `GET /common/discovery/instance`: MSAL's authority validation. Only hosts of the public
/// cloud are valid instances, so clients that validate authorities work when the mock is
/// reached as `login.microsoftonline.com`.
pub(crate) async fn instance_discovery(
    State(entra): State<Entra>,
    Query(query): Query<InstanceQuery>,
    headers: HeaderMap,
) -> Response {
    let Some(endpoint) = query.authorization_endpoint else {
        return error_response(
            &entra,
            &headers,
            EntraError::MissingParameter {
                name: "authorization_endpoint".into(),
            },
        );
    };
    let parsed = url::Url::parse(&endpoint).ok();
    let host = parsed
        .as_ref()
        .and_then(|u| u.host_str())
        .map(str::to_ascii_lowercase);
    let Some(host) = host.filter(|h| PUBLIC_CLOUD_ALIASES.contains(&h.as_str())) else {
        return error_response(&entra, &headers, EntraError::UnknownInstance);
    };
    let tenant = parsed
        .as_ref()
        .and_then(|u| u.path_segments()?.next().map(str::to_string))
        .unwrap_or_else(|| "common".to_string());
    metadata_response(json!({
        "tenant_discovery_endpoint": format!("https://{host}/{tenant}/v2.0/.well-known/openid-configuration"),
        "api-version": query.api_version.unwrap_or_else(|| "1.1".to_string()),
        "metadata": [
            {"preferred_network": "login.microsoftonline.com", "preferred_cache": "login.windows.net",
             "aliases": PUBLIC_CLOUD_ALIASES},
            {"preferred_network": "login.partner.microsoftonline.cn", "preferred_cache": "login.partner.microsoftonline.cn",
             "aliases": ["login.partner.microsoftonline.cn", "login.chinacloudapi.cn"]},
            {"preferred_network": "login.microsoftonline.de", "preferred_cache": "login.microsoftonline.de",
             "aliases": ["login.microsoftonline.de"]},
            {"preferred_network": "login.microsoftonline.us", "preferred_cache": "login.microsoftonline.us",
             "aliases": ["login.microsoftonline.us", "login.usgovcloudapi.net"]},
            {"preferred_network": "login-us.microsoftonline.com", "preferred_cache": "login-us.microsoftonline.com",
             "aliases": ["login-us.microsoftonline.com"]},
        ],
    }))
}

/// `GET /common/userrealm/{upn}?api-version=1.0`: `Managed` for the tenant's domain, as
/// MSAL Python checks before ROPC (`AzureAD/microsoft-authentication-library-for-python`;
/// exercised in `tests/entra/official_clients.rs`).
pub(crate) async fn user_realm(
    State(entra): State<Entra>,
    Path((_tenant, upn)): Path<(String, String)>,
) -> Response {
    let dir = entra.directory();
    let domain = upn.rsplit_once('@').map(|(_, d)| d).unwrap_or_default();
    let managed = domain.eq_ignore_ascii_case(&dir.domain)
        || dir.users.iter().any(|u| u.upn.eq_ignore_ascii_case(&upn));
    let body = if managed {
        json!({
            "ver": "1.0",
            "account_type": "Managed",
            "domain_name": dir.domain,
            "cloud_instance_name": "microsoftonline.com",
            "cloud_audience_urn": "urn:federation:MicrosoftOnline",
        })
    } else {
        json!({"ver": "1.0", "account_type": "Unknown", "cloud_instance_name": "microsoftonline.com"})
    };
    metadata_response(body)
}
