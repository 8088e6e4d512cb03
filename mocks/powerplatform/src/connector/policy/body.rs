//! JSON body templates: `setproperty`, `convertobjecttoarray`, `convertarraytoobject`,
//! `stringreplace` (both sections) and `updatenextlink` (Response).
//!
//! A parent path (`@body()`, `@body().value`) that names an array applies the template to each
//! element, where `@item()` is that element (learn.microsoft.com … setproperty example 2;
//! Planner's `@item()._assignments`). A parent that does not exist leaves the body unchanged:
//! there is nothing to transform, and error answers from the backend rarely have the shape of
//! the success body (UNVERIFIED: APIM may fail the call instead). A response body that is not
//! JSON is left as it is for the same reason.
//!
//! A changed body is written back compactly with its object keys sorted (serde_json without
//! `preserve_order`, which the workspace does not enable): JSON-equal to what APIM would send,
//! not byte-equal.

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

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::super::testing::{call, items, pairs};
    use super::super::super::{BackendRequest, Bindings, Call, Connector, ResponseOutcome};
    use super::*;

    fn policy(template: &str, section: &str, parameters: Value) -> Connector {
        let mut parameters = parameters;
        parameters["x-ms-apimTemplate-policySection"] = json!(section);
        items(json!([{"templateId": template, "parameters": parameters}]))
    }

    fn create(body: &Value) -> Call {
        Call {
            body: Some(body.to_string().into_bytes()),
            ..call("POST", "/items", "")
        }
    }

    fn sent_body(c: &Connector, body: &Value) -> Result<Value, CallError> {
        let sent = c.prepare(&create(body), &Bindings::default())?;
        let bytes = sent.body.unwrap_or_default();
        serde_json::from_slice(&bytes).map_err(|e| CallError::InvalidParameter(e.to_string()))
    }

    fn respond(c: &Connector, headers: &[(&str, &str)], body: &[u8]) -> ResponseOutcome {
        let get = call("GET", "/items/7", "");
        let sent = match c.prepare(&get, &Bindings::default()) {
            Ok(sent) => sent,
            Err(e) => panic!("not prepared: {e}"),
        };
        let response = BackendResponse {
            status: 200,
            headers: pairs(headers),
            body: body.to_vec(),
        };
        c.on_response(&sent, &get, response, &Bindings::default())
    }

    fn json_of(outcome: &ResponseOutcome) -> Value {
        serde_json::from_slice(&outcome.response.body).unwrap_or(Value::Null)
    }

    fn setproperty(parent: &str, sub: &str, value: &str) -> Value {
        json!({
            "x-ms-apimTemplateParameter.newPropertyParentPathTemplate": parent,
            "x-ms-apimTemplateParameter.newPropertySubPathTemplate": sub,
            "x-ms-apimTemplateParameter.propertyValuePathTemplate": value
        })
    }

    #[test]
    fn setproperty_request_combines_properties_into_the_exact_request() {
        // learn.microsoft.com … setproperty, example 3.
        let c = policy(
            "setproperty",
            "Request",
            setproperty("@body()", "name", "{@body().firstName} {@body().lastName}"),
        );
        let sent = c.prepare(
            &create(&json!({"firstName": "John", "lastName": "Smith"})),
            &Bindings::default(),
        );
        assert_eq!(
            sent,
            Ok(BackendRequest {
                operation_id: "CreateItem".into(),
                method: "POST".into(),
                url: "https://api.contoso.com/v1/items".into(),
                headers: pairs(&[("Content-Type", "application/json")]),
                body: Some(
                    br#"{"firstName":"John","lastName":"Smith","name":"John Smith"}"#.to_vec()
                ),
            })
        );
    }

    #[test]
    fn setproperty_on_each_element_of_an_array_parent() {
        // learn.microsoft.com … setproperty, example 2.
        let c = policy(
            "setproperty",
            "Request",
            setproperty("@body().people", "age", "30"),
        );
        let body = json!({"people": [{"name": "xyz"}, {"name": "pqr"}]});
        assert_eq!(
            sent_body(&c, &body),
            Ok(json!({"people": [{"name": "xyz", "age": "30"}, {"name": "pqr", "age": "30"}]}))
        );
        // A parent that is not there: the body goes unchanged.
        assert_eq!(sent_body(&c, &json!({"other": 1})), Ok(json!({"other": 1})));
    }

    #[test]
    fn setproperty_copies_json_values_and_starts_a_missing_body() {
        let c = policy(
            "setproperty",
            "Request",
            setproperty("@body()", "['@odata.type']", "@body().kind"),
        );
        assert_eq!(
            sent_body(&c, &json!({"kind": {"n": 1}})),
            Ok(json!({"kind": {"n": 1}, "@odata.type": {"n": 1}}))
        );
        let version = policy(
            "setproperty",
            "Request",
            setproperty("@body()", "version", "v1"),
        );
        let sent = version.prepare(&call("POST", "/items", ""), &Bindings::default());
        assert_eq!(
            sent.map(|r| (r.headers, r.body)),
            Ok((
                pairs(&[("Content-Type", "application/json")]),
                Some(br#"{"version":"v1"}"#.to_vec())
            ))
        );
        let not_json = Call {
            body: Some(b"<a/>".to_vec()),
            ..call("POST", "/items", "")
        };
        let mut xml = not_json.clone();
        xml.headers = pairs(&[("Content-Type", "application/xml")]);
        assert_eq!(
            version.prepare(&xml, &Bindings::default()),
            Err(CallError::InvalidParameter(
                "The request body is not JSON, so the policy setproperty cannot apply.".into()
            ))
        );
    }

    #[test]
    fn setproperty_response_reads_response_headers_and_fixes_the_length() {
        let c = policy(
            "setproperty",
            "Response",
            setproperty("@body()", "requestId", "@headers('x-ms-request-id')"),
        );
        let outcome = respond(
            &c,
            &[("x-ms-request-id", "r1"), ("Content-Length", "9")],
            br#"{"id":7}"#,
        );
        assert_eq!(
            outcome.response.body,
            br#"{"id":7,"requestId":"r1"}"#.to_vec()
        );
        assert_eq!(
            outcome.response.headers,
            pairs(&[("x-ms-request-id", "r1"), ("Content-Length", "25")])
        );
        // A body that is not JSON stays as it is.
        assert_eq!(
            respond(&c, &[("x-ms-request-id", "r1")], b"oops")
                .response
                .body,
            b"oops".to_vec()
        );
    }

    #[test]
    fn an_unresolved_response_expression_is_reported_and_the_response_left_alone() {
        let c = policy(
            "setproperty",
            "Response",
            setproperty("@body()", "requestId", "@headers('x-ms-request-id')"),
        );
        let outcome = respond(&c, &[], br#"{"id":7}"#);
        assert_eq!(outcome.response.body, br#"{"id":7}"#.to_vec());
        assert_eq!(
            outcome.policy_error,
            Some(CallError::Unresolved(
                "The header 'x-ms-request-id' referenced by a policy is not present.".into()
            ))
        );
    }

    fn object_to_array(parent: &str, sub: &str, new: &str) -> Value {
        json!({
            "x-ms-apimTemplateParameter.propertyParentPath": parent,
            "x-ms-apimTemplateParameter.propertySubPath": sub,
            "x-ms-apimTemplateParameter.newPropertyPath": new,
            "x-ms-apimTemplateParameter.keyName": "Name",
            "x-ms-apimTemplateParameter.valueName": "Details"
        })
    }

    #[test]
    fn convertobjecttoarray_response_as_documented() {
        // learn.microsoft.com … convertobjecttoarray, example 1.
        let c = policy(
            "convertobjecttoarray",
            "Response",
            object_to_array("@body()", "peopleObject", "@body().peopleArray"),
        );
        let outcome = respond(
            &c,
            &[],
            br#"{"peopleObject":{"XYZ":{"Age":"30"},"ABC":{"Age":"23"}}}"#,
        );
        assert_eq!(
            json_of(&outcome),
            json!({
                "peopleObject": {"XYZ": {"Age": "30"}, "ABC": {"Age": "23"}},
                "peopleArray": [
                    {"Name": "ABC", "Details": {"Age": "23"}},
                    {"Name": "XYZ", "Details": {"Age": "30"}}
                ]
            })
        );
    }

    #[test]
    fn convertobjecttoarray_per_item_of_a_collection() {
        // As Planner's ListTasks_V3: parent `@body().value`, result `@item()._assignments`.
        let c = policy(
            "convertobjecttoarray",
            "Response",
            object_to_array("@body().value", "assignments", "@item()._assignments"),
        );
        let outcome = respond(
            &c,
            &[],
            br#"{"value":[{"assignments":{"u1":{"o":1}}},{"id":2}]}"#,
        );
        assert_eq!(
            json_of(&outcome),
            json!({"value": [
                {"assignments": {"u1": {"o": 1}}, "_assignments": [{"Name": "u1", "Details": {"o": 1}}]},
                {"id": 2}
            ]})
        );
    }

    #[test]
    fn convertarraytoobject_keys_by_a_property() {
        let parameters = |retain: &str| {
            json!({
                "x-ms-apimTemplateParameter.propertyParentPath": "@body()",
                "x-ms-apimTemplateParameter.propertySubPath": "people",
                "x-ms-apimTemplateParameter.keyWithinCollectionPath": "Name",
                "x-ms-apimTemplateParameter.newPropertyPath": "@body().byName",
                "x-ms-apimTemplateParameter.retainKey": retain
            })
        };
        let body = json!({"people": [{"Name": "XYZ", "Age": "30"}, {"Age": "1"}]});
        let kept = policy("convertarraytoobject", "Request", parameters(""));
        assert_eq!(
            sent_body(&kept, &body),
            Ok(json!({"people": body["people"], "byName": {"XYZ": {"Name": "XYZ", "Age": "30"}}}))
        );
        let dropped = policy("convertarraytoobject", "Request", parameters("false"));
        assert_eq!(
            sent_body(&dropped, &body),
            Ok(json!({"people": body["people"], "byName": {"XYZ": {"Age": "30"}}}))
        );
    }

    #[test]
    fn stringreplace_as_planner_encodes_links() {
        // Planner's UpdateTaskDetails_V2 instance, on an array of references.
        let c = policy(
            "StringReplace",
            "Request",
            json!({
                "x-ms-apimTemplateParameter.propertyParentPath": "@body().references",
                "x-ms-apimTemplateParameter.propertySubPath": "resourceLink",
                "x-ms-apimTemplateParameter.sourceString": ".",
                "x-ms-apimTemplateParameter.replacementString": "%2E",
                "x-ms-apimTemplateParameter.newPropertyPath": "@item().resourceLink"
            }),
        );
        let body =
            json!({"references": [{"resourceLink": "https://a.b/c.d"}, {"resourceLink": 5}]});
        assert_eq!(
            sent_body(&c, &body),
            Ok(
                json!({"references": [{"resourceLink": "https://a%2Eb/c%2Ed"}, {"resourceLink": 5}]})
            )
        );
    }

    #[test]
    fn updatenextlink_without_a_connection_url_and_to_other_hosts() {
        let c = items(json!([{"templateId": "updatenextlink", "parameters": {
            "x-ms-apimTemplateParameter.nextLinkPropertyName": "nextLink"
        }}]));
        let outcome = respond(
            &c,
            &[],
            br#"{"nextLink":"https://API.contoso.com/v1/items/7?page=2"}"#,
        );
        assert_eq!(json_of(&outcome), json!({"nextLink": "/items/7?page=2"}));
        let elsewhere = br#"{"nextLink":"https://other.example/v1/items?page=2"}"#;
        assert_eq!(
            respond(&c, &[], elsewhere).response.body,
            elsewhere.to_vec()
        );
        let prefix_only = br#"{"nextLink":"https://api.contoso.com/v10/x"}"#;
        assert_eq!(
            respond(&c, &[], prefix_only).response.body,
            prefix_only.to_vec()
        );
    }
}
