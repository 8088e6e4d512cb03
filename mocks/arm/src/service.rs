//! The state handle, the router and the request pipeline.
//!
//! Order of checks, as ARM answers: the path is routed; `api-version` (400, before the
//! token); the bearer token (401 with ARM's challenge); the subscription (404
//! `SubscriptionNotFound`); the caller's RBAC for the read at the requested scope (403
//! `AuthorizationFailed`); then the resource group and the resource (404). Lists answer
//! `{"value": [...], "nextLink"?}`, filtered to what the caller may read, paged with `$top`
//! and `$skiptoken`. Writes are refused: with `AuthorizationFailed` when the caller's roles do
//! not allow them (as ARM would), else 405 (this ARM serves the landscape read-only).

use std::future::Future;
use std::io;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use ppvnet_common::Endpoint;
use serde_json::{Value, json};

use crate::api_version;
use crate::auth::{ArmTokens, Caller};
use crate::config::ArmConfig;
use crate::error::ArmError;
use crate::rbac::Grants;
use crate::resources::{self, Resource};
use crate::route::{self, Target};

/// The largest page ARM returns without `$top` (UNVERIFIED for these types; the landscape's
/// lists are far shorter).
const DEFAULT_PAGE: usize = 1000;

/// How the service is reached (set by `ppvnet_common::serve` from whether it serves TLS).
pub use ppvnet_common::serve::Scheme;

/// The ARM service: cheap to clone.
#[derive(Clone)]
pub struct Arm {
    inner: Arc<Inner>,
}

struct Inner {
    config: ArmConfig,
    resources: Vec<Resource>,
    tokens: ArmTokens,
    locations: Vec<String>,
}

impl Arm {
    pub fn new(config: ArmConfig, tokens: ArmTokens) -> Self {
        let resources = resources::render_all(&config);
        let mut locations: Vec<String> = config
            .resource_groups
            .iter()
            .map(|g| g.location.clone())
            .chain(resources.iter().map(|r| r.location.clone()))
            .collect();
        locations.sort();
        locations.dedup();
        Self {
            inner: Arc::new(Inner {
                config,
                resources,
                tokens,
                locations,
            }),
        }
    }

    pub fn config(&self) -> &ArmConfig {
        &self.inner.config
    }

    /// Every top-level resource, rendered.
    pub fn resources(&self) -> &[Resource] {
        &self.inner.resources
    }
}

pub fn router(state: Arm) -> Router {
    Router::new().fallback(handle).with_state(state)
}

/// Serves ARM on `endpoints` (HTTPS when `tls` is set) until `shutdown` resolves.
pub async fn run(
    state: Arm,
    endpoints: Vec<Endpoint>,
    tls: Option<Arc<rustls::ServerConfig>>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    ppvnet_common::serve(endpoints, router(state), tls, shutdown).await
}

/// One request's query parameters.
#[derive(Default)]
struct Query {
    api_version: Option<String>,
    filter: Option<String>,
    top: Option<usize>,
    skip: usize,
}

impl Query {
    fn parse(raw: Option<&str>) -> Self {
        let mut q = Self::default();
        for (k, v) in url::form_urlencoded::parse(raw.unwrap_or_default().as_bytes()) {
            match k.to_ascii_lowercase().as_str() {
                "api-version" => q.api_version = Some(v.into_owned()),
                "$filter" => q.filter = Some(v.into_owned()),
                "$top" => q.top = v.parse().ok().filter(|n| *n > 0),
                "$skiptoken" => q.skip = v.parse().unwrap_or_default(),
                _ => {}
            }
        }
        q
    }
}

/// What a response needs to know about its request.
struct Call {
    method: Method,
    query: Query,
    /// `https://{host}{path}` for `nextLink`.
    base: String,
}

async fn handle(State(arm): State<Arm>, request: Request) -> Response {
    let scheme = request
        .extensions()
        .get::<Scheme>()
        .copied()
        .unwrap_or(Scheme::Https);
    let correlation = request
        .headers()
        .get("x-ms-correlation-request-id")
        .cloned()
        .unwrap_or_else(|| header_value(&uuid::Uuid::new_v4().to_string()));
    let mut response = answer(&arm, scheme, request).await;
    let headers = response.headers_mut();
    headers.insert(
        "x-ms-request-id",
        header_value(&uuid::Uuid::new_v4().to_string()),
    );
    headers.insert("x-ms-correlation-request-id", correlation);
    response
}

fn header_value(text: &str) -> HeaderValue {
    HeaderValue::from_str(text).unwrap_or_else(|_| HeaderValue::from_static(""))
}

async fn answer(arm: &Arm, scheme: Scheme, request: Request) -> Response {
    let uri = request.uri().clone();
    let Some(target) = route::parse(uri.path()) else {
        // UNVERIFIED: ARM's answer for a path it does not route.
        return ArmError::ChildNotFound {
            id: uri.path().to_string(),
        }
        .response("");
    };
    let tenant = match target.subscription() {
        Some(sub) if sub.eq_ignore_ascii_case(&arm.inner.config.subscription.id) => {
            arm.inner.config.tenant.id.clone()
        }
        _ => String::new(),
    };
    let host = request
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("management.azure.com")
        .to_string();
    let scheme = scheme.as_str();
    let call = Call {
        method: request.method().clone(),
        query: Query::parse(uri.query()),
        base: format!("{scheme}://{host}{}", uri.path()),
    };
    match respond(arm, &target, request.headers(), &call).await {
        Ok(response) => response,
        Err(e) => e.response(&tenant),
    }
}

async fn respond(
    arm: &Arm,
    target: &Target,
    headers: &HeaderMap,
    call: &Call,
) -> Result<Response, ArmError> {
    let location = target_location(arm, target);
    api_version::check(
        call.query.api_version.as_deref(),
        target.kind(),
        &location,
        &arm.inner.locations,
    )?;
    let caller = arm.inner.tokens.caller(headers).await?;
    if let Some(sub) = target.subscription()
        && !sub.eq_ignore_ascii_case(&arm.inner.config.subscription.id)
    {
        return Err(ArmError::SubscriptionNotFound {
            subscription: sub.to_string(),
        });
    }
    if call.method != Method::GET && call.method != Method::HEAD {
        return Err(refuse_write(arm, target, call, &caller));
    }
    let reader = Reader {
        arm,
        call,
        caller: &caller,
    };
    let body = reader.read(target)?;
    if call.method == Method::HEAD {
        // `az group exists` asks with HEAD: 204 when the group is there.
        return Ok(StatusCode::NO_CONTENT.into_response());
    }
    Ok((
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json; charset=utf-8")],
        body.to_string(),
    )
        .into_response())
}

/// The location an unsupported api-version's error names: the resource's, else its group's.
fn target_location(arm: &Arm, target: &Target) -> String {
    let c = &arm.inner.config;
    let group_location = |group: &str| {
        c.resource_groups
            .iter()
            .find(|g| g.name.eq_ignore_ascii_case(group))
            .map(|g| g.location.clone())
    };
    match target {
        Target::Item {
            group, kind, name, ..
        }
        | Target::Children {
            group, kind, name, ..
        }
        | Target::Child {
            group, kind, name, ..
        } => arm
            .find(group, kind, name)
            .map(|r| r.location.clone())
            .or_else(|| group_location(group))
            .unwrap_or_default(),
        Target::Collection {
            group: Some(group), ..
        } => group_location(group).unwrap_or_default(),
        _ => c
            .resource_groups
            .first()
            .map(|g| g.location.clone())
            .unwrap_or_default(),
    }
}

/// A write: ARM authorizes it first; a caller allowed to write learns that this ARM is
/// read-only.
fn refuse_write(arm: &Arm, target: &Target, call: &Call, caller: &Caller) -> ArmError {
    let c = &arm.inner.config;
    let (action, scope) = match target {
        Target::Group { group, .. } => (
            "Microsoft.Resources/subscriptions/resourceGroups/write".to_string(),
            c.group_id(group),
        ),
        Target::Item {
            group, kind, name, ..
        } => (format!("{kind}/write"), c.resource_id(group, kind, name)),
        Target::Child {
            group,
            kind,
            name,
            segment,
            child,
            ..
        } => (
            format!("{kind}/{segment}/write"),
            format!("{}/{segment}/{child}", c.resource_id(group, kind, name)),
        ),
        _ => (String::new(), String::new()),
    };
    if !action.is_empty()
        && !Grants::of(&c.role_assignments, &caller.object_id).allows(&action, &scope)
    {
        denied(caller, &action, &scope)
    } else {
        ArmError::ReadOnly {
            method: call.method.to_string(),
        }
    }
}

fn denied(caller: &Caller, action: &str, scope: &str) -> ArmError {
    ArmError::AuthorizationFailed {
        client: caller.client.clone(),
        object_id: caller.object_id.clone(),
        action: action.to_string(),
        scope: scope.to_string(),
    }
}

impl Arm {
    fn find(&self, group: &str, kind: &str, name: &str) -> Option<&Resource> {
        self.inner.resources.iter().find(|r| {
            r.group.eq_ignore_ascii_case(group)
                && r.kind.eq_ignore_ascii_case(kind)
                && r.name.eq_ignore_ascii_case(name)
        })
    }

    fn group_exists(&self, group: &str) -> bool {
        self.inner
            .config
            .resource_groups
            .iter()
            .any(|g| g.name.eq_ignore_ascii_case(group))
    }

    fn known_kind(kind: &str) -> bool {
        [
            resources::VAULTS,
            resources::VIRTUAL_NETWORKS,
            resources::NETWORK_SECURITY_GROUPS,
            resources::PRIVATE_ENDPOINTS,
            resources::PRIVATE_DNS_ZONES,
            resources::ENTERPRISE_POLICIES,
        ]
        .iter()
        .any(|k| k.eq_ignore_ascii_case(kind))
    }
}

/// Answers one authenticated read.
struct Reader<'a> {
    arm: &'a Arm,
    call: &'a Call,
    caller: &'a Caller,
}

impl Reader<'_> {
    fn caller(&self) -> &Caller {
        self.caller
    }

    fn grants(&self) -> Grants<'_> {
        Grants::of(
            &self.arm.inner.config.role_assignments,
            &self.caller().object_id,
        )
    }

    fn authorize(&self, action: &str, scope: &str) -> Result<(), ArmError> {
        if self.grants().allows(action, scope) {
            Ok(())
        } else {
            Err(denied(self.caller(), action, scope))
        }
    }

    fn read(&self, target: &Target) -> Result<Value, ArmError> {
        let c = &self.arm.inner.config;
        match target {
            Target::Tenants => Ok(json!({ "value": [tenant_body(c)] })),
            Target::Subscriptions => {
                let visible = self.grants().any_within(&c.subscription_id());
                let value: Vec<Value> = if visible {
                    vec![subscription_body(c)]
                } else {
                    Vec::new()
                };
                Ok(json!({ "value": value, "count": { "type": "Total", "value": value.len() } }))
            }
            Target::Subscription { .. } => {
                let scope = c.subscription_id();
                if !self.grants().any_within(&scope) {
                    return Err(denied(
                        self.caller(),
                        "Microsoft.Resources/subscriptions/read",
                        &scope,
                    ));
                }
                Ok(subscription_body(c))
            }
            Target::Groups { .. } => self.groups(),
            Target::Group { group, .. } => self.group(group),
            Target::Resources { group, .. } => self.generic(group.as_deref()),
            Target::Collection { group, kind, .. } => self.collection(group.as_deref(), kind),
            Target::Item {
                group, kind, name, ..
            } => self.item(group, kind, name).map(|r| r.body.clone()),
            Target::Children {
                group,
                kind,
                name,
                segment,
                ..
            } => self.children(group, kind, name, segment, None),
            Target::Child {
                group,
                kind,
                name,
                segment,
                child,
                ..
            } => self.children(group, kind, name, segment, Some(child)),
        }
    }

    /// A filtered list: everything when the caller may read at the list's scope, else the
    /// items it may read one by one; refused when it holds no role at or below the scope.
    fn list(
        &self,
        scope: &str,
        list_action: &str,
        items: Vec<(String, String, Value)>,
    ) -> Result<Value, ArmError> {
        let grants = self.grants();
        let all = grants.allows(list_action, scope);
        if !all && !grants.any_within(scope) {
            return Err(denied(self.caller(), list_action, scope));
        }
        let visible: Vec<Value> = items
            .into_iter()
            .filter(|(action, id, _)| all || grants.allows(action, id))
            .map(|(_, _, body)| body)
            .collect();
        Ok(self.page(visible))
    }

    fn page(&self, items: Vec<Value>) -> Value {
        let q = &self.call.query;
        let size = q.top.unwrap_or(DEFAULT_PAGE);
        let end = q.skip.saturating_add(size).min(items.len());
        let value: Vec<Value> = items
            .get(q.skip.min(items.len())..end)
            .map(<[Value]>::to_vec)
            .unwrap_or_default();
        let mut out = json!({ "value": value });
        if end < items.len() {
            let mut link = url::form_urlencoded::Serializer::new(String::new());
            link.append_pair("api-version", q.api_version.as_deref().unwrap_or_default());
            if let Some(filter) = &q.filter {
                link.append_pair("$filter", filter);
            }
            if let Some(top) = q.top {
                link.append_pair("$top", &top.to_string());
            }
            link.append_pair("$skiptoken", &end.to_string());
            out["nextLink"] = json!(format!("{}?{}", self.call.base, link.finish()));
        }
        out
    }

    fn groups(&self) -> Result<Value, ArmError> {
        let c = &self.arm.inner.config;
        let action = "Microsoft.Resources/subscriptions/resourceGroups/read";
        let items = c
            .resource_groups
            .iter()
            .map(|g| (action.to_string(), c.group_id(&g.name), group_body(c, g)))
            .collect();
        self.list(&c.subscription_id(), action, items)
    }

    fn group(&self, group: &str) -> Result<Value, ArmError> {
        let c = &self.arm.inner.config;
        self.authorize(
            "Microsoft.Resources/subscriptions/resourceGroups/read",
            &c.group_id(group),
        )?;
        c.resource_groups
            .iter()
            .find(|g| g.name.eq_ignore_ascii_case(group))
            .map(|g| group_body(c, g))
            .ok_or_else(|| ArmError::ResourceGroupNotFound {
                group: group.to_string(),
            })
    }

    fn check_group(&self, group: &str) -> Result<(), ArmError> {
        if self.arm.group_exists(group) {
            Ok(())
        } else {
            Err(ArmError::ResourceGroupNotFound {
                group: group.to_string(),
            })
        }
    }

    /// `GET .../resources`: every resource, without properties, with the `$filter` clauses
    /// the SDKs send (`resourceType eq '…'`, `name eq '…'`, joined by `and`).
    fn generic(&self, group: Option<&str>) -> Result<Value, ArmError> {
        let c = &self.arm.inner.config;
        let filter = ResourceFilter::parse(self.call.query.filter.as_deref())?;
        let (scope, list_action) = match group {
            Some(g) => (
                c.group_id(g),
                "Microsoft.Resources/subscriptions/resourceGroups/resources/read",
            ),
            None => (
                c.subscription_id(),
                "Microsoft.Resources/subscriptions/resources/read",
            ),
        };
        let grants = self.grants();
        if !grants.any_within(&scope) {
            return Err(denied(self.caller(), list_action, &scope));
        }
        if let Some(g) = group {
            self.check_group(g)?;
        }
        let items: Vec<Value> = self
            .arm
            .inner
            .resources
            .iter()
            .filter(|r| group.is_none_or(|g| r.group.eq_ignore_ascii_case(g)))
            .filter(|r| filter.keeps(r))
            .filter(|r| grants.allows(&format!("{}/read", r.kind), &r.id))
            .map(Resource::generic)
            .collect();
        Ok(self.page(items))
    }

    fn collection(&self, group: Option<&str>, kind: &str) -> Result<Value, ArmError> {
        let c = &self.arm.inner.config;
        if !Arm::known_kind(kind) {
            return Err(self.invalid_type(kind));
        }
        let scope = match group {
            Some(g) => c.group_id(g),
            None => c.subscription_id(),
        };
        let action = format!("{kind}/read");
        let items = self
            .arm
            .inner
            .resources
            .iter()
            .filter(|r| r.kind.eq_ignore_ascii_case(kind))
            .filter(|r| group.is_none_or(|g| r.group.eq_ignore_ascii_case(g)))
            .map(|r| (action.clone(), r.id.clone(), r.body.clone()))
            .collect();
        let listed = self.list(&scope, &action, items)?;
        if let Some(g) = group {
            self.check_group(g)?;
        }
        Ok(listed)
    }

    fn invalid_type(&self, kind: &str) -> ArmError {
        ArmError::InvalidResourceType {
            kind: kind.to_string(),
            version: self.call.query.api_version.clone().unwrap_or_default(),
        }
    }

    fn item(&self, group: &str, kind: &str, name: &str) -> Result<&Resource, ArmError> {
        if !Arm::known_kind(kind) {
            return Err(self.invalid_type(kind));
        }
        let c = &self.arm.inner.config;
        let id = c.resource_id(group, kind, name);
        self.authorize(&format!("{kind}/read"), &id)?;
        self.check_group(group)?;
        self.arm
            .find(group, kind, name)
            .ok_or_else(|| ArmError::ResourceNotFound {
                kind: kind.to_string(),
                name: name.to_string(),
                group: group.to_string(),
            })
    }

    fn children(
        &self,
        group: &str,
        kind: &str,
        name: &str,
        segment: &str,
        child: Option<&str>,
    ) -> Result<Value, ArmError> {
        let c = &self.arm.inner.config;
        let parent_id = c.resource_id(group, kind, name);
        let child_kind = format!("{kind}/{segment}");
        let action = format!("{child_kind}/read");
        let scope = match child {
            Some(child) => format!("{parent_id}/{segment}/{child}"),
            None => parent_id.clone(),
        };
        self.authorize(&action, &scope)?;
        self.check_group(group)?;
        let parent =
            self.arm
                .find(group, kind, name)
                .ok_or_else(|| ArmError::ResourceNotFound {
                    kind: kind.to_string(),
                    name: name.to_string(),
                    group: group.to_string(),
                })?;
        let Some(children) = parent.children(segment) else {
            return Err(self.invalid_type(&child_kind));
        };
        match child {
            None => Ok(self.page(children.iter().map(|c| c.body.clone()).collect())),
            Some(wanted) => children
                .iter()
                .find(|c| c.name.eq_ignore_ascii_case(wanted))
                .map(|c| c.body.clone())
                .ok_or(ArmError::ChildNotFound { id: scope }),
        }
    }
}

/// The `$filter` of a generic resource list.
struct ResourceFilter {
    kind: Option<String>,
    name: Option<String>,
}

impl ResourceFilter {
    fn parse(filter: Option<&str>) -> Result<Self, ArmError> {
        let mut out = Self {
            kind: None,
            name: None,
        };
        let Some(text) = filter.map(str::trim).filter(|f| !f.is_empty()) else {
            return Ok(out);
        };
        let invalid = || ArmError::InvalidFilter {
            filter: text.to_string(),
        };
        for clause in split_and(text) {
            let (field, value) = clause.split_once(" eq ").ok_or_else(invalid)?;
            let value = value
                .trim()
                .strip_prefix('\'')
                .and_then(|v| v.strip_suffix('\''))
                .ok_or_else(invalid)?
                .to_string();
            match field.trim().to_ascii_lowercase().as_str() {
                "resourcetype" => out.kind = Some(value),
                "name" => out.name = Some(value),
                _ => return Err(invalid()),
            }
        }
        Ok(out)
    }

    fn keeps(&self, r: &Resource) -> bool {
        self.kind
            .as_ref()
            .is_none_or(|k| k.eq_ignore_ascii_case(&r.kind))
            && self
                .name
                .as_ref()
                .is_none_or(|n| n.eq_ignore_ascii_case(&r.name))
    }
}

/// Splits on ` and ` (any case) outside quotes.
fn split_and(text: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut start = 0;
    let mut quoted = false;
    let lower = text.to_ascii_lowercase();
    let bytes = lower.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\'' {
            quoted = !quoted;
        } else if !quoted && lower[i..].starts_with(" and ") {
            parts.push(&text[start..i]);
            i += 5;
            start = i;
            continue;
        }
        i += 1;
    }
    parts.push(&text[start..]);
    parts
}

fn tenant_body(c: &ArmConfig) -> Value {
    json!({
        "id": format!("/tenants/{}", c.tenant.id),
        "tenantId": c.tenant.id,
        "countryCode": "US",
        "displayName": c.tenant.display_name,
        "domains": [c.tenant.default_domain],
        "tenantCategory": "Home",
        "defaultDomain": c.tenant.default_domain,
        "tenantType": "AAD"
    })
}

fn subscription_body(c: &ArmConfig) -> Value {
    json!({
        "id": c.subscription_id(),
        "authorizationSource": "RoleBased",
        "managedByTenants": [],
        "subscriptionId": c.subscription.id,
        "tenantId": c.tenant.id,
        "displayName": c.subscription.display_name,
        "state": "Enabled",
        "subscriptionPolicies": {
            "locationPlacementId": "Public_2014-09-01",
            "quotaId": "PayAsYouGo_2014-09-01",
            "spendingLimit": "Off"
        }
    })
}

fn group_body(c: &ArmConfig, g: &crate::config::ResourceGroupConfig) -> Value {
    json!({
        "id": c.group_id(&g.name),
        "name": g.name,
        "type": "Microsoft.Resources/resourceGroups",
        "location": g.location,
        "properties": { "provisioningState": "Succeeded" }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_split_on_and_outside_quotes() {
        assert_eq!(
            split_and("resourceType eq 'a' and name eq 'b and c'"),
            vec!["resourceType eq 'a'", "name eq 'b and c'"]
        );
        let f = ResourceFilter::parse(Some(
            "resourceType eq 'Microsoft.KeyVault/vaults' and name eq 'kv'",
        ))
        .unwrap();
        assert_eq!(f.kind.as_deref(), Some("Microsoft.KeyVault/vaults"));
        assert_eq!(f.name.as_deref(), Some("kv"));
        assert!(matches!(
            ResourceFilter::parse(Some("location eq 'westus'")),
            Err(ArmError::InvalidFilter { .. })
        ));
        assert!(matches!(
            ResourceFilter::parse(Some("name eq kv")),
            Err(ArmError::InvalidFilter { .. })
        ));
    }
}
