//! JSON body templates: `setproperty`, `convertobjecttoarray`, `convertarraytoobject`,
//! `stringreplace` (both sections) and `updatenextlink` (Response).
//!
//! A parent path (`@body()`, `@body().value`) that names an array applies the template to each
//! element, where `@item()` is that element (learn.microsoft.com … setproperty example 2;
//! Planner's `@item()._assignments`). A parent that does not exist leaves the body unchanged:
//! there is nothing to transform, and error answers from the backend rarely have the shape of
//! the success body (UNVERIFIED: APIM may fail the call instead). A response body that is not
//! JSON is left as it is for the same reason.

use serde_json::{Map, Value};

use super::super::template::{self, Root, Scope};
use super::super::{BackendResponse, CallError, PolicyInstance};
use super::ResponseContext;

/// Where a computed value goes: an absolute `@body()` path, or a path below the parent (or the
/// parent's element `index`) for `@item()` and sub-paths.
enum Place {
    Body(Vec<String>),
    Parent(Option<usize>, Vec<String>),
}

fn config_error(p: &PolicyInstance, problem: &str) -> CallError {
    CallError::Unresolved(format!("The {} {problem}.", p.label()))
}

/// The new request body, when the template changed it. `body` is the received body, `parsed`
/// the same as JSON.
pub(super) fn request_body(
    p: &PolicyInstance,
    body: Option<&[u8]>,
    parsed: Option<Value>,
    scope: &Scope,
) -> Result<Option<Vec<u8>>, CallError> {
    let mut value = match (body, parsed) {
        (_, Some(value)) => value,
        // setproperty adds a property: on a call without a body it starts an object.
        (None | Some([]), None) if p.template == "setproperty" => Value::Object(Map::new()),
        (None | Some([]), None) => return Ok(None),
        (Some(_), None) => {
            return Err(CallError::InvalidParameter(format!(
                "The request body is not JSON, so the {} cannot apply.",
                p.label()
            )));
        }
    };
    if !transform(p, &mut value, scope)? {
        return Ok(None);
    }
    serialize(p, &value).map(Some)
}

fn serialize(p: &PolicyInstance, value: &Value) -> Result<Vec<u8>, CallError> {
    serde_json::to_vec(value)
        .map_err(|e| config_error(p, &format!("produced a body that cannot be written: {e}")))
}

/// Applies a body template to the response; a non-JSON body is left untouched.
pub(super) fn apply_to_response(
    p: &PolicyInstance,
    response: &mut BackendResponse,
    ctx: &ResponseContext,
    query: &[(String, String)],
) -> Result<(), CallError> {
    let Ok(mut body) = serde_json::from_slice::<Value>(&response.body) else {
        return Ok(());
    };
    let changed = if p.template == "updatenextlink" {
        next_link(p, &mut body, ctx)?
    } else {
        let scope = Scope {
            bindings: Some(ctx.bindings),
            headers: &response.headers,
            query,
            method: Some(ctx.original_method),
            ..Scope::default()
        };
        transform(p, &mut body, &scope)?
    };
    if changed {
        response.body = serialize(p, &body)?;
        // The backend's length no longer describes the body the runtime returns.
        let length = response.body.len().to_string();
        for (name, value) in &mut response.headers {
            if name.eq_ignore_ascii_case("content-length") {
                value.clone_from(&length);
            }
        }
    }
    Ok(())
}

/// `updatenextlink`: a top-level `nextLinkPropertyName` (a key, `@odata.nextLink` included)
/// that points below the backend's base is made to point below the connection, so the next
/// page is fetched through the connector again with the same policies and token. Without
/// `Bindings::connection_url` the link becomes the path below the connection (`/items?page=2`).
/// A link to another host is left as it is (UNVERIFIED: the real template's handling).
fn next_link(
    p: &PolicyInstance,
    body: &mut Value,
    ctx: &ResponseContext,
) -> Result<bool, CallError> {
    let name = p.required("nextLinkPropertyName")?;
    let Some(Value::String(link)) = body.get(&name) else {
        return Ok(false);
    };
    let base = ctx.base;
    let rest = match link.get(..base.len()) {
        Some(prefix) if prefix.eq_ignore_ascii_case(base) => &link[base.len()..],
        _ => return Ok(false),
    };
    let rest = match rest.chars().next() {
        None => "/".to_string(),
        Some('/') => rest.to_string(),
        Some('?') => format!("/{rest}"),
        Some(_) => return Ok(false),
    };
    let new = match &ctx.bindings.connection_url {
        Some(url) => format!("{}{rest}", url.trim_end_matches('/')),
        None => rest,
    };
    body[name.as_str()] = Value::String(new);
    Ok(true)
}

/// Applies one template to `body`; `true` when something was written.
fn transform(p: &PolicyInstance, body: &mut Value, scope: &Scope) -> Result<bool, CallError> {
    let parent_key = if p.template == "setproperty" {
        "newPropertyParentPathTemplate"
    } else {
        "propertyParentPath"
    };
    let parent = match template::path_expression(&p.required(parent_key)?) {
        Some((Root::Body, path)) => path,
        _ => {
            return Err(config_error(
                p,
                &format!("has a {parent_key} that is not a @body() path"),
            ));
        }
    };
    let snapshot = body.clone();
    let Some(target) = template::lookup(&snapshot, &parent) else {
        return Ok(false);
    };
    // An empty sub-path on convertarraytoobject means the parent is the array to convert.
    let whole = p.template == "convertarraytoobject"
        && p.text("propertySubPath").unwrap_or_default().is_empty();
    let items: Vec<(Option<usize>, &Value)> = match target {
        Value::Array(elements) if !whole => elements
            .iter()
            .enumerate()
            .map(|(i, v)| (Some(i), v))
            .collect(),
        other => vec![(None, other)],
    };
    let mut writes = Vec::new();
    for (index, item) in items {
        let scope = Scope {
            body: Some(&snapshot),
            item: Some(item),
            ..*scope
        };
        if let Some(write) = compute(p, index, item, &scope)? {
            writes.push(write);
        }
    }
    let changed = !writes.is_empty();
    for (place, value) in writes {
        let (target, path) = match place {
            Place::Body(path) => (Some(&mut *body), path),
            Place::Parent(index, path) => {
                let parent = get_mut(body, &parent);
                let target = match index {
                    Some(i) => parent.and_then(|v| v.get_mut(i)),
                    None => parent,
                };
                (target, path)
            }
        };
        let written = target.is_some_and(|t| set_at(t, &path, value));
        if !written {
            return Err(config_error(
                p,
                "cannot write its result: the target is not an object",
            ));
        }
    }
    Ok(changed)
}

/// The value one template computes for one item (the parent or one of its elements).
fn compute(
    p: &PolicyInstance,
    index: Option<usize>,
    item: &Value,
    scope: &Scope,
) -> Result<Option<(Place, Value)>, CallError> {
    let sub = template::sub_path(&p.text("propertySubPath").unwrap_or_default());
    match p.template.as_str() {
        "setproperty" => {
            if !item.is_object() {
                return Ok(None);
            }
            let name = template::sub_path(&p.required("newPropertySubPathTemplate")?);
            let value = template::evaluate(
                &p.text("propertyValuePathTemplate").unwrap_or_default(),
                scope,
            )?;
            Ok(Some((Place::Parent(index, name), value)))
        }
        "convertobjecttoarray" => {
            let Some(Value::Object(map)) = template::lookup(item, &sub) else {
                return Ok(None);
            };
            let key_name = p.required("keyName")?;
            let value_name = p.required("valueName")?;
            let array = map
                .iter()
                .map(|(k, v)| {
                    let mut entry = Map::new();
                    entry.insert(key_name.clone(), Value::String(k.clone()));
                    entry.insert(value_name.clone(), v.clone());
                    Value::Object(entry)
                })
                .collect();
            Ok(Some((place(p, index)?, Value::Array(array))))
        }
        "convertarraytoobject" => {
            let Some(Value::Array(elements)) = template::lookup(item, &sub) else {
                return Ok(None);
            };
            Ok(Some((place(p, index)?, array_to_object(p, elements)?)))
        }
        "stringreplace" => {
            let Some(Value::String(text)) = template::lookup(item, &sub) else {
                return Ok(None);
            };
            let from = p.required("sourceString")?;
            let to = p.text("replacementString").unwrap_or_default();
            if from.is_empty() {
                return Err(config_error(p, "has an empty sourceString"));
            }
            Ok(Some((
                place(p, index)?,
                Value::String(text.replace(&from, &to)),
            )))
        }
        _ => Err(config_error(p, "does not apply to a body")),
    }
}

/// `newPropertyPath`: `@body()…` absolute, `@item()…` below the current item.
fn place(p: &PolicyInstance, index: Option<usize>) -> Result<Place, CallError> {
    match template::path_expression(&p.required("newPropertyPath")?) {
        Some((Root::Body, path)) => Ok(Place::Body(path)),
        Some((Root::Item, path)) => Ok(Place::Parent(index, path)),
        None => Err(config_error(
            p,
            "has a newPropertyPath that is not a @body() or @item() path",
        )),
    }
}

/// `convertarraytoobject`: each element under the text of its `keyWithinCollectionPath`;
/// `retainKey` (default `true`, per the template's page) keeps that key inside the element.
/// Elements without the key are left out: an object needs a key for each value.
fn array_to_object(p: &PolicyInstance, elements: &[Value]) -> Result<Value, CallError> {
    let key_path = template::sub_path(&p.required("keyWithinCollectionPath")?);
    let retain = !p
        .text("retainKey")
        .is_some_and(|r| r.eq_ignore_ascii_case("false"));
    let mut object = Map::new();
    for element in elements {
        let Some(key) = template::lookup(element, &key_path).map(template::as_text) else {
            continue;
        };
        let mut value = element.clone();
        if !retain && let ([last], Value::Object(map)) = (key_path.as_slice(), &mut value) {
            map.remove(last);
        }
        object.insert(key, value);
    }
    Ok(Value::Object(object))
}

fn get_mut<'v>(value: &'v mut Value, path: &[String]) -> Option<&'v mut Value> {
    path.iter().try_fold(value, |v, key| match v {
        Value::Object(map) => map.get_mut(key),
        Value::Array(items) => key.parse::<usize>().ok().and_then(|i| items.get_mut(i)),
        _ => None,
    })
}

/// Writes `value` at `path` below `target`, creating missing objects; `false` when a step is
/// not an object.
fn set_at(target: &mut Value, path: &[String], value: Value) -> bool {
    let Some((last, parents)) = path.split_last() else {
        *target = value;
        return true;
    };
    let mut current = target;
    for key in parents {
        let Value::Object(map) = current else {
            return false;
        };
        current = map
            .entry(key.clone())
            .or_insert_with(|| Value::Object(Map::new()));
    }
    match current {
        Value::Object(map) => {
            map.insert(last.clone(), value);
            true
        }
        _ => false,
    }
}
