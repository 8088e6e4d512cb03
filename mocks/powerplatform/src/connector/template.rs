//! Template expressions of definitions and policy templates.
//!
//! Recognised (function names case-insensitively, as microsoft/PowerPlatformConnectors (PPC)
//! definitions spell them both `@connectionParameters` and `@ConnectionParameters`):
//! `@environmentVariables("x")` / `@environmentVariables('x')`, `@connectionParameters('x')` and
//! `@connectionParameters('x','default')`, `@headers('x')` (also `@header`), `@queryParameters('x')`,
//! `@body()` / `@item()` with an optional `.a.b` or `['a']` path, `@Request.OriginalHTTPMethod`.
//! `{@…}` is the same expression inside a longer text (learn.microsoft.com/training/modules/
//! policy-templates-custom-connectors/2-expressions-runtime: "you can use the braces ({})
//! notation"). Any other `@` is literal text: header values, e-mail addresses and keys such as
//! `@odata.nextLink` carry it.

use serde_json::Value;

use super::{Bindings, CallError};

/// Where `@body()` / `@item()` paths start.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Root {
    Body,
    Item,
}

/// One parsed expression.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Expr {
    Environment(String),
    Connection(String, Option<String>),
    Header(String, Option<String>),
    Query(String, Option<String>),
    Path(Root, Vec<String>),
    OriginalMethod,
}

/// What an expression may read; a reference to something absent is [`CallError::Unresolved`].
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Scope<'a> {
    pub bindings: Option<&'a Bindings>,
    pub headers: &'a [(String, String)],
    pub query: &'a [(String, String)],
    pub body: Option<&'a Value>,
    pub item: Option<&'a Value>,
    pub method: Option<&'a str>,
}

/// Replaces every expression of `text` by its value as text.
pub(crate) fn expand(text: &str, scope: &Scope) -> Result<String, CallError> {
    expand_filtered(text, scope, false)
}

/// Replaces only `@environmentVariables(..)`: settings (host, client id, secret) hold no other
/// expression, and a literal `@connectionParameters` there must stay visible.
pub(crate) fn expand_environment(text: &str, bindings: &Bindings) -> Result<String, CallError> {
    let scope = Scope {
        bindings: Some(bindings),
        ..Scope::default()
    };
    expand_filtered(text, &scope, true)
}

fn expand_filtered(text: &str, scope: &Scope, environment_only: bool) -> Result<String, CallError> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('@') {
        let braced = at > 0 && rest[..at].ends_with('{');
        let Some((expr, used)) = parse_at(&rest[at + 1..]) else {
            out.push_str(&rest[..=at]);
            rest = &rest[at + 1..];
            continue;
        };
        if environment_only && !matches!(expr, Expr::Environment(_)) {
            out.push_str(&rest[..=at]);
            rest = &rest[at + 1..];
            continue;
        }
        let after = &rest[at + 1 + used..];
        let closes = braced && after.starts_with('}');
        let before_end = if closes { at - 1 } else { at };
        out.push_str(&rest[..before_end]);
        out.push_str(&as_text(&resolve(&expr, scope)?));
        rest = if closes { &after[1..] } else { after };
    }
    out.push_str(rest);
    Ok(out)
}

/// A whole-text `@body().x` keeps its JSON type (setproperty copies objects and numbers);
/// anything else is the expanded text.
pub(crate) fn evaluate(text: &str, scope: &Scope) -> Result<Value, CallError> {
    if let Some(expr) = whole_expression(text) {
        return resolve(&expr, scope);
    }
    expand(text, scope).map(Value::String)
}

/// `text` is exactly one expression (optionally in braces).
pub(crate) fn whole_expression(text: &str) -> Option<Expr> {
    let trimmed = text.trim();
    let inner = trimmed
        .strip_prefix('{')
        .and_then(|t| t.strip_suffix('}'))
        .unwrap_or(trimmed);
    // PPC definitions also write `body()` without the `@` (4 of 54 setproperty instances).
    let (expr, used) = match inner.strip_prefix('@') {
        Some(after) => parse_at(after)?,
        None if inner.to_ascii_lowercase().starts_with("body()") => parse_at(inner)?,
        None => return None,
    };
    let consumed = inner.len() - inner.trim_start_matches('@').len() + used;
    (consumed == inner.len()).then_some(expr)
}

/// A `@body().a.b` / `@item().x` path template.
pub(crate) fn path_expression(text: &str) -> Option<(Root, Vec<String>)> {
    match whole_expression(text)? {
        Expr::Path(root, path) => Some((root, path)),
        _ => None,
    }
}

/// `a.b`, `['@odata.type']` or `a['b'].c` below a parent.
pub(crate) fn sub_path(text: &str) -> Vec<String> {
    let mut segments = Vec::new();
    let mut rest = text.trim();
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix("['")
            && let Some(end) = after.find("']")
        {
            segments.push(after[..end].to_string());
            rest = after[end + 2..].trim_start_matches('.');
            continue;
        }
        let end = rest.find(['.', '[']).unwrap_or(rest.len());
        if end == 0 {
            // A lone `[` or `.` that opens nothing: keep it as part of the name.
            segments.push(rest.to_string());
            break;
        }
        segments.push(rest[..end].to_string());
        rest = rest[end..].trim_start_matches('.');
    }
    segments
}

/// Parses an expression starting right after its `@`; returns it and the bytes it used.
fn parse_at(s: &str) -> Option<(Expr, usize)> {
    const METHOD: &str = "request.originalhttpmethod";
    // `get` rather than slicing: the text may put a multi-byte character at that offset.
    if s.get(..METHOD.len())
        .is_some_and(|head| head.eq_ignore_ascii_case(METHOD))
    {
        return Some((Expr::OriginalMethod, METHOD.len()));
    }
    let name_len = s
        .find(|c: char| !c.is_ascii_alphabetic())
        .unwrap_or(s.len());
    let name = s[..name_len].to_ascii_lowercase();
    let (args, args_len) = parse_args(&s[name_len..])?;
    let used = name_len + args_len;
    let first = || args.first().cloned();
    let second = || args.get(1).cloned();
    let expr = match (name.as_str(), args.len()) {
        ("environmentvariables", 1) => Expr::Environment(first()?),
        ("connectionparameters", 1 | 2) => Expr::Connection(first()?, second()),
        ("headers" | "header", 1 | 2) => Expr::Header(first()?, second()),
        ("queryparameters" | "queryparameter", 1 | 2) => Expr::Query(first()?, second()),
        ("body" | "item", 0) => {
            let root = if name == "body" {
                Root::Body
            } else {
                Root::Item
            };
            let (path, path_len) = parse_path(&s[used..]);
            return Some((Expr::Path(root, path), used + path_len));
        }
        _ => return None,
    };
    Some((expr, used))
}

/// `('a', "b")` → the quoted arguments and the length of the list.
fn parse_args(s: &str) -> Option<(Vec<String>, usize)> {
    let mut rest = s.strip_prefix('(')?;
    let mut args = Vec::new();
    loop {
        rest = rest.trim_start();
        if let Some(after) = rest.strip_prefix(')') {
            return Some((args, s.len() - after.len()));
        }
        if !args.is_empty() {
            rest = rest.strip_prefix(',')?.trim_start();
        }
        let quote = rest.chars().next().filter(|c| *c == '\'' || *c == '"')?;
        let after_quote = &rest[1..];
        let end = after_quote.find(quote)?;
        args.push(after_quote[..end].to_string());
        rest = &after_quote[end + 1..];
    }
}

/// `.a.b['c']` after `@body()`; stops at the first character that cannot continue a path, so
/// `@body().id/items` reads `id`.
fn parse_path(s: &str) -> (Vec<String>, usize) {
    let mut path = Vec::new();
    let mut used = 0;
    loop {
        let rest = &s[used..];
        if let Some(after) = rest.strip_prefix("['")
            && let Some(end) = after.find("']")
        {
            path.push(after[..end].to_string());
            used += 2 + end + 2;
            continue;
        }
        let Some(after) = rest.strip_prefix('.') else {
            break;
        };
        let len = after
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '$'))
            .unwrap_or(after.len());
        if len == 0 {
            break;
        }
        path.push(after[..len].to_string());
        used += 1 + len;
    }
    (path, used)
}

fn resolve(expr: &Expr, scope: &Scope) -> Result<Value, CallError> {
    let text = |v: Option<&String>| v.map(|s| Value::String(s.clone()));
    let found = match expr {
        Expr::Environment(name) => text(
            scope
                .bindings
                .and_then(|b| b.environment_variables.get(name)),
        ),
        Expr::Connection(name, default) => text(
            scope
                .bindings
                .and_then(|b| b.connection_parameters.get(name))
                .or(default.as_ref()),
        ),
        Expr::Header(name, default) => text(
            scope
                .headers
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| v)
                .or(default.as_ref()),
        ),
        Expr::Query(name, default) => text(
            scope
                .query
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v)
                .or(default.as_ref()),
        ),
        Expr::Path(root, path) => {
            let start = match root {
                Root::Body => scope.body,
                Root::Item => scope.item,
            };
            start.and_then(|v| lookup(v, path)).cloned()
        }
        Expr::OriginalMethod => scope.method.map(|m| Value::String(m.to_string())),
    };
    found.ok_or_else(|| CallError::Unresolved(unresolved_message(expr)))
}

fn unresolved_message(expr: &Expr) -> String {
    match expr {
        Expr::Environment(name) => {
            format!("The environment variable '{name}' does not exist in this environment.")
        }
        Expr::Connection(name, _) => {
            format!("The connection parameter '{name}' has no value in this connection.")
        }
        Expr::Header(name, _) => {
            format!("The header '{name}' referenced by a policy is not present.")
        }
        Expr::Query(name, _) => {
            format!("The query parameter '{name}' referenced by a policy is not present.")
        }
        Expr::Path(root, path) => {
            let start = if *root == Root::Body {
                "@body()"
            } else {
                "@item()"
            };
            format!("The property '{start}.{}' does not exist.", path.join("."))
        }
        Expr::OriginalMethod => "The original HTTP method is not known here.".to_string(),
    }
}

/// The value at `path` below `value`.
pub(crate) fn lookup<'v>(value: &'v Value, path: &[String]) -> Option<&'v Value> {
    path.iter().try_fold(value, |v, key| match v {
        Value::Object(map) => map.get(key),
        Value::Array(items) => key.parse::<usize>().ok().and_then(|i| items.get(i)),
        _ => None,
    })
}

/// A JSON value as text: strings without quotes, `null` as nothing.
pub(crate) fn as_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bindings() -> Bindings {
        let mut b = Bindings::default();
        b.environment_variables
            .insert("cr_Host".into(), "api.contoso.com".into());
        b.connection_parameters
            .insert("storageAccountName".into(), "acct".into());
        b
    }

    #[test]
    fn environment_variables_in_both_quote_styles() {
        let b = bindings();
        assert_eq!(
            expand_environment("@environmentVariables(\"cr_Host\")", &b),
            Ok("api.contoso.com".to_string())
        );
        assert_eq!(
            expand_environment("https://@environmentVariables('cr_Host')/x", &b),
            Ok("https://api.contoso.com/x".to_string())
        );
    }

    #[test]
    fn environment_only_leaves_other_expressions() {
        let b = bindings();
        assert_eq!(
            expand_environment("@connectionParameters('storageAccountName')", &b),
            Ok("@connectionParameters('storageAccountName')".to_string())
        );
    }

    #[test]
    fn unknown_environment_variable_is_named() {
        let err = expand_environment("@environmentVariables(\"cr_Missing\")", &bindings());
        assert_eq!(
            err,
            Err(CallError::Unresolved(
                "The environment variable 'cr_Missing' does not exist in this environment.".into()
            ))
        );
    }

    #[test]
    fn connection_parameter_default_and_case_of_function() {
        let b = bindings();
        let scope = Scope {
            bindings: Some(&b),
            ..Scope::default()
        };
        assert_eq!(
            expand(
                "@ConnectionParameters('storageAccountName').blob.core.windows.net",
                &scope
            ),
            Ok("acct.blob.core.windows.net".to_string())
        );
        assert_eq!(
            expand("@connectionParameters('host', 'api.va.gov')", &scope),
            Ok("api.va.gov".to_string())
        );
        assert!(matches!(
            expand("@connectionParameters('host')", &scope),
            Err(CallError::Unresolved(m)) if m.contains("'host'")
        ));
    }

    #[test]
    fn literal_at_signs_stay() {
        let scope = Scope::default();
        assert_eq!(
            expand("user@contoso.com @odata.nextLink", &scope),
            Ok("user@contoso.com @odata.nextLink".to_string())
        );
    }

    #[test]
    fn braces_body_paths_headers_query_and_method() {
        let body = serde_json::json!({"firstName": "John", "lastName": "Smith", "n": 3});
        let headers = vec![("X-Tenant".to_string(), "t1".to_string())];
        let query = vec![("q".to_string(), "abc".to_string())];
        let scope = Scope {
            headers: &headers,
            query: &query,
            body: Some(&body),
            method: Some("PATCH"),
            ..Scope::default()
        };
        assert_eq!(
            expand("{@body().firstName} {@body().lastName}", &scope),
            Ok("John Smith".to_string())
        );
        assert_eq!(
            expand(
                "@headers('x-tenant')/@queryParameters('q')/@Request.OriginalHTTPMethod",
                &scope
            ),
            Ok("t1/abc/PATCH".to_string())
        );
        assert_eq!(evaluate("@body().n", &scope), Ok(serde_json::json!(3)));
        assert_eq!(evaluate("30", &scope), Ok(serde_json::json!("30")));
    }

    #[test]
    fn non_ascii_and_broken_expressions_do_not_panic() {
        let b = bindings();
        let scope = Scope {
            bindings: Some(&b),
            ..Scope::default()
        };
        let inputs = [
            "@Requesté.OriginalHTTPMethodééé",
            // Byte 26 falls inside the `é`.
            "@Request.OriginalHTTPMethoé",
            "@connectionParameters('é",
            "{@body().é}",
            "@body()['é",
            "é@é{@}@",
            "@headers(é)",
            "@environmentVariables(\"x\"",
            "{@connectionParameters('storageAccountName')",
        ];
        for input in inputs {
            let _ = expand(input, &scope);
            let _ = evaluate(input, &scope);
            let _ = sub_path(input);
            let _ = path_expression(input);
        }
        assert_eq!(
            expand("{@connectionParameters('storageAccountName')", &scope),
            Ok("{acct".to_string())
        );
        assert_eq!(expand("é@é", &scope), Ok("é@é".to_string()));
    }

    #[test]
    fn paths_and_sub_paths() {
        assert_eq!(
            path_expression("@body().a.b"),
            Some((Root::Body, vec!["a".to_string(), "b".to_string()]))
        );
        assert_eq!(path_expression("body()"), Some((Root::Body, vec![])));
        assert_eq!(
            path_expression("@item()._assignments"),
            Some((Root::Item, vec!["_assignments".to_string()]))
        );
        assert_eq!(path_expression("@body().a x"), None);
        assert_eq!(sub_path("['@odata.type']"), vec!["@odata.type".to_string()]);
        assert_eq!(sub_path("a.b"), vec!["a".to_string(), "b".to_string()]);
    }
}
