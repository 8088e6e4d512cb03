//! The five real connectors of `tests/data/connectors` (see its SOURCES.md) and the landscape's
//! own `contoso-cases` import, and calls through them build the backend requests they should.

use std::path::{Path, PathBuf};

use ppvnet_powerplatform::connector::{
    BackendRequest, BackendResponse, Bindings, Call, ConnectionAuth, Connector, OAuthSettings,
    Upload,
};

fn load(dir: &Path) -> Upload {
    let read = |name: &str| {
        std::fs::read(dir.join(name))
            .unwrap_or_else(|e| panic!("{}: {e}", dir.join(name).display()))
    };
    Upload {
        swagger: read("apiDefinition.swagger.json"),
        properties: read("apiProperties.json"),
        script: None,
    }
}

fn real(name: &str) -> Connector {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/connectors")
        .join(name);
    Connector::import(name, &load(&dir)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn contoso() -> Connector {
    let dir =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../scenarios/connectors/contoso-cases");
    Connector::import("contoso-cases", &load(&dir)).unwrap_or_else(|e| panic!("contoso-cases: {e}"))
}

fn oauth(c: &Connector) -> &OAuthSettings {
    match &c.auth {
        ConnectionAuth::OAuth(settings) => settings,
        ConnectionAuth::None => panic!("{} has no OAuth settings", c.name),
    }
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect()
}

fn call(method: &str, path: &str, query: &str) -> Call {
    Call {
        method: method.to_string(),
        path: path.to_string(),
        query: query.to_string(),
        ..Call::default()
    }
}

#[test]
fn graph_connectors_import_with_their_operations_and_aad_settings() {
    for (name, operations) in [
        ("AzureADPhoneMethods", 7),
        ("AzureADRiskyUsers", 3),
        ("AzureAdIp", 5),
    ] {
        let c = real(name);
        assert_eq!(c.operations.len(), operations, "{name}");
        assert_eq!(
            (c.host.as_str(), c.base_path.as_str(), c.scheme.as_str()),
            ("graph.microsoft.com", "/", "https")
        );
        assert!(c.policies.is_empty(), "{name}");
        let auth = oauth(&c);
        assert_eq!(
            auth.resource_uri.as_deref(),
            Some("https://graph.microsoft.com"),
            "{name}"
        );
        assert_eq!(auth.tenant_id.as_deref(), Some("common"));
        assert_eq!(auth.login_uri.as_deref(), Some("https://login.windows.net"));
        assert!(!auth.on_behalf_of && !auth.service_principal, "{name}");
        // `token:TenantId` is a service-principal parameter, not a connection parameter.
        assert!(c.connection_parameters.is_empty(), "{name}");
    }
    let ip = real("AzureAdIp");
    assert_eq!(oauth(&ip).identity_provider, "aadcertificate");
    assert_eq!(oauth(&ip).redirect_mode, "global");
    assert_eq!(oauth(&real("AzureADPhoneMethods")).identity_provider, "aad");
}

#[test]
fn phone_methods_literal_segments_beat_parameters() {
    let c = real("AzureADPhoneMethods");
    let path = "/beta/users/u1/authentication/phoneMethods/3179e48a-750b-4051-897c-87b9720928f7/enableSmsSignIn";
    assert_eq!(
        c.operation("post", path).map(|o| o.id.as_str()),
        Some("EnableSmsSignin")
    );
    let get = "/beta/users/u1/authentication/phoneMethods/3179e48a-750b-4051-897c-87b9720928f7";
    assert_eq!(
        c.operation("GET", get).map(|o| o.id.as_str()),
        Some("GetPhonemethod")
    );
    assert!(c.operation("PATCH", get).is_none());
}

#[test]
fn blob_index_tags_routes_to_the_connections_storage_account() {
    let c = real("AzureStorageBlobIndexTags");
    assert_eq!(c.operations.len(), 4);
    let templates: Vec<&str> = c.policies.iter().map(|p| p.template.as_str()).collect();
    assert_eq!(templates, ["setheader", "dynamichosturl"]);
    assert_eq!(oauth(&c).scopes, ["https://storage.azure.com/.default"]);
    let account = &c.connection_parameters["storageAccountName"];
    assert!(account.required);
    assert_eq!(
        account.display_name.as_deref(),
        Some("Storage Account Name")
    );

    let mut bindings = Bindings::default();
    bindings
        .connection_parameters
        .insert("storageAccountName".into(), "acct".into());
    // The caller's `comp` and `x-ms-version` lose to the internal defaults.
    let mut get = call("GET", "/docs/a%20b.txt", "comp=list");
    get.headers = pairs(&[("x-ms-version", "2019-01-01")]);
    let request = c.prepare(&get, &bindings).expect("prepared");
    assert_eq!(
        request,
        BackendRequest {
            operation_id: "GetBlobTags".into(),
            method: "GET".into(),
            url: "https://acct.blob.core.windows.net/docs/a%20b.txt?comp=tags".into(),
            headers: pairs(&[
                ("x-ms-version", "2020-10-02"),
                ("Host", "acct.blob.core.windows.net")
            ]),
            body: None,
        }
    );
    let missing = c.prepare(&get, &Bindings::default());
    assert_eq!(
        missing.map_err(|e| e.to_string()),
        Err(
            "The connection parameter 'storageAccountName' has no value in this connection.".into()
        )
    );
}

#[test]
fn lighthouse_imports_first_party_settings_and_pages_through_the_connector() {
    let c = real("M365Lighthouse");
    assert_eq!(c.operations.len(), 23);
    assert_eq!(c.base_path, "/beta/");
    let auth = oauth(&c);
    assert_eq!(auth.redirect_mode, "GlobalPerConnector");
    assert!(auth.on_behalf_of);
    // Two `clientId` keys: serde_json keeps the last one.
    assert_eq!(auth.client_id, "AzureActiveDirectoryClientId");
    assert_eq!(
        auth.login_uri.as_deref(),
        Some("https://login.microsoftonline.com")
    );
    assert_eq!(auth.scopes.len(), 7);
    assert_eq!(c.policies.len(), 1);
    assert_eq!(c.policies[0].template, "updatenextlink");
    assert_eq!(c.policies[0].operations.len(), 23);

    let bindings = Bindings {
        connection_url: Some("https://emea.azure-apim.net/apim/m365lighthouse/c1".into()),
        ..Bindings::default()
    };
    let list = call(
        "GET",
        "/tenantRelationships/managedTenants/tenants",
        "$top=5&$count=true&$filter=a%20eq%20'b'",
    );
    let request = c.prepare(&list, &bindings).expect("prepared");
    assert_eq!(
        request.url,
        "https://graph.microsoft.com/beta/tenantRelationships/managedTenants/tenants?$top=5&$filter=a%20eq%20%27b%27&$count=true"
    );
    let next = "https://graph.microsoft.com/beta/tenantRelationships/managedTenants/tenants?$top=5&$skiptoken=X1";
    let body = serde_json::json!({"value": [], "@odata.nextLink": next});
    let response = BackendResponse {
        status: 200,
        headers: vec![],
        body: body.to_string().into_bytes(),
    };
    let outcome = c.on_response(&request, &list, response, &bindings);
    let got: serde_json::Value = serde_json::from_slice(&outcome.response.body).expect("json");
    assert_eq!(
        got["@odata.nextLink"],
        "https://emea.azure-apim.net/apim/m365lighthouse/c1/tenantRelationships/managedTenants/tenants?$top=5&$skiptoken=X1"
    );
    assert_eq!(outcome.policy_error, None);
}

#[test]
fn contoso_cases_imports_with_service_principal_support() {
    let c = contoso();
    assert_eq!(c.title, "Contoso Cases");
    let ids: Vec<&str> = c.operations.iter().map(|o| o.id.as_str()).collect();
    assert_eq!(ids, ["SearchCases", "GetCase"]);
    let auth = oauth(&c);
    assert!(auth.service_principal && auth.on_behalf_of);
    assert_eq!(auth.resource_uri.as_deref(), Some("api://contoso-cases"));
    let mut bindings = Bindings::default();
    bindings.environment_variables.insert(
        "cr_CasesClientId".into(),
        "11111111-2222-3333-4444-555555555555".into(),
    );
    assert_eq!(
        Connector::expand(&auth.client_id, &bindings).as_deref(),
        Ok("11111111-2222-3333-4444-555555555555")
    );
    assert!(
        Connector::expand(auth.client_secret.as_deref().unwrap_or_default(), &bindings).is_err()
    );
}

#[test]
fn contoso_cases_search_and_get_build_the_backend_requests() {
    let c = contoso();
    // The host is the environment's `cr_CasesApiHost` (Host accepts environment variables,
    // learn.microsoft.com/connectors/custom-connectors/environment-variables): each environment
    // calls its own API.
    let unbound = c.prepare(&call("GET", "/cases/search", ""), &Bindings::default());
    assert!(
        unbound
            .map_err(|e| e.to_string())
            .is_err_and(|e| e.contains("cr_CasesApiHost")),
        "an undefined host variable is named"
    );
    let mut bindings = Bindings::default();
    bindings.environment_variables.insert(
        "cr_CasesApiHost".into(),
        "cases-api-prod.azurewebsites.net".into(),
    );
    // `top` has a default of 25 but is not internal: omitted stays omitted; `extra` is not declared.
    let search = c.prepare(
        &call(
            "GET",
            "/cases/search",
            "q=printer+jam&extra=1&status=active",
        ),
        &bindings,
    );
    assert_eq!(
        search.map(|r| r.url),
        Ok(
            "https://cases-api-prod.azurewebsites.net/cases/search?q=printer%20jam&status=active"
                .into()
        )
    );
    let get = c
        .prepare(&call("GET", "/cases/CAS-0000042", ""), &bindings)
        .expect("prepared");
    assert_eq!(get.operation_id, "GetCase");
    assert_eq!(
        get.url,
        "https://cases-api-prod.azurewebsites.net/cases/CAS-0000042"
    );
    let bad = c.prepare(&call("GET", "/cases/search", "top=500"), &bindings);
    assert_eq!(
        bad.map_err(|e| e.to_string()),
        Err("The parameter 'top' (query) must be at most 100; got '500'.".into())
    );
}
