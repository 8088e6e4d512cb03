//! A call's parameters checked against its operation, and the backend request they make.
//!
//! Modelled on Power Fx's `HttpFunctionInvoker` (microsoft/Power-Fx:
//! src/libraries/Microsoft.PowerFx.Connectors/Execution/HttpFunctionInvoker.cs): the URL is
//! scheme + host + basePath + path with path parameters escaped once (`x-ms-url-encoding:
//! double` → twice), query parameters `name=escaped`, header parameters as headers, the body
//! parameter as JSON. Choices no source settles (all UNVERIFIED):
//! - Only declared query parameters reach the backend: Power Fx builds the query from the
//!   operation's parameters, so a real client never sends others, and APIM forwards only what
//!   the operation declares. Undeclared ones are dropped.
//! - Caller headers that are not parameters are forwarded after the declared ones (the runtime
//!   already removed its own `x-ms-*` and `Authorization`), except hop-by-hop headers.
//! - A default is sent only for `x-ms-visibility: internal` parameters (always, even over a
//!   caller's value, as the user never sees them); other defaults are UI pre-fills only, so an
//!   omitted optional parameter stays omitted.
//! - Array query parameters are passed one `name=value` per value received; their items are not
//!   type-checked.

use serde_json::Value;

use super::{Call, CallError, Operation, Parameter, ParameterLocation};

/// The request while parameters and policies shape it.
#[derive(Clone, Debug)]
pub(crate) struct Outgoing {
    pub method: String,
    /// `scheme://host/basePath` without a trailing `/` (replaced by `dynamichosturl`).
    pub base: String,
    /// The operation path with escaped parameter values, starting with `/`.
    pub path: String,
    /// Path parameters already escaped, for `routerequesttoendpoint`'s `{name}` placeholders.
    pub path_values: Vec<(String, String)>,
    /// Decoded query parameters, in order.
    pub query: Vec<(String, String)>,
    pub headers: Vec<(String, String)>,
    pub body: Option<Vec<u8>>,
}

impl Outgoing {
    pub fn url(&self) -> String {
        let mut url = format!("{}{}", self.base, self.path);
        for (i, (name, value)) in self.query.iter().enumerate() {
            url.push(if i == 0 && !url.contains('?') {
                '?'
            } else {
                '&'
            });
            url.push_str(name);
            url.push('=');
            url.push_str(&escape(value));
        }
        url
    }
}

/// Headers that describe the caller's hop to the runtime, not the backend call.
const HOP_HEADERS: [&str; 5] = [
    "host",
    "content-length",
    "connection",
    "transfer-encoding",
    "keep-alive",
];

/// Percent-escapes all but RFC 3986 unreserved characters (.NET `Uri.EscapeDataString`).
pub(crate) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// Decodes `%XX` (and `+` as space in query strings); a malformed escape stays as written.
pub(crate) fn unescape(text: &str, plus_is_space: bool) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push((h * 16 + l) as u8);
                    i += 3;
                    continue;
                }
                _ => out.push(b'%'),
            },
            b'+' if plus_is_space => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `a=1&b=x%20y` → decoded pairs in order.
pub(crate) fn parse_query(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| match pair.split_once('=') {
            Some((name, value)) => (unescape(name, true), unescape(value, true)),
            None => (unescape(pair, true), String::new()),
        })
        .collect()
}

fn segments(path: &str) -> Vec<&str> {
    let trimmed = path.trim_start_matches('/');
    if trimmed.is_empty() {
        Vec::new()
    } else {
        trimmed.split('/').collect()
    }
}

/// Name/value pairs in order (decoded path captures, query parameters).
pub(crate) type Pairs = Vec<(String, String)>;

/// Matches a received path (percent-encoded) against a template such as `/cases/{id}`.
/// Returns the decoded captures and, per segment, whether it was literal (the rank: at the
/// first difference a literal segment beats a parameter one).
pub(crate) fn match_path(template: &str, path: &str) -> Option<(Pairs, Vec<bool>)> {
    let wanted = segments(template);
    let got = segments(path);
    if wanted.len() != got.len() {
        return None;
    }
    let mut captures = Vec::new();
    let mut rank = Vec::new();
    for (pattern, raw) in wanted.iter().zip(got) {
        let value = unescape(raw, false);
        match (pattern.find('{'), pattern.find('}')) {
            (Some(open), Some(close)) if open < close => {
                let (prefix, suffix) = (&pattern[..open], &pattern[close + 1..]);
                let inner = value.strip_prefix(prefix)?.strip_suffix(suffix)?;
                if inner.is_empty() {
                    return None;
                }
                captures.push((pattern[open + 1..close].to_string(), inner.to_string()));
                rank.push(false);
            }
            _ if *pattern == value => rank.push(true),
            _ => return None,
        }
    }
    Some((captures, rank))
}

fn location_name(location: ParameterLocation) -> &'static str {
    match location {
        ParameterLocation::Path => "path",
        ParameterLocation::Query => "query",
        ParameterLocation::Header => "header",
        ParameterLocation::Body => "body",
        ParameterLocation::FormData => "formData",
    }
}

fn invalid(p: &Parameter, problem: &str, value: &str) -> CallError {
    CallError::InvalidParameter(format!(
        "The parameter '{}' ({}) {problem}; got '{value}'.",
        p.name,
        location_name(p.location)
    ))
}

fn missing(p: &Parameter) -> CallError {
    CallError::InvalidParameter(format!(
        "The required parameter '{}' ({}) is missing.",
        p.name,
        location_name(p.location)
    ))
}

/// Checks a text value against the parameter's type, enum and bounds.
pub(crate) fn check(p: &Parameter, value: &str) -> Result<(), CallError> {
    let number = match p.kind.as_deref() {
        Some("integer") => Some(
            value
                .parse::<i64>()
                .map_err(|_| invalid(p, "must be an integer", value))? as f64,
        ),
        Some("number") => Some(
            value
                .parse::<f64>()
                .ok()
                .filter(|n| n.is_finite())
                .ok_or_else(|| invalid(p, "must be a number", value))?,
        ),
        Some("boolean") if !matches!(value, "true" | "false" | "True" | "False") => {
            return Err(invalid(p, "must be true or false", value));
        }
        _ => None,
    };
    if !p.enumeration.is_empty() && !p.enumeration.iter().any(|e| enum_text(e) == value) {
        let allowed: Vec<String> = p.enumeration.iter().map(enum_text).collect();
        return Err(invalid(
            p,
            &format!("must be one of {}", allowed.join(", ")),
            value,
        ));
    }
    if let Some(n) = number {
        if let Some(min) = p.minimum.filter(|min| n < *min) {
            return Err(invalid(p, &format!("must be at least {min}"), value));
        }
        if let Some(max) = p.maximum.filter(|max| n > *max) {
            return Err(invalid(p, &format!("must be at most {max}"), value));
        }
    }
    Ok(())
}

fn enum_text(value: &Value) -> String {
    super::template::as_text(value)
}

/// The internal default that replaces whatever the caller sent.
fn internal_default(p: &Parameter) -> Option<String> {
    let internal = p
        .visibility
        .as_deref()
        .is_some_and(|v| v.eq_ignore_ascii_case("internal"));
    p.default
        .as_ref()
        .filter(|_| internal)
        .map(super::template::as_text)
}

/// Builds the request from the call's parameters (before policies).
pub(crate) fn build(
    op: &Operation,
    call: &Call,
    base: String,
    captures: &[(String, String)],
) -> Result<Outgoing, CallError> {
    let received = parse_query(&call.query);
    let mut out = Outgoing {
        method: op.method.clone(),
        base,
        path: op.path.clone(),
        path_values: Vec::new(),
        query: Vec::new(),
        headers: Vec::new(),
        body: None,
    };
    let mut declared_headers = Vec::new();
    for p in &op.parameters {
        match p.location {
            ParameterLocation::Path => path_parameter(p, captures, &mut out)?,
            ParameterLocation::Query => query_parameter(p, &received, &mut out)?,
            ParameterLocation::Header => {
                declared_headers.push(p.name.to_ascii_lowercase());
                let given = call
                    .headers
                    .iter()
                    .find(|(n, _)| n.eq_ignore_ascii_case(&p.name))
                    .map(|(_, v)| v.clone());
                if let Some(value) = single_value(p, given)? {
                    out.headers.push((p.name.clone(), value));
                }
            }
            ParameterLocation::Body => body_parameter(p, call, &mut out)?,
            ParameterLocation::FormData => form_parameter(p, call)?,
        }
    }
    forward_headers(op, call, &declared_headers, &mut out);
    if out.body.is_none()
        && op
            .parameters
            .iter()
            .any(|p| p.location == ParameterLocation::FormData)
    {
        out.body = call.body.clone();
    }
    Ok(out)
}

/// The value to send for a single-valued parameter, checked; `None` when optional and absent.
fn single_value(p: &Parameter, given: Option<String>) -> Result<Option<String>, CallError> {
    let value = internal_default(p).or(given);
    match value {
        Some(v) => {
            check(p, &v)?;
            Ok(Some(v))
        }
        None if p.required => Err(missing(p)),
        None => Ok(None),
    }
}

fn path_parameter(
    p: &Parameter,
    captures: &[(String, String)],
    out: &mut Outgoing,
) -> Result<(), CallError> {
    let given = captures
        .iter()
        .find(|(n, _)| *n == p.name)
        .map(|(_, v)| v.clone());
    let Some(value) = single_value(p, given)? else {
        return Ok(());
    };
    let mut escaped = escape(&value);
    if p.double_encoded {
        escaped = escape(&escaped);
    }
    out.path = out.path.replace(&format!("{{{}}}", p.name), &escaped);
    out.path_values.push((p.name.clone(), escaped));
    Ok(())
}

fn query_parameter(
    p: &Parameter,
    received: &[(String, String)],
    out: &mut Outgoing,
) -> Result<(), CallError> {
    let given: Vec<String> = received
        .iter()
        .filter(|(n, _)| *n == p.name)
        .map(|(_, v)| v.clone())
        .collect();
    if p.kind.as_deref() == Some("array") && internal_default(p).is_none() {
        if given.is_empty() && p.required {
            return Err(missing(p));
        }
        out.query
            .extend(given.into_iter().map(|v| (p.name.clone(), v)));
        return Ok(());
    }
    if given.len() > 1 {
        return Err(invalid(p, "must be given once", &given.join(",")));
    }
    if let Some(value) = single_value(p, given.into_iter().next())? {
        out.query.push((p.name.clone(), value));
    }
    Ok(())
}

fn is_json(content_type: Option<&str>) -> bool {
    content_type.is_none_or(|t| t.to_ascii_lowercase().contains("json"))
}

fn body_parameter(p: &Parameter, call: &Call, out: &mut Outgoing) -> Result<(), CallError> {
    let Some(body) = call.body.clone().filter(|b| !b.is_empty()) else {
        return if p.required { Err(missing(p)) } else { Ok(()) };
    };
    let content_type = call
        .headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("content-type"))
        .map(|(_, v)| v.as_str());
    let declared_type = p.schema.is_some() && is_json(content_type);
    if declared_type && serde_json::from_slice::<Value>(&body).is_err() {
        return Err(CallError::InvalidParameter(format!(
            "The parameter '{}' (body) must be JSON.",
            p.name
        )));
    }
    out.body = Some(body);
    Ok(())
}

/// formData parameters travel in the (urlencoded) body; it is checked here and sent as is.
fn form_parameter(p: &Parameter, call: &Call) -> Result<(), CallError> {
    let fields = call
        .body
        .as_deref()
        .map(|b| parse_query(&String::from_utf8_lossy(b)))
        .unwrap_or_default();
    let given = fields
        .into_iter()
        .find(|(n, _)| *n == p.name)
        .map(|(_, v)| v);
    if p.kind.as_deref() == Some("file") {
        return match given {
            None if p.required => Err(missing(p)),
            _ => Ok(()),
        };
    }
    single_value(p, given).map(|_| ())
}

/// Caller headers that are not parameters, then a body type when none was given.
fn forward_headers(op: &Operation, call: &Call, declared: &[String], out: &mut Outgoing) {
    for (name, value) in &call.headers {
        let lower = name.to_ascii_lowercase();
        if declared.contains(&lower) || HOP_HEADERS.contains(&lower.as_str()) {
            continue;
        }
        out.headers.push((name.clone(), value.clone()));
    }
    let has_type = out
        .headers
        .iter()
        .any(|(n, _)| n.eq_ignore_ascii_case("content-type"));
    if out.body.is_some() && !has_type {
        let form = op
            .parameters
            .iter()
            .any(|p| p.location == ParameterLocation::FormData);
        let kind = if form {
            "application/x-www-form-urlencoded"
        } else {
            "application/json"
        };
        out.headers
            .push(("Content-Type".to_string(), kind.to_string()));
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::testing::{call, connector, pairs, properties, swagger};
    use super::super::{BackendRequest, Bindings, Connector};
    use super::*;

    /// `GET /search` with typed query parameters, `GET /files/{path}` double-encoded, a header
    /// parameter, a required JSON body on `POST /files`, a trigger.
    fn files() -> Connector {
        let doc = swagger(json!({
            "/search": {"get": {"operationId": "Search", "parameters": [
                {"name": "q", "in": "query", "required": true, "type": "string"},
                {"name": "top", "in": "query", "type": "integer", "minimum": 1, "maximum": 100, "default": 25},
                {"name": "score", "in": "query", "type": "number", "minimum": 0.5},
                {"name": "exact", "in": "query", "type": "boolean"},
                {"name": "status", "in": "query", "type": "string", "enum": ["new", "active"]},
                {"name": "api-version", "in": "query", "required": true, "type": "string",
                 "x-ms-visibility": "internal", "default": "2024-01-01"},
                {"name": "X-Tenant", "in": "header", "required": true, "type": "string"}
            ]}},
            "/files/{path}": {"get": {"operationId": "GetFile", "parameters": [
                {"name": "path", "in": "path", "required": true, "type": "string", "x-ms-url-encoding": "double"}
            ]}},
            "/files": {"post": {"operationId": "CreateFile", "parameters": [
                {"name": "body", "in": "body", "required": true, "schema": {"type": "object"}}
            ]}},
            "/hooks": {"post": {"operationId": "OnNewFile", "x-ms-trigger": "single"}}
        }));
        connector(&doc, &properties(json!([])))
    }

    fn search(query: &str) -> Result<BackendRequest, CallError> {
        let mut c = call("GET", "/search", query);
        c.headers = pairs(&[("x-tenant", "t1")]);
        files().prepare(&c, &Bindings::default())
    }

    fn refused(query: &str) -> String {
        match search(query) {
            Ok(r) => panic!("sent {}", r.url),
            Err(e) => {
                assert_eq!(e.status(), 400);
                e.to_string()
            }
        }
    }

    #[test]
    fn a_valid_call_sends_declared_parameters_and_the_internal_default() {
        let mut c = call(
            "GET",
            "/search",
            "q=a%2Bb&api-version=1999&unknown=1&top=10&exact=true",
        );
        c.headers = pairs(&[
            ("x-tenant", "t1"),
            ("Accept", "application/json"),
            ("Host", "runtime"),
        ]);
        assert_eq!(
            files().prepare(&c, &Bindings::default()),
            Ok(BackendRequest {
                operation_id: "Search".into(),
                method: "GET".into(),
                url: "https://api.contoso.com/v1/search?q=a%2Bb&top=10&exact=true&api-version=2024-01-01".into(),
                headers: pairs(&[("X-Tenant", "t1"), ("Accept", "application/json")]),
                body: None,
            })
        );
    }

    #[test]
    fn required_parameters() {
        assert_eq!(
            refused(""),
            "The required parameter 'q' (query) is missing."
        );
        let no_header = files().prepare(&call("GET", "/search", "q=x"), &Bindings::default());
        assert_eq!(
            no_header.map_err(|e| e.to_string()),
            Err("The required parameter 'X-Tenant' (header) is missing.".into())
        );
        let no_body = files().prepare(&call("POST", "/files", ""), &Bindings::default());
        assert_eq!(
            no_body.map_err(|e| e.to_string()),
            Err("The required parameter 'body' (body) is missing.".into())
        );
    }

    #[test]
    fn types_are_parsed_from_the_query_text() {
        assert_eq!(
            refused("q=x&top=ten"),
            "The parameter 'top' (query) must be an integer; got 'ten'."
        );
        assert_eq!(
            refused("q=x&top=2.5"),
            "The parameter 'top' (query) must be an integer; got '2.5'."
        );
        assert_eq!(
            refused("q=x&score=high"),
            "The parameter 'score' (query) must be a number; got 'high'."
        );
        assert_eq!(
            refused("q=x&exact=yes"),
            "The parameter 'exact' (query) must be true or false; got 'yes'."
        );
        assert_eq!(
            refused("q=x&q=y"),
            "The parameter 'q' (query) must be given once; got 'x,y'."
        );
    }

    #[test]
    fn enums_and_bounds() {
        assert_eq!(
            refused("q=x&status=closed"),
            "The parameter 'status' (query) must be one of new, active; got 'closed'."
        );
        assert_eq!(
            refused("q=x&top=0"),
            "The parameter 'top' (query) must be at least 1; got '0'."
        );
        assert_eq!(
            refused("q=x&top=101"),
            "The parameter 'top' (query) must be at most 100; got '101'."
        );
        assert_eq!(
            refused("q=x&score=0.25"),
            "The parameter 'score' (query) must be at least 0.5; got '0.25'."
        );
        assert!(search("q=x&top=100&status=active&score=0.5").is_ok());
    }

    #[test]
    fn a_non_internal_default_is_not_sent() {
        let url = search("q=x").map(|r| r.url);
        assert_eq!(
            url,
            Ok("https://api.contoso.com/v1/search?q=x&api-version=2024-01-01".into())
        );
    }

    #[test]
    fn double_encoding_escapes_twice() {
        let r = files().prepare(&call("GET", "/files/a%2Fb%20c", ""), &Bindings::default());
        assert_eq!(
            r.map(|r| r.url),
            Ok("https://api.contoso.com/v1/files/a%252Fb%2520c".into())
        );
    }

    #[test]
    fn json_bodies_are_checked_and_typed() {
        let mut c = call("POST", "/files", "");
        c.body = Some(b"{\"name\":\"a\"}".to_vec());
        let sent = files().prepare(&c, &Bindings::default());
        assert_eq!(
            sent,
            Ok(BackendRequest {
                operation_id: "CreateFile".into(),
                method: "POST".into(),
                url: "https://api.contoso.com/v1/files".into(),
                headers: pairs(&[("Content-Type", "application/json")]),
                body: Some(b"{\"name\":\"a\"}".to_vec()),
            })
        );
        c.body = Some(b"name=a".to_vec());
        assert_eq!(
            files()
                .prepare(&c, &Bindings::default())
                .map_err(|e| e.to_string()),
            Err("The parameter 'body' (body) must be JSON.".into())
        );
    }

    #[test]
    fn triggers_and_unknown_operations_are_refused() {
        let trigger = files().prepare(&call("POST", "/hooks", ""), &Bindings::default());
        assert_eq!(
            trigger,
            Err(CallError::Trigger(
                "The operation 'OnNewFile' is a trigger: triggers run only in Power Automate or \
                 Logic Apps, not as a call from an app."
                    .into()
            ))
        );
        let none = files().prepare(&call("DELETE", "/files/x", ""), &Bindings::default());
        assert_eq!(none.as_ref().map_err(CallError::status), Err(404));
        assert_eq!(
            none.map_err(|e| e.to_string()),
            Err("The connector 'test' has no operation for DELETE /files/x.".into())
        );
    }

    #[test]
    fn host_from_an_environment_variable() {
        let mut doc = swagger(json!({"/a": {"get": {"operationId": "A"}}}));
        doc["host"] = json!("@environmentVariables(\"cr_Host\")");
        let c = connector(&doc, &properties(json!([])));
        let mut bindings = Bindings::default();
        bindings
            .environment_variables
            .insert("cr_Host".into(), "api.fabrikam.com".into());
        assert_eq!(
            c.prepare(&call("get", "/a", ""), &bindings).map(|r| r.url),
            Ok("https://api.fabrikam.com/v1/a".into())
        );
        assert!(matches!(
            c.prepare(&call("GET", "/a", ""), &Bindings::default()),
            Err(CallError::Unresolved(m)) if m.contains("'cr_Host'")
        ));
    }

    #[test]
    fn escaping_keeps_only_unreserved() {
        assert_eq!(escape("a b/c%d~é"), "a%20b%2Fc%25d~%C3%A9");
        assert_eq!(escape(&escape("a/b")), "a%252Fb");
    }

    #[test]
    fn unescaping_query_and_malformed() {
        assert_eq!(unescape("a+b%20c%2", true), "a b c%2");
        assert_eq!(unescape("a+b", false), "a+b");
        assert_eq!(
            parse_query("q=x%26y&flag&top=5"),
            vec![
                ("q".to_string(), "x&y".to_string()),
                ("flag".to_string(), String::new()),
                ("top".to_string(), "5".to_string())
            ]
        );
    }

    #[test]
    fn path_matching_ranks_literals() {
        let (captures, rank) = match_path("/cases/{id}", "/cases/CAS%2D1").expect("matches");
        assert_eq!(captures, vec![("id".to_string(), "CAS-1".to_string())]);
        assert_eq!(rank, vec![true, false]);
        assert_eq!(
            match_path("/cases/search", "/cases/search").map(|m| m.1),
            Some(vec![true, true])
        );
        assert!(match_path("/cases/{id}", "/cases/").is_none());
        assert!(match_path("/cases/{id}", "/cases/a/b").is_none());
        assert_eq!(match_path("/", "/").map(|m| m.1), Some(vec![]));
        let (captures, _) = match_path("/files/{name}.json", "/files/a.json").expect("matches");
        assert_eq!(captures, vec![("name".to_string(), "a".to_string())]);
    }
}
