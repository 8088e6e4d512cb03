//! Import of a maker's upload: `apiDefinition.swagger.json` + `apiProperties.json` → [`Connector`].
//!
//! Limits from microsoft/powerplatform-developerhub: docs/custom-connectors/faq.md: the definition
//! must be "less than 1 MB" and OpenAPI 2.0 only. The maker portal's exact refusal texts are in no
//! public source we hold, so every message here is ppvnet's own wording (UNVERIFIED) that states
//! the rule.

use std::collections::{BTreeMap, HashSet};

use serde_json::{Map, Value};

use super::policy::KNOWN_TEMPLATES;
use super::{
    ConnectionAuth, ConnectionParameter, Connector, ImportError, OAuthSettings, Operation,
    Parameter, ParameterLocation, PolicyInstance, Upload,
};

/// 1 MB: a definition this size or larger is refused ("less than 1 MB", developerhub `faq.md`).
pub const MAX_DEFINITION_BYTES: usize = 1_048_576;

const METHODS: [&str; 7] = ["get", "put", "post", "delete", "options", "head", "patch"];

pub(super) fn import(name: &str, upload: &Upload) -> Result<Connector, ImportError> {
    if let Some(size) = upload.script {
        // UNVERIFIED wording; the rule is ours: C# cannot run here (developerhub `write-code.md`).
        return Err(ImportError::CustomCode(format!(
            "The connector ships custom code (script.csx, {size} bytes). ppvnet cannot run C# \
             custom code: remove the script or test this connector in a real environment."
        )));
    }
    let size = upload.swagger.len();
    if size >= MAX_DEFINITION_BYTES {
        return Err(ImportError::Definition(format!(
            "The API definition is {size} bytes; it must be less than 1 MB ({MAX_DEFINITION_BYTES} bytes)."
        )));
    }
    let swagger: Value = serde_json::from_slice(&upload.swagger).map_err(|e| {
        ImportError::Definition(format!("The API definition is not valid JSON: {e}."))
    })?;
    let properties = parse_properties(&upload.properties)?;
    check_version(&swagger)?;
    if properties.get("script").is_some() || properties.get("scriptOperations").is_some() {
        return Err(ImportError::CustomCode(
            "apiProperties.json names custom code (properties.script / scriptOperations). ppvnet \
             cannot run C# custom code: remove the script or test this connector in a real \
             environment."
                .to_string(),
        ));
    }
    let schemes: Vec<&str> = swagger
        .get("schemes")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let scheme = if schemes.is_empty() || schemes.contains(&"https") {
        "https"
    } else {
        schemes[0]
    };
    let base_path = match swagger.get("basePath").and_then(Value::as_str) {
        Some(p) if !p.is_empty() => p.to_string(),
        _ => "/".to_string(),
    };
    let empty = Map::new();
    let parameters = properties
        .get("connectionParameters")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    Ok(Connector {
        name: name.to_string(),
        title: text(&swagger, &["info", "title"]).unwrap_or_default(),
        host: text(&swagger, &["host"]).unwrap_or_default(),
        base_path,
        scheme: scheme.to_string(),
        operations: operations(&swagger)?,
        policies: policies(&properties)?,
        auth: auth(parameters)?,
        connection_parameters: connection_parameters(parameters),
    })
}

/// `apiProperties.json`'s `properties` object; an upload without the file has none.
fn parse_properties(bytes: &[u8]) -> Result<Map<String, Value>, ImportError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    let value: Value = serde_json::from_slice(bytes).map_err(|e| {
        ImportError::Properties(format!("apiProperties.json is not valid JSON: {e}."))
    })?;
    Ok(value
        .get("properties")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default())
}

fn check_version(swagger: &Value) -> Result<(), ImportError> {
    if let Some(version) = swagger.get("openapi") {
        return Err(ImportError::Definition(format!(
            "OpenAPI {} is not supported: custom connectors support only OpenAPI 2.0 \
             (\"swagger\": \"2.0\").",
            version.as_str().unwrap_or("3")
        )));
    }
    match swagger.get("swagger").and_then(Value::as_str) {
        Some("2.0") => Ok(()),
        other => Err(ImportError::Definition(format!(
            "The API definition must be OpenAPI 2.0 (\"swagger\": \"2.0\"); found {}.",
            other.map_or("no \"swagger\" version".to_string(), |v| format!("\"{v}\""))
        ))),
    }
}

fn text(value: &Value, path: &[&str]) -> Option<String> {
    path.iter()
        .try_fold(value, |v, key| v.get(key))
        .and_then(Value::as_str)
        .map(str::to_string)
}

/// Operations in the order serde_json's map yields the paths (sorted by path unless its
/// `preserve_order` feature is on), methods in [`METHODS`] order within a path.
fn operations(swagger: &Value) -> Result<Vec<Operation>, ImportError> {
    let mut operations = Vec::new();
    let mut ids = HashSet::new();
    let Some(paths) = swagger.get("paths").and_then(Value::as_object) else {
        return Ok(operations);
    };
    for (path, item) in paths {
        let shared = match item.get("parameters").and_then(Value::as_array) {
            Some(list) => list
                .iter()
                .map(|p| parameter(swagger, p))
                .collect::<Result<Vec<_>, _>>()?,
            None => Vec::new(),
        };
        for method in METHODS {
            let Some(op) = item.get(method) else { continue };
            let method = method.to_ascii_uppercase();
            let Some(id) = op.get("operationId").and_then(Value::as_str) else {
                return Err(ImportError::Definition(format!(
                    "The operation {method} {path} has no operationId; every operation needs one."
                )));
            };
            if !ids.insert(id.to_string()) {
                return Err(ImportError::Definition(format!(
                    "The operationId '{id}' is used by more than one operation; operationIds must be unique."
                )));
            }
            let own = match op.get("parameters").and_then(Value::as_array) {
                Some(list) => list
                    .iter()
                    .map(|p| parameter(swagger, p))
                    .collect::<Result<Vec<_>, _>>()?,
                None => Vec::new(),
            };
            operations.push(Operation {
                id: id.to_string(),
                method,
                path: path.clone(),
                summary: op
                    .get("summary")
                    .and_then(Value::as_str)
                    .map(str::to_string),
                parameters: merge(&shared, own),
                trigger: op.get("x-ms-trigger").is_some(),
            });
        }
    }
    Ok(operations)
}

/// Path-level parameters first, an operation's own one with the same name and location
/// replacing it (OpenAPI 2.0 "Path Item Object": operation parameters override).
fn merge(shared: &[Parameter], own: Vec<Parameter>) -> Vec<Parameter> {
    let mut merged: Vec<Parameter> = shared
        .iter()
        .filter(|s| {
            !own.iter()
                .any(|o| o.name == s.name && o.location == s.location)
        })
        .cloned()
        .collect();
    merged.extend(own);
    merged
}

/// Follows a local `$ref` (`#/parameters/x`, `#/definitions/x`).
fn follow<'a>(swagger: &'a Value, value: &'a Value) -> Result<&'a Value, ImportError> {
    let Some(reference) = value.get("$ref").and_then(Value::as_str) else {
        return Ok(value);
    };
    reference
        .strip_prefix("#/")
        .and_then(|p| p.split('/').try_fold(swagger, |v, key| v.get(key)))
        .ok_or_else(|| {
            ImportError::Definition(format!(
                "The reference '{reference}' does not resolve inside the definition."
            ))
        })
}

fn parameter(swagger: &Value, raw: &Value) -> Result<Parameter, ImportError> {
    let p = follow(swagger, raw)?;
    let name = p.get("name").and_then(Value::as_str).unwrap_or_default();
    let location = match p.get("in").and_then(Value::as_str) {
        Some("path") => ParameterLocation::Path,
        Some("query") => ParameterLocation::Query,
        Some("header") => ParameterLocation::Header,
        Some("body") => ParameterLocation::Body,
        Some("formData") => ParameterLocation::FormData,
        other => {
            return Err(ImportError::Definition(format!(
                "The parameter '{name}' has an unsupported location {other:?}; OpenAPI 2.0 \
                 allows path, query, header, body and formData."
            )));
        }
    };
    let number = |key: &str| p.get(key).and_then(Value::as_f64);
    let schema = match p.get("schema") {
        Some(s) => Some(follow(swagger, s)?.clone()),
        None => None,
    };
    Ok(Parameter {
        name: name.to_string(),
        location,
        // A path parameter is always required (OpenAPI 2.0), whatever the definition says.
        required: location == ParameterLocation::Path
            || p.get("required").and_then(Value::as_bool).unwrap_or(false),
        kind: p.get("type").and_then(Value::as_str).map(str::to_string),
        format: p.get("format").and_then(Value::as_str).map(str::to_string),
        enumeration: p
            .get("enum")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default(),
        default: p.get("default").cloned(),
        minimum: number("minimum"),
        maximum: number("maximum"),
        visibility: p
            .get("x-ms-visibility")
            .and_then(Value::as_str)
            .map(str::to_string),
        double_encoded: p
            .get("x-ms-url-encoding")
            .and_then(Value::as_str)
            .is_some_and(|e| e.eq_ignore_ascii_case("double")),
        schema,
    })
}

fn policies(properties: &Map<String, Value>) -> Result<Vec<PolicyInstance>, ImportError> {
    let Some(list) = properties
        .get("policyTemplateInstances")
        .and_then(Value::as_array)
    else {
        return Ok(Vec::new());
    };
    list.iter().map(policy).collect()
}

fn policy(raw: &Value) -> Result<PolicyInstance, ImportError> {
    let id = raw
        .get("templateId")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let template = id.to_ascii_lowercase();
    if !KNOWN_TEMPLATES.contains(&template.as_str()) {
        return Err(ImportError::Properties(format!(
            "The policy template '{id}' is unknown; known templates: {}.",
            KNOWN_TEMPLATES.join(", ")
        )));
    }
    let mut parameters = BTreeMap::new();
    let mut operations = Vec::new();
    if let Some(map) = raw.get("parameters").and_then(Value::as_object) {
        for (key, value) in map {
            if key == "x-ms-apimTemplate-operationName" {
                // An array in every PPC instance; a single string is read as a one-item list.
                operations = match value {
                    Value::Array(items) => items
                        .iter()
                        .filter_map(Value::as_str)
                        .map(str::to_string)
                        .collect(),
                    Value::String(s) if !s.is_empty() => vec![s.clone()],
                    _ => Vec::new(),
                };
            } else {
                parameters.insert(key.clone(), value.clone());
            }
        }
    }
    Ok(PolicyInstance {
        template,
        title: raw.get("title").and_then(Value::as_str).map(str::to_string),
        operations,
        parameters,
    })
}

/// A key of `map` regardless of case: `customParameters` is `loginUri` in most definitions and
/// `LoginUri` in M365Lighthouse.
fn get_ci<'a>(map: &'a Value, key: &str) -> Option<&'a Value> {
    map.as_object()?
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(key))
        .map(|(_, v)| v)
}

fn truthy(value: Option<&Value>) -> bool {
    match value {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => s.eq_ignore_ascii_case("true"),
        _ => false,
    }
}

fn auth(parameters: &Map<String, Value>) -> Result<ConnectionAuth, ImportError> {
    let Some(settings) = parameters
        .get("token")
        .and_then(|t| get_ci(t, "oAuthSettings"))
    else {
        return Ok(ConnectionAuth::None);
    };
    let provider = get_ci(settings, "identityProvider")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if !provider.eq_ignore_ascii_case("aad") && !provider.eq_ignore_ascii_case("aadcertificate") {
        return Err(ImportError::Properties(format!(
            "The identity provider '{provider}' is not supported by ppvnet; it emulates only \
             Microsoft Entra ID ('aad', 'aadcertificate')."
        )));
    }
    let string = |v: Option<&Value>| v.and_then(Value::as_str).map(str::to_string);
    let props = get_ci(settings, "properties");
    let custom = get_ci(settings, "customParameters");
    let custom_value = |key: &str| {
        string(
            custom
                .and_then(|c| get_ci(c, key))
                .and_then(|c| c.get("value")),
        )
    };
    let grant_types = parameters
        .get("token:grantType")
        .and_then(|g| g.get("allowedValues"))
        .and_then(Value::as_array);
    Ok(ConnectionAuth::OAuth(OAuthSettings {
        identity_provider: provider.to_ascii_lowercase(),
        // M365Lighthouse repeats `clientId`; serde_json keeps the last one, as the portal's
        // JSON reader would ("AzureActiveDirectoryClientId", a first-party placeholder).
        client_id: string(get_ci(settings, "clientId")).unwrap_or_default(),
        client_secret: string(get_ci(settings, "clientSecret")),
        scopes: get_ci(settings, "scopes")
            .and_then(Value::as_array)
            .map(|s| {
                s.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default(),
        redirect_mode: string(get_ci(settings, "redirectMode")).unwrap_or_default(),
        redirect_url: string(get_ci(settings, "redirectUrl")),
        resource_uri: string(props.and_then(|p| get_ci(p, "AzureActiveDirectoryResourceId")))
            .or_else(|| custom_value("resourceUri")),
        tenant_id: custom_value("tenantId"),
        login_uri: custom_value("loginUri"),
        on_behalf_of: truthy(props.and_then(|p| get_ci(p, "IsOnbehalfofLoginSupported")))
            || custom_value("enableOnbehalfOfLogin")
                .is_some_and(|v| v.eq_ignore_ascii_case("true")),
        service_principal: grant_types.is_some_and(|values| {
            values
                .iter()
                .any(|v| v.get("value").and_then(Value::as_str) == Some("client_credentials"))
        }),
    }))
}

/// Every parameter but `token` and the hidden `token:*` service-principal ones.
fn connection_parameters(parameters: &Map<String, Value>) -> BTreeMap<String, ConnectionParameter> {
    parameters
        .iter()
        .filter(|(name, _)| *name != "token" && !name.starts_with("token:"))
        .map(|(name, p)| {
            let ui = p.get("uiDefinition");
            let required = ui
                .and_then(|u| u.get("constraints"))
                .and_then(|c| c.get("required"));
            let parameter = ConnectionParameter {
                kind: p
                    .get("type")
                    .and_then(Value::as_str)
                    .unwrap_or("string")
                    .to_string(),
                required: truthy(required),
                display_name: ui
                    .and_then(|u| u.get("displayName"))
                    .and_then(Value::as_str)
                    .map(str::to_string),
            };
            (name.clone(), parameter)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::super::testing::{properties, swagger, upload};
    use super::*;

    fn refused(swagger: &Value, props: &Value) -> ImportError {
        match Connector::import("t", &upload(swagger, props)) {
            Ok(_) => panic!("imported"),
            Err(e) => e,
        }
    }

    fn one_get() -> Value {
        swagger(json!({"/a": {"get": {"operationId": "A"}}}))
    }

    #[test]
    fn openapi_3_is_refused() {
        let doc = json!({"openapi": "3.0.1", "info": {}, "paths": {}});
        assert_eq!(
            refused(&doc, &json!({})),
            ImportError::Definition(
                "OpenAPI 3.0.1 is not supported: custom connectors support only OpenAPI 2.0 \
                 (\"swagger\": \"2.0\")."
                    .into()
            )
        );
        let old = json!({"swagger": "1.2", "paths": {}});
        assert_eq!(
            refused(&old, &json!({})).to_string(),
            "The API definition must be OpenAPI 2.0 (\"swagger\": \"2.0\"); found \"1.2\"."
        );
    }

    #[test]
    fn one_megabyte_is_refused_and_one_byte_less_imports() {
        let sized = |total: usize| {
            let mut doc = one_get();
            doc["info"]["description"] = json!("");
            let padding = total - doc.to_string().len();
            doc["info"]["description"] = json!("x".repeat(padding));
            doc
        };
        let at_limit = sized(MAX_DEFINITION_BYTES);
        assert_eq!(at_limit.to_string().len(), MAX_DEFINITION_BYTES);
        assert_eq!(
            refused(&at_limit, &json!({})),
            ImportError::Definition(
                "The API definition is 1048576 bytes; it must be less than 1 MB (1048576 bytes)."
                    .into()
            )
        );
        let below = sized(MAX_DEFINITION_BYTES - 1);
        assert!(Connector::import("t", &upload(&below, &json!({}))).is_ok());
    }

    #[test]
    fn not_json_is_refused() {
        let bad = Upload {
            swagger: b"swagger: '2.0'".to_vec(),
            properties: Vec::new(),
            script: None,
        };
        let err = Connector::import("t", &bad).err();
        assert!(
            matches!(&err, Some(ImportError::Definition(m)) if m.starts_with("The API definition is not valid JSON: expected value at line 1 column 1")),
            "{err:?}"
        );
        let bad_properties = Upload {
            properties: b"{".to_vec(),
            ..upload(&one_get(), &json!({}))
        };
        assert!(matches!(
            Connector::import("t", &bad_properties),
            Err(ImportError::Properties(m)) if m.starts_with("apiProperties.json is not valid JSON")
        ));
    }

    #[test]
    fn operation_without_id_is_refused() {
        let doc = swagger(json!({"/a": {"get": {"summary": "no id"}}}));
        assert_eq!(
            refused(&doc, &json!({})),
            ImportError::Definition(
                "The operation GET /a has no operationId; every operation needs one.".into()
            )
        );
    }

    #[test]
    fn duplicate_operation_id_is_refused() {
        let doc = swagger(json!({
            "/a": {"get": {"operationId": "Same"}},
            "/b": {"post": {"operationId": "Same"}}
        }));
        assert_eq!(
            refused(&doc, &json!({})),
            ImportError::Definition(
                "The operationId 'Same' is used by more than one operation; operationIds must be unique."
                    .into()
            )
        );
    }

    #[test]
    fn unknown_policy_template_is_refused_known_ones_in_any_case() {
        let props = properties(json!([{"templateId": "moveproperties", "parameters": {}}]));
        assert_eq!(
            refused(&one_get(), &props).to_string(),
            format!(
                "The policy template 'moveproperties' is unknown; known templates: {}.",
                KNOWN_TEMPLATES.join(", ")
            )
        );
        let props = properties(json!([{"templateId": "StringReplace", "parameters": {}}]));
        let c = Connector::import("t", &upload(&one_get(), &props)).expect("imports");
        assert_eq!(c.policies[0].template, "stringreplace");
    }

    #[test]
    fn custom_code_is_refused() {
        let with_script = Upload {
            script: Some(2048),
            ..upload(&one_get(), &json!({}))
        };
        assert_eq!(
            Connector::import("t", &with_script).err(),
            Some(ImportError::CustomCode(
                "The connector ships custom code (script.csx, 2048 bytes). ppvnet cannot run C# \
                 custom code: remove the script or test this connector in a real environment."
                    .into()
            ))
        );
        let named = json!({"properties": {"scriptOperations": ["A"]}});
        assert!(matches!(
            refused(&one_get(), &named),
            ImportError::CustomCode(_)
        ));
    }

    #[test]
    fn refs_path_level_parameters_and_triggers() {
        let mut doc = swagger(json!({
            "/items/{id}": {
                "parameters": [
                    {"$ref": "#/parameters/id"},
                    {"name": "v", "in": "query", "type": "string"}
                ],
                "put": {"operationId": "Put", "parameters": [
                    {"name": "v", "in": "query", "type": "integer"},
                    {"name": "body", "in": "body", "schema": {"$ref": "#/definitions/Item"}}
                ]},
                "get": {"operationId": "OnChange", "x-ms-trigger": "single"}
            }
        }));
        doc["parameters"] = json!({"id": {"name": "id", "in": "path", "type": "string", "x-ms-url-encoding": "double"}});
        doc["definitions"] =
            json!({"Item": {"type": "object", "properties": {"n": {"type": "string"}}}});
        let c = Connector::import("t", &upload(&doc, &json!({}))).expect("imports");
        let put = c.operations.iter().find(|o| o.id == "Put").expect("Put");
        let names: Vec<(&str, Option<&str>)> = put
            .parameters
            .iter()
            .map(|p| (p.name.as_str(), p.kind.as_deref()))
            .collect();
        assert_eq!(
            names,
            [
                ("id", Some("string")),
                ("v", Some("integer")),
                ("body", None)
            ]
        );
        assert!(put.parameters[0].required && put.parameters[0].double_encoded);
        assert_eq!(
            put.parameters[2]
                .schema
                .as_ref()
                .and_then(|s| s.get("type")),
            Some(&json!("object"))
        );
        assert!(!put.trigger);
        let trigger = c
            .operations
            .iter()
            .find(|o| o.id == "OnChange")
            .expect("trigger");
        assert!(trigger.trigger);
        assert_eq!(trigger.parameters.len(), 2);

        doc["parameters"] = json!({});
        assert_eq!(
            refused(&doc, &json!({})).to_string(),
            "The reference '#/parameters/id' does not resolve inside the definition."
        );
    }

    #[test]
    fn other_identity_providers_are_refused() {
        let props = json!({"properties": {"connectionParameters": {"token": {
            "type": "oauthSetting", "oAuthSettings": {"identityProvider": "github", "clientId": "x"}
        }}}});
        assert_eq!(
            refused(&one_get(), &props).to_string(),
            "The identity provider 'github' is not supported by ppvnet; it emulates only \
             Microsoft Entra ID ('aad', 'aadcertificate')."
        );
    }
}
