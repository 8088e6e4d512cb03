//! The API's contract: `/swagger.json` against the custom connector definition, and real
//! Entra-shaped key sets.

use std::collections::BTreeMap;

use ppvnet_common::Clock;
use serde_json::{Value, json};

use crate::support::*;

const CONNECTOR_DIR: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../scenarios/connectors/contoso-cases"
);

fn read_json(path: &str) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// What a connector depends on: per operation its id, parameters (name, location, type,
/// constraints) and response codes; per definition its properties, types and required list.
/// Presentation extensions (`x-ms-summary`, `x-ms-visibility`, descriptions) may differ.
fn contract(doc: &Value) -> Value {
    let mut operations = BTreeMap::new();
    for (path, methods) in doc["paths"].as_object().unwrap() {
        for (method, op) in methods.as_object().unwrap() {
            let parameters: Vec<Value> = op["parameters"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| {
                    let mut kept = serde_json::Map::new();
                    for key in [
                        "name", "in", "required", "type", "format", "enum", "default", "minimum",
                        "maximum",
                    ] {
                        if let Some(v) = p.get(key) {
                            kept.insert(key.to_owned(), v.clone());
                        }
                    }
                    Value::Object(kept)
                })
                .collect();
            let responses: Vec<Value> = op["responses"]
                .as_object()
                .unwrap()
                .iter()
                .map(|(code, r)| json!([code, r.get("schema")]))
                .collect();
            operations.insert(
                format!("{} {path}", method.to_uppercase()),
                json!({"operationId": op["operationId"], "parameters": parameters, "responses": responses}),
            );
        }
    }
    let mut definitions = BTreeMap::new();
    for (name, def) in doc["definitions"].as_object().unwrap() {
        definitions.insert(name.clone(), strip_presentation(def));
    }
    json!({"operations": operations, "definitions": definitions, "basePath": doc["basePath"], "schemes": doc["schemes"]})
}

fn strip_presentation(v: &Value) -> Value {
    match v {
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(k, _)| !k.starts_with("x-ms-") && *k != "description")
                .map(|(k, v)| (k.clone(), strip_presentation(v)))
                .collect(),
        ),
        other => other.clone(),
    }
}

#[tokio::test]
async fn swagger_json_and_the_connector_definition_describe_the_same_api() {
    let (_issuer, _key, running) = landscape(10).await;
    let served: Value = get(&format!("{}/swagger.json", running.private), None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(served["swagger"], "2.0");
    let connector = read_json(&format!("{CONNECTOR_DIR}/apiDefinition.swagger.json"));
    assert_eq!(connector["swagger"], "2.0");
    assert_eq!(contract(&served), contract(&connector));
    // The served document names the delegated scope of the API it fronts.
    assert_eq!(
        served["security"][0]["oauth2_auth"][0],
        format!("{API_URI}/Cases.Read")
    );
    let host = running.private.trim_start_matches("http://");
    assert_eq!(served["host"], host);
}

#[tokio::test]
async fn the_served_operations_behave_as_the_contract_says() {
    // Every documented parameter is accepted; the documented default page size applies.
    let (_issuer, key, running) = landscape(200).await;
    let doc: Value = get(&format!("{}/swagger.json", running.private), None)
        .await
        .json()
        .await
        .unwrap();
    let top = &doc["paths"]["/cases/search"]["get"]["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "top")
        .unwrap()
        .clone();
    let app = sign(&key, &app_claims(&running.clock, &["Cases.Read.All"]));
    let r = get(&format!("{}/cases/search", running.private), Some(&app)).await;
    let body: Value = r.json().await.unwrap();
    assert_eq!(
        body["value"].as_array().unwrap().len() as u64,
        top["default"].as_u64().unwrap()
    );
    let max = top["maximum"].as_u64().unwrap();
    let r = get(
        &format!("{}/cases/search?top={max}", running.private),
        Some(&app),
    )
    .await;
    assert_eq!(r.status(), 200);
    let r = get(
        &format!("{}/cases/search?top={}", running.private, max + 1),
        Some(&app),
    )
    .await;
    assert_eq!(r.status(), 400);
    let required = doc["definitions"]["Case"]["required"].as_array().unwrap();
    for case in body["value"].as_array().unwrap() {
        for field in required {
            assert!(
                case.get(field.as_str().unwrap()).is_some(),
                "{field} missing in {case}"
            );
        }
        for field in case.as_object().unwrap().keys() {
            assert!(
                doc["definitions"]["Case"]["properties"]
                    .get(field)
                    .is_some(),
                "{field} undocumented"
            );
        }
    }
}

#[test]
fn the_connector_takes_its_client_from_environment_variables_and_targets_the_api() {
    let props = read_json(&format!("{CONNECTOR_DIR}/apiProperties.json"));
    let oauth = &props["properties"]["connectionParameters"]["token"]["oAuthSettings"];
    assert_eq!(oauth["identityProvider"], "aad");
    assert_eq!(
        oauth["clientId"],
        "@environmentVariables(\"cr_CasesClientId\")"
    );
    assert_eq!(
        oauth["clientSecret"],
        "@environmentVariables(\"cr_CasesClientSecret\")"
    );
    assert_eq!(oauth["customParameters"]["resourceUri"]["value"], API_URI);
    assert_eq!(
        oauth["properties"]["AzureActiveDirectoryResourceId"],
        API_URI
    );
    let params = &props["properties"]["connectionParameters"];
    assert_eq!(params["token:clientSecret"]["type"], "securestring");
    assert_eq!(
        params["token:grantType"]["allowedValues"],
        json!([{"value": "code"}, {"value": "client_credentials"}])
    );
}

#[tokio::test]
async fn entras_own_key_set_is_read_and_its_keys_are_used() {
    let published = read_json(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/jwks-v2-organizations.json"
    ));
    let keys = published["keys"].as_array().unwrap().clone();
    let entra_kid = keys[0]["kid"].as_str().unwrap().to_owned();
    let issuer = Issuer::start(keys).await;
    let running = serve(config(&issuer, 10), Clock::new()).await;
    // Our key under Entra's kid: the published Entra key is found and the signature fails;
    // under a kid Entra does not publish, the key is not found.
    let impostor = signing_key(&entra_kid);
    let r = get(
        &format!("{}/cases/search", running.private),
        Some(&sign(&impostor, &user_claims(ALICE, &running.clock))),
    )
    .await;
    assert_eq!(r.status(), 401);
    assert!(
        www_authenticate(&r).contains("The signature is invalid"),
        "{}",
        www_authenticate(&r)
    );
    let stranger = signing_key("kid-entra-never-published");
    let r = get(
        &format!("{}/cases/search", running.private),
        Some(&sign(&stranger, &user_claims(ALICE, &running.clock))),
    )
    .await;
    assert!(www_authenticate(&r).contains("The signature key was not found"));
}
