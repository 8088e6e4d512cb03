//! Builders for the unit tests: a connector from inline JSON, calls, header lists.

use serde_json::{Value, json};

use super::{Call, Connector, Upload};

/// An OpenAPI 2.0 definition on `https://api.contoso.com/v1` with these paths.
pub(crate) fn swagger(paths: Value) -> Value {
    json!({
        "swagger": "2.0",
        "info": {"title": "Test", "version": "1.0"},
        "host": "api.contoso.com",
        "basePath": "/v1",
        "schemes": ["https"],
        "paths": paths,
    })
}

/// `apiProperties.json` with these policy template instances.
pub(crate) fn properties(policies: Value) -> Value {
    json!({"properties": {"connectionParameters": {}, "policyTemplateInstances": policies}})
}

pub(crate) fn upload(swagger: &Value, properties: &Value) -> Upload {
    Upload {
        swagger: swagger.to_string().into_bytes(),
        properties: properties.to_string().into_bytes(),
        script: None,
    }
}

pub(crate) fn connector(swagger: &Value, properties: &Value) -> Connector {
    match Connector::import("test", &upload(swagger, properties)) {
        Ok(c) => c,
        Err(e) => panic!("import failed: {e}"),
    }
}

/// One `GET /items/{id}` operation `GetItem` and one `POST /items` operation `CreateItem`
/// with a JSON body, under these policies.
pub(crate) fn items(policies: Value) -> Connector {
    let paths = json!({
        "/items/{id}": {"get": {"operationId": "GetItem", "parameters": [
            {"name": "id", "in": "path", "required": true, "type": "string"}
        ]}},
        "/items": {"post": {"operationId": "CreateItem", "parameters": [
            {"name": "body", "in": "body", "required": false, "schema": {"type": "object"}}
        ]}}
    });
    connector(&swagger(paths), &properties(policies))
}

pub(crate) fn call(method: &str, path: &str, query: &str) -> Call {
    Call {
        method: method.to_string(),
        path: path.to_string(),
        query: query.to_string(),
        ..Call::default()
    }
}

pub(crate) fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect()
}
