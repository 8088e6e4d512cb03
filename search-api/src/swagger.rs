//! The OpenAPI 2.0 document served at `/swagger.json`: the contract the custom connector
//! `scenarios/connectors/contoso-cases/apiDefinition.swagger.json` is derived from (a test keeps
//! them consistent). Power Platform custom connectors only import OpenAPI 2.0.

use serde_json::{Value, json};

use crate::generator::STATUSES;

/// Page size bounds of `/cases/search`.
pub const DEFAULT_TOP: u32 = 25;
pub const MAX_TOP: u32 = 100;

/// The document. `host` is the host name clients used (Swashbuckle also fills it from the
/// request); `scope` is the full delegated scope, e.g. `api://contoso-cases/Cases.Read`.
pub fn document(host: Option<&str>, scope: &str) -> Value {
    let mut doc = json!({
        "swagger": "2.0",
        "info": {
            "title": "Contoso Cases",
            "description": "Searches support cases in the signed-in user's context.",
            "version": "1.0"
        },
        "basePath": "/",
        "schemes": ["https"],
        "consumes": [],
        "produces": ["application/json"],
        "paths": {
            "/cases/search": {
                "get": {
                    "operationId": "SearchCases",
                    "summary": "Search cases",
                    "description": "Full-text search over the cases the caller may see, best matches first; without search text, every visible case, newest first.",
                    "parameters": [
                        {
                            "name": "q", "in": "query", "required": false, "type": "string",
                            "description": "Words to search for in title, description and customer; a trailing * searches a prefix."
                        },
                        {
                            "name": "status", "in": "query", "required": false, "type": "string",
                            "enum": STATUSES,
                            "description": "Only cases in this status."
                        },
                        {
                            "name": "top", "in": "query", "required": false, "type": "integer",
                            "format": "int32", "minimum": 1, "maximum": MAX_TOP, "default": DEFAULT_TOP,
                            "description": "Page size."
                        },
                        {
                            "name": "continuationToken", "in": "query", "required": false, "type": "string",
                            "description": "Token from the previous page to get the next one."
                        }
                    ],
                    "responses": {
                        "200": {"description": "A page of cases.", "schema": {"$ref": "#/definitions/CaseSearchResult"}},
                        "400": {"description": "Invalid parameter.", "schema": {"$ref": "#/definitions/ErrorResponse"}},
                        "401": {"description": "Missing or invalid access token.", "schema": {"$ref": "#/definitions/ErrorResponse"}},
                        "403": {"description": "The token lacks the Cases.Read scope or the Cases.Read.All role.", "schema": {"$ref": "#/definitions/ErrorResponse"}}
                    }
                }
            },
            "/cases/{id}": {
                "get": {
                    "operationId": "GetCase",
                    "summary": "Get a case",
                    "description": "One case, if the caller may see it.",
                    "parameters": [
                        {
                            "name": "id", "in": "path", "required": true, "type": "string",
                            "description": "Case id, e.g. CAS-0000042."
                        }
                    ],
                    "responses": {
                        "200": {"description": "The case.", "schema": {"$ref": "#/definitions/Case"}},
                        "401": {"description": "Missing or invalid access token.", "schema": {"$ref": "#/definitions/ErrorResponse"}},
                        "403": {"description": "The token lacks the Cases.Read scope or the Cases.Read.All role.", "schema": {"$ref": "#/definitions/ErrorResponse"}},
                        "404": {"description": "No such case, or not visible to the caller.", "schema": {"$ref": "#/definitions/ErrorResponse"}}
                    }
                }
            }
        },
        "definitions": {
            "Case": {
                "type": "object",
                "required": ["id", "title", "status", "ownerObjectId", "teamGroupId"],
                "properties": {
                    "id": {"type": "string", "description": "Case id"},
                    "title": {"type": "string", "description": "Title"},
                    "description": {"type": "string", "description": "Description"},
                    "status": {"type": "string", "enum": STATUSES, "description": "Status"},
                    "priority": {"type": "string", "enum": crate::generator::PRIORITIES, "description": "Priority"},
                    "customer": {"type": "string", "description": "Customer"},
                    "ownerObjectId": {"type": "string", "description": "Owner's object id"},
                    "teamGroupId": {"type": "string", "description": "Team group id"},
                    "createdDateTime": {"type": "string", "format": "date-time", "description": "Created"},
                    "lastModifiedDateTime": {"type": "string", "format": "date-time", "description": "Last modified"}
                }
            },
            "CaseSearchResult": {
                "type": "object",
                "properties": {
                    "value": {"type": "array", "items": {"$ref": "#/definitions/Case"}},
                    "continuationToken": {"type": "string", "description": "Present when more results follow."}
                }
            },
            "ErrorResponse": {
                "type": "object",
                "properties": {
                    "error": {
                        "type": "object",
                        "properties": {
                            "code": {"type": "string"},
                            "message": {"type": "string"}
                        }
                    }
                }
            }
        },
        "securityDefinitions": {
            "oauth2_auth": {
                "type": "oauth2",
                "flow": "accessCode",
                "authorizationUrl": "https://login.microsoftonline.com/common/oauth2/authorize",
                "tokenUrl": "https://login.microsoftonline.com/common/oauth2/token",
                "scopes": {scope: "Read the cases you may see"}
            }
        },
        "security": [{"oauth2_auth": [scope]}]
    });
    if let (Some(host), Some(obj)) = (host, doc.as_object_mut()) {
        obj.insert("host".to_owned(), Value::String(host.to_owned()));
    }
    doc
}
