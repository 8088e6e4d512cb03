//! Policy templates (`policyTemplateInstances`), applied in definition order to the operations
//! `x-ms-apimTemplate-operationName` lists (none listed = every operation).
//!
//! Parameter names are those of learn.microsoft.com/connectors/custom-connectors/policy-templates/
//! (setheader, setproperty, convertobjecttoarray, setconnectionstatustounauthenticated pages) and
//! of the instances in microsoft/PowerPlatformConnectors' (PPC) `apiProperties.json` files
//! (stringreplace, updatenextlink, routerequesttoendpoint, dynamichosturl, convertarraytoobject).
//!
//! Module map: [`body`] holds the JSON body transforms and `updatenextlink`.

mod body;

use serde_json::Value;

use super::params::{Outgoing, Pairs, parse_query};
use super::template::{self, Scope};
use super::{BackendRequest, BackendResponse, Bindings, CallError, Operation, PolicyInstance};

/// Template ids this emulator imports (lower case; definitions vary the case).
pub(crate) const KNOWN_TEMPLATES: [&str; 12] = [
    "setheader",
    "setqueryparameter",
    "routerequesttoendpoint",
    "dynamichosturl",
    "setproperty",
    "updatenextlink",
    "convertobjecttoarray",
    "convertarraytoobject",
    "stringreplace",
    "setconnectionstatustounauthenticated",
    "setvaluefromurl",
    "pollingtrigger",
];

/// Templates that import but cannot be applied here: a call to an operation they apply to is
/// refused rather than sent without them. `pollingtrigger` needs the Power Automate trigger
/// engine, `setvaluefromurl` a second backend call from inside the policy.
const UNSUPPORTED: [&str; 2] = ["pollingtrigger", "setvaluefromurl"];

const PARAMETER: &str = "x-ms-apimTemplateParameter.";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Section {
    Request,
    Response,
    Failure,
}

impl PolicyInstance {
    fn applies_to(&self, operation_id: &str) -> bool {
        self.operations.is_empty() || self.operations.iter().any(|o| o == operation_id)
    }

    /// `x-ms-apimTemplateParameter.{name}` as text (numbers such as `statusCode` too).
    fn text(&self, name: &str) -> Option<String> {
        self.parameters
            .get(&format!("{PARAMETER}{name}"))
            .map(template::as_text)
    }

    fn section(&self) -> Section {
        match self.template.as_str() {
            "updatenextlink" | "setconnectionstatustounauthenticated" => Section::Response,
            "setqueryparameter" | "dynamichosturl" | "routerequesttoendpoint" => Section::Request,
            _ => match self
                .parameters
                .get("x-ms-apimTemplate-policySection")
                .and_then(Value::as_str)
                .map(str::to_ascii_lowercase)
                .as_deref()
            {
                Some("response") => Section::Response,
                Some("failure") => Section::Failure,
                // The documented default of setheader; every PPC body template names it.
                _ => Section::Request,
            },
        }
    }

    fn label(&self) -> String {
        match &self.title {
            Some(title) => format!("policy '{title}' ({})", self.template),
            None => format!("policy {}", self.template),
        }
    }

    /// A parameter the template cannot work without.
    fn required(&self, name: &str) -> Result<String, CallError> {
        self.text(name).ok_or_else(|| {
            CallError::Unresolved(format!(
                "The {} has no parameter '{PARAMETER}{name}'.",
                self.label()
            ))
        })
    }
}

fn selected<'a>(
    policies: &'a [PolicyInstance],
    op: &'a Operation,
    section: Section,
) -> impl Iterator<Item = &'a PolicyInstance> {
    policies
        .iter()
        .filter(move |p| p.applies_to(&op.id) && p.section() == section)
}

/// Refuses a call that a template this runtime cannot apply would change.
pub(crate) fn check_supported(
    policies: &[PolicyInstance],
    op: &Operation,
) -> Result<(), CallError> {
    match policies
        .iter()
        .find(|p| p.applies_to(&op.id) && UNSUPPORTED.contains(&p.template.as_str()))
    {
        Some(p) => Err(CallError::Unsupported(format!(
            "The {} applies to the operation '{}' but is not supported by ppvnet; the call was \
             not sent.",
            p.label(),
            op.id
        ))),
        None => Ok(()),
    }
}

/// `override` (the default when absent), `skip` or `append`. Headers append to the existing
/// value comma-separated, the way one HTTP header carries several values; query parameters
/// append as a repeated `name=value` (UNVERIFIED: APIM's wire form of an appended value).
fn set_pair(
    list: &mut Vec<(String, String)>,
    name: &str,
    value: String,
    action: &str,
    header: bool,
) {
    let same = |n: &str| {
        if header {
            n.eq_ignore_ascii_case(name)
        } else {
            n == name
        }
    };
    let Some(first) = list.iter().position(|(n, _)| same(n)) else {
        list.push((name.to_string(), value));
        return;
    };
    match action.to_ascii_lowercase().as_str() {
        "skip" => {}
        "append" if header => {
            let existing = &mut list[first].1;
            existing.push_str(", ");
            existing.push_str(&value);
        }
        "append" => list.push((name.to_string(), value)),
        _ => {
            list[first].1 = value;
            let mut index = 0;
            list.retain(|(n, _)| {
                index += 1;
                index - 1 == first || !same(n)
            });
        }
    }
}

/// The `Request` section, after the parameters built `out`.
pub(crate) fn apply_request(
    policies: &[PolicyInstance],
    op: &Operation,
    out: &mut Outgoing,
    bindings: &Bindings,
    original_method: &str,
    scheme: &str,
) -> Result<(), CallError> {
    for p in selected(policies, op, Section::Request) {
        let parsed = out
            .body
            .as_deref()
            .and_then(|b| serde_json::from_slice::<Value>(b).ok());
        let scope = Scope {
            bindings: Some(bindings),
            headers: &out.headers,
            query: &out.query,
            body: parsed.as_ref(),
            item: None,
            method: Some(original_method),
        };
        match p.template.as_str() {
            "setheader" | "setqueryparameter" => {
                let name = p.required("name")?;
                let value = template::expand(&p.text("value").unwrap_or_default(), &scope)?;
                let action = p.text("existsAction").unwrap_or_default();
                let header = p.template == "setheader";
                let list = if header {
                    &mut out.headers
                } else {
                    &mut out.query
                };
                set_pair(list, &name, value, &action, header);
            }
            "routerequesttoendpoint" => {
                let routed = route(p, &out.path_values, &out.method, &scope)?;
                out.method = routed.method;
                out.path = routed.path;
                out.query.extend(routed.query);
            }
            "dynamichosturl" => {
                out.base = dynamic_base(p, &scope, scheme)?;
            }
            _ => {
                let had_body = out.body.is_some();
                if let Some(new) =
                    body::request_body(p, out.body.as_deref(), parsed.clone(), &scope)?
                {
                    out.body = Some(new);
                    let typed = out
                        .headers
                        .iter()
                        .any(|(n, _)| n.eq_ignore_ascii_case("content-type"));
                    if !had_body && !typed {
                        out.headers
                            .push(("Content-Type".to_string(), "application/json".to_string()));
                    }
                }
            }
        }
    }
    Ok(())
}

/// `dynamichosturl`: the template replaces scheme, host and basePath (PPC instances repeat
/// their basePath in it, e.g. IA-Connect's `https://@connectionParameters('orchestratorAddress')
/// /IAConnectRESTClient` with basePath `/IAConnectRESTClient`). A query parameter the template
/// reads is still sent (UNVERIFIED: whether APIM drops it).
pub(crate) fn dynamic_base(
    p: &PolicyInstance,
    scope: &Scope,
    scheme: &str,
) -> Result<String, CallError> {
    let url = template::expand(&p.required("urlTemplate")?, scope)?;
    let url = url.trim_end_matches('/');
    Ok(if url.contains("://") {
        url.to_string()
    } else {
        format!("{scheme}://{url}")
    })
}

/// Where `routerequesttoendpoint` sends the request.
struct Route {
    method: String,
    path: String,
    /// From a `?…` part of `newPath`, added after the call's query parameters.
    query: Pairs,
}

/// `routerequesttoendpoint`: `newPath` below basePath with the operation's `{param}`
/// placeholders (escaped as in the original path) and expressions (inserted as written); a
/// `?query` part adds query parameters. `httpMethod` may be `@Request.OriginalHTTPMethod`.
fn route(
    p: &PolicyInstance,
    path_values: &[(String, String)],
    method: &str,
    scope: &Scope,
) -> Result<Route, CallError> {
    let mut path = p.required("newPath")?;
    let mut from = 0;
    while let Some(open) = path[from..].find('{').map(|i| from + i) {
        let Some(close) = path[open..].find('}').map(|c| open + c) else {
            break;
        };
        let name = path[open + 1..close].to_string();
        if name.starts_with('@') {
            // `{@expr}`: an expression in braces, expanded below.
            from = close + 1;
            continue;
        }
        let value = path_values
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.clone())
            .ok_or_else(|| {
                CallError::Unresolved(format!(
                    "The {} uses '{{{name}}}', which is not a path parameter of the operation.",
                    p.label()
                ))
            })?;
        path.replace_range(open..=close, &value);
        from = open + value.len();
    }
    let path = template::expand(&path, scope)?;
    let (path, query) = path.split_once('?').unwrap_or((&path, ""));
    let method = match p.text("httpMethod").filter(|m| !m.is_empty()) {
        Some(m) => template::expand(&m, scope)?.to_ascii_uppercase(),
        None => method.to_string(),
    };
    let path = if path.starts_with('/') {
        path.to_string()
    } else {
        format!("/{path}")
    };
    Ok(Route {
        method,
        path,
        query: parse_query(query),
    })
}

/// What [`apply_response`] needs besides the response.
pub(crate) struct ResponseContext<'a> {
    pub bindings: &'a Bindings,
    pub request: &'a BackendRequest,
    pub original_method: &'a str,
    /// `scheme://host/basePath` the request went to, for `updatenextlink`.
    pub base: &'a str,
}

/// The `Response` section; `Ok(true)` when `setconnectionstatustounauthenticated` matched.
pub(crate) fn apply_response(
    policies: &[PolicyInstance],
    op: &Operation,
    response: &mut BackendResponse,
    ctx: &ResponseContext,
) -> Result<bool, CallError> {
    let query = request_query(ctx.request);
    let mut unauthenticated = false;
    for p in selected(policies, op, Section::Response) {
        match p.template.as_str() {
            "setheader" => {
                let scope = Scope {
                    bindings: Some(ctx.bindings),
                    headers: &response.headers,
                    query: &query,
                    method: Some(ctx.original_method),
                    ..Scope::default()
                };
                let name = p.required("name")?;
                let value = template::expand(&p.text("value").unwrap_or_default(), &scope)?;
                let action = p.text("existsAction").unwrap_or_default();
                set_pair(&mut response.headers, &name, value, &action, true);
            }
            "setconnectionstatustounauthenticated" => {
                let code = p.required("statusCode")?;
                unauthenticated |= code.trim() == response.status.to_string();
            }
            _ => body::apply_to_response(p, response, ctx, &query)?,
        }
    }
    Ok(unauthenticated)
}

fn request_query(request: &BackendRequest) -> Vec<(String, String)> {
    request
        .url
        .split_once('?')
        .map(|(_, q)| parse_query(q))
        .unwrap_or_default()
}

/// The `Failure` section's headers. A header whose expression cannot be resolved is left out:
/// the runtime is already answering with the backend failure, which matters more.
pub(crate) fn failure_headers(
    policies: &[PolicyInstance],
    op: &Operation,
    request: &BackendRequest,
    bindings: &Bindings,
    original_method: &str,
) -> Vec<(String, String)> {
    let query = request_query(request);
    let scope = Scope {
        bindings: Some(bindings),
        headers: &request.headers,
        query: &query,
        method: Some(original_method),
        ..Scope::default()
    };
    let mut headers = Vec::new();
    for p in selected(policies, op, Section::Failure).filter(|p| p.template == "setheader") {
        let (Some(name), Ok(value)) = (
            p.text("name"),
            template::expand(&p.text("value").unwrap_or_default(), &scope),
        ) else {
            continue;
        };
        let action = p.text("existsAction").unwrap_or_default();
        set_pair(&mut headers, &name, value, &action, true);
    }
    headers
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::testing::{call, items, pairs};
    use super::super::{BackendResponse, Connector};
    use super::*;

    fn setheader(section: &str, action: &str, value: &str) -> Value {
        json!([{"templateId": "setheader", "title": "h", "parameters": {
            "x-ms-apimTemplateParameter.name": "X-Api-Key",
            "x-ms-apimTemplateParameter.value": value,
            "x-ms-apimTemplateParameter.existsAction": action,
            "x-ms-apimTemplate-policySection": section
        }}])
    }

    fn get_item(
        c: &Connector,
        headers: &[(&str, &str)],
        bindings: &Bindings,
    ) -> Result<BackendRequest, CallError> {
        let mut call = call("GET", "/items/7", "");
        call.headers = pairs(headers);
        c.prepare(&call, bindings)
    }

    fn request(url: &str, headers: &[(&str, &str)]) -> BackendRequest {
        BackendRequest {
            operation_id: "GetItem".into(),
            method: "GET".into(),
            url: url.into(),
            headers: pairs(headers),
            body: None,
        }
    }

    fn key_bindings() -> Bindings {
        let mut b = Bindings::default();
        b.connection_parameters.insert("apiKey".into(), "k1".into());
        b
    }

    #[test]
    fn setheader_request_each_action() {
        let url = "https://api.contoso.com/v1/items/7";
        let b = key_bindings();
        let value = "@connectionParameters('apiKey')";
        let cases = [
            (
                "override",
                vec![("x-api-key", "old"), ("Accept", "*/*")],
                vec![("x-api-key", "k1"), ("Accept", "*/*")],
            ),
            (
                "override",
                vec![("Accept", "*/*")],
                vec![("Accept", "*/*"), ("X-Api-Key", "k1")],
            ),
            (
                "skip",
                vec![("x-api-key", "old")],
                vec![("x-api-key", "old")],
            ),
            ("skip", vec![], vec![("X-Api-Key", "k1")]),
            (
                "append",
                vec![("x-api-key", "old")],
                vec![("x-api-key", "old, k1")],
            ),
            ("", vec![("x-api-key", "old")], vec![("x-api-key", "k1")]),
        ];
        for (action, given, sent) in cases {
            let c = items(setheader("Request", action, value));
            assert_eq!(
                get_item(&c, &given, &b),
                Ok(request(url, &sent)),
                "{action} {given:?}"
            );
        }
        // Only the operations it names.
        let mut named = setheader("Request", "override", "v");
        named[0]["parameters"]["x-ms-apimTemplate-operationName"] = json!(["CreateItem"]);
        assert_eq!(get_item(&items(named), &[], &b), Ok(request(url, &[])));
    }

    #[test]
    fn setheader_response_each_action() {
        let b = key_bindings();
        let cases = [
            (
                "override",
                vec![("X-API-KEY", "a"), ("x-api-key", "b")],
                vec![("X-API-KEY", "k1")],
            ),
            ("skip", vec![("x-api-key", "a")], vec![("x-api-key", "a")]),
            (
                "append",
                vec![("x-api-key", "a")],
                vec![("x-api-key", "a, k1")],
            ),
            ("append", vec![], vec![("X-Api-Key", "k1")]),
        ];
        for (action, given, expected) in cases {
            let c = items(setheader(
                "Response",
                action,
                "@connectionParameters('apiKey')",
            ));
            let sent = get_item(&c, &[], &b).expect("prepared");
            assert_eq!(sent.headers, vec![], "a Response policy leaves the request");
            let response = BackendResponse {
                status: 200,
                headers: pairs(&given),
                body: b"{}".to_vec(),
            };
            let outcome = c.on_response(&sent, &call("GET", "/items/7", ""), response, &b);
            assert_eq!(outcome.response.headers, pairs(&expected), "{action}");
            assert_eq!(outcome.policy_error, None);
        }
    }

    #[test]
    fn setheader_failure_only_when_the_call_fails() {
        let b = key_bindings();
        let c = items(setheader(
            "Failure",
            "override",
            "@connectionParameters('apiKey')",
        ));
        let sent = get_item(&c, &[], &b).expect("prepared");
        assert_eq!(sent.headers, vec![]);
        let get = call("GET", "/items/7", "");
        assert_eq!(c.on_failure(&sent, &get, &b), pairs(&[("X-Api-Key", "k1")]));
        let response = BackendResponse {
            status: 500,
            headers: vec![],
            body: vec![],
        };
        assert_eq!(
            c.on_response(&sent, &get, response, &b).response.headers,
            vec![]
        );
        // Unresolvable: left out of the error answer.
        assert_eq!(c.on_failure(&sent, &get, &Bindings::default()), vec![]);
    }

    #[test]
    fn setqueryparameter_each_action() {
        let policy = |action: &str| {
            items(json!([{"templateId": "setqueryparameter", "parameters": {
                "x-ms-apimTemplateParameter.name": "id",
                "x-ms-apimTemplateParameter.value": "@headers('X-Item')",
                "x-ms-apimTemplateParameter.existsAction": action
            }}]))
        };
        let headers = [("X-Item", "a b")];
        let base = "https://api.contoso.com/v1/items/7";
        for action in ["override", "skip", "append"] {
            let sent = get_item(&policy(action), &headers, &Bindings::default()).map(|r| r.url);
            assert_eq!(
                sent,
                Ok(format!("{base}?id=a%20b")),
                "{action} on an absent parameter"
            );
        }
        // The same name twice: override replaces, skip keeps, append repeats.
        let twice = |action: &str| {
            let mut list = policy(action).policies;
            list.insert(0, policy("override").policies[0].clone());
            list[0]
                .parameters
                .insert(format!("{PARAMETER}value"), json!("1"));
            Connector {
                policies: list,
                ..items(json!([]))
            }
        };
        let url =
            |action: &str| get_item(&twice(action), &headers, &Bindings::default()).map(|r| r.url);
        assert_eq!(url("override"), Ok(format!("{base}?id=a%20b")));
        assert_eq!(url("skip"), Ok(format!("{base}?id=1")));
        assert_eq!(url("append"), Ok(format!("{base}?id=1&id=a%20b")));
    }

    #[test]
    fn routerequesttoendpoint_with_placeholders_method_and_query() {
        let c = items(
            json!([{"templateId": "routerequesttoendpoint", "parameters": {
                "x-ms-apimTemplate-operationName": ["GetItem"],
                "x-ms-apimTemplateParameter.newPath": "/v2/things/{id}/detail?kind=@headers('X-Kind')",
                "x-ms-apimTemplateParameter.httpMethod": "@Request.OriginalHTTPMethod"
            }}]),
        );
        let mut get = call("get", "/items/a%2Fb", "");
        get.headers = pairs(&[("X-Kind", "full")]);
        let sent = c.prepare(&get, &Bindings::default());
        assert_eq!(
            sent,
            Ok(BackendRequest {
                operation_id: "GetItem".into(),
                method: "GET".into(),
                url: "https://api.contoso.com/v1/v2/things/a%2Fb/detail?kind=full".into(),
                headers: pairs(&[("X-Kind", "full")]),
                body: None,
            })
        );
        let fixed = items(
            json!([{"templateId": "RouteRequestToEndpoint", "parameters": {
                "x-ms-apimTemplateParameter.newPath": "/{missing}",
                "x-ms-apimTemplateParameter.httpMethod": "PUT"
            }}]),
        );
        assert_eq!(
            fixed.prepare(&call("GET", "/items/1", ""), &Bindings::default()),
            Err(CallError::Unresolved(
                "The policy routerequesttoendpoint uses '{missing}', which is not a path parameter of the operation.".into()
            ))
        );
    }

    #[test]
    fn dynamichosturl_from_connection_headers_and_query() {
        let c = items(json!([{"templateId": "dynamichosturl", "parameters": {
            "x-ms-apimTemplateParameter.urlTemplate": "https://@connectionParameters('tenant').@headers('X-Region').contoso.com/api/"
        }}]));
        let mut b = Bindings::default();
        b.connection_parameters
            .insert("tenant".into(), "fabrikam".into());
        let sent = get_item(&c, &[("X-Region", "eu")], &b).map(|r| r.url);
        assert_eq!(
            sent,
            Ok("https://fabrikam.eu.contoso.com/api/items/7".into())
        );
        let from_query = items(json!([{"templateId": "dynamichosturl", "parameters": {
            "x-ms-apimTemplateParameter.urlTemplate": "@queryParameters('host')"
        }}]));
        let mut create = call("POST", "/items", "host=api.local");
        create.body = Some(b"{}".to_vec());
        // `host` is not a parameter of CreateItem, so the query does not carry it.
        assert!(matches!(
            from_query.prepare(&create, &b),
            Err(CallError::Unresolved(m)) if m.contains("'host'")
        ));
    }

    #[test]
    fn dynamichosturl_from_a_declared_query_parameter() {
        // As Enate's and SigmaConsoCR's `https://@queryParameters('HostUrl')/…` (PPC).
        let doc = super::super::testing::swagger(
            json!({"/a": {"get": {"operationId": "A", "parameters": [
                {"name": "HostUrl", "in": "query", "required": true, "type": "string"}
            ]}}}),
        );
        let props = super::super::testing::properties(
            json!([{"templateId": "dynamichosturl", "parameters": {
                "x-ms-apimTemplateParameter.urlTemplate": "https://@queryParameters('HostUrl')/tenant1/"
            }}]),
        );
        let c = super::super::testing::connector(&doc, &props);
        let sent = c.prepare(
            &call("GET", "/a", "HostUrl=erp.contoso.com"),
            &Bindings::default(),
        );
        assert_eq!(
            sent.map(|r| r.url),
            Ok("https://erp.contoso.com/tenant1/a?HostUrl=erp.contoso.com".into())
        );
    }

    #[test]
    fn setconnectionstatustounauthenticated_on_its_status_only() {
        let c = items(
            json!([{"templateId": "setconnectionstatustounauthenticated", "parameters": {
                "x-ms-apimTemplateParameter.statusCode": 401
            }}]),
        );
        let b = Bindings::default();
        let sent = get_item(&c, &[], &b).expect("prepared");
        let get = call("GET", "/items/7", "");
        let answer = |status| BackendResponse {
            status,
            headers: vec![],
            body: vec![],
        };
        assert!(
            c.on_response(&sent, &get, answer(401), &b)
                .connection_unauthenticated
        );
        assert!(
            !c.on_response(&sent, &get, answer(403), &b)
                .connection_unauthenticated
        );
    }

    #[test]
    fn unsupported_templates_refuse_the_calls_they_apply_to() {
        let c = items(
            json!([{"templateId": "setvaluefromurl", "title": "etag", "parameters": {
                "x-ms-apimTemplate-operationName": ["CreateItem"]
            }}]),
        );
        let mut create = call("POST", "/items", "");
        create.body = Some(b"{}".to_vec());
        let refused = c.prepare(&create, &Bindings::default());
        assert_eq!(
            refused,
            Err(CallError::Unsupported(
                "The policy 'etag' (setvaluefromurl) applies to the operation 'CreateItem' but is \
                 not supported by ppvnet; the call was not sent."
                    .into()
            ))
        );
        assert_eq!(refused.map_err(|e| e.status()), Err(501));
        assert!(get_item(&c, &[], &Bindings::default()).is_ok());
        let polling = items(json!([{"templateId": "PollingTrigger", "parameters": {}}]));
        assert!(matches!(
            get_item(&polling, &[], &Bindings::default()),
            Err(CallError::Unsupported(_))
        ));
    }

    #[test]
    fn exists_actions() {
        let mut h = pairs(&[("A", "1"), ("B", "2"), ("a", "3")]);
        set_pair(&mut h, "a", "9".into(), "override", true);
        assert_eq!(h, pairs(&[("A", "9"), ("B", "2")]));
        set_pair(&mut h, "b", "x".into(), "skip", true);
        assert_eq!(h, pairs(&[("A", "9"), ("B", "2")]));
        set_pair(&mut h, "B", "3".into(), "append", true);
        assert_eq!(h, pairs(&[("A", "9"), ("B", "2, 3")]));
        set_pair(&mut h, "C", "4".into(), "skip", true);
        assert_eq!(h, pairs(&[("A", "9"), ("B", "2, 3"), ("C", "4")]));
        let mut q = pairs(&[("x", "1")]);
        set_pair(&mut q, "x", "2".into(), "append", false);
        set_pair(&mut q, "X", "3".into(), "override", false);
        assert_eq!(q, pairs(&[("x", "1"), ("x", "2"), ("X", "3")]));
    }
}
