//! `GET /api/v1/openapi.json`: the API as an OpenAPI 3.1 document, built from the route table
//! ([`super::routes`]) that also builds the router, so that the two cannot disagree: every
//! route served is described, with its path parameters, who may call it (`security` and
//! `x-required-permission`), whether it is audited, and the error answers the guard gives.
//!
//! Bodies are described as JSON objects without field schemas (the field reference is
//! README.md's API section), except the file uploads (`BINARY_UPLOADS`), which are
//! `application/octet-stream`. (utoipa would give field schemas too, at the cost of annotating
//! every handler and type twice; the route table is what must never drift.)

use std::collections::BTreeMap;

use axum::Json;
use serde_json::{Value, json};

use super::{Access, Audit, Route, routes};

/// The document. Built per request: it is small, and rarely asked for.
pub(super) async fn document() -> Json<Value> {
    Json(build(&routes()))
}

/// The document for `routes`.
pub fn build(routes: &[Route]) -> Value {
    let mut paths: BTreeMap<String, serde_json::Map<String, Value>> = BTreeMap::new();
    for route in routes {
        let path = openapi_path(route.path);
        let operation = operation(route);
        paths
            .entry(path)
            .or_default()
            .insert(route.method.as_str().to_lowercase(), operation);
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "OpsConductor",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Alert-ingestion runtime. Authenticate with `Authorization: Bearer <access token from POST /api/v1/auth/login, or API key>`. Every error answer is `{\"error\": {\"code\", \"message\"}}`.",
        },
        "paths": paths,
        "components": {
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "A JWT access token or an API key (`oc_...`).",
                },
                "webhook": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "X-OpsConductor-Token",
                    "description": "Per addon, when its settings ask for it: a shared token, or an HMAC-SHA256 signature in X-OpsConductor-Signature over `{timestamp}.{body}` with X-OpsConductor-Timestamp.",
                },
            },
            "schemas": {
                "Error": {
                    "type": "object",
                    "required": ["error"],
                    "properties": {
                        "error": {
                            "type": "object",
                            "required": ["code", "message"],
                            "properties": {
                                "code": {"type": "string"},
                                "message": {"type": "string"},
                            },
                        },
                    },
                },
            },
        },
    })
}

/// `/api/v1/alerts/{id}` stays as it is; axum's catch-all `{*path}` becomes `{path}`.
fn openapi_path(path: &str) -> String {
    path.replace("{*", "{")
}

fn operation(route: &Route) -> Value {
    let parameters: Vec<Value> = path_parameters(route.path)
        .into_iter()
        .map(|name| json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}}))
        .collect();
    let error = |description: &str| {
        json!({
            "description": description,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
        })
    };
    let mut responses = serde_json::Map::new();
    responses.insert(
        "200".into(),
        json!({"description": "Success", "content": {"application/json": {"schema": {}}}}),
    );
    responses.insert("400".into(), error("Malformed request"));
    responses.insert(
        "422".into(),
        error("Invalid request (the message names the field)"),
    );
    let mut op = serde_json::Map::new();
    op.insert("summary".into(), json!(route.summary));
    op.insert(
        "operationId".into(),
        json!(operation_id(route.method.as_str(), route.path)),
    );
    op.insert("tags".into(), json!([tag(route.path)]));
    if !parameters.is_empty() {
        op.insert("parameters".into(), json!(parameters));
    }
    match route.access {
        Access::Public => {
            op.insert("security".into(), json!([]));
        }
        Access::Webhook => {
            op.insert("security".into(), json!([{}, {"webhook": []}]));
            responses.insert(
                "401".into(),
                error("The addon's webhook authentication failed"),
            );
            responses.insert(
                "403".into(),
                error("The client address is not allowed for this webhook"),
            );
        }
        Access::Socket => {
            op.insert("security".into(), json!([{"bearer": []}]));
            op.insert(
                "description".into(),
                json!("Upgrades to a WebSocket. The token goes in the Authorization header, the `token` query parameter, or the first message `{\"type\": \"auth\", \"token\": ...}`."),
            );
            responses.insert("401".into(), error("Invalid token"));
        }
        Access::Authenticated | Access::Requires(_) => {
            op.insert("security".into(), json!([{"bearer": []}]));
            responses.insert("401".into(), error("No valid access token or API key"));
            responses.insert("429".into(), error("Rate limited; see Retry-After"));
            if let Access::Requires(permission) = route.access {
                op.insert("x-required-permission".into(), json!(permission.as_str()));
                let roles: Vec<&str> = crate::auth::Role::ALL
                    .into_iter()
                    .filter(|r| r.allows(permission))
                    .map(crate::auth::Role::as_str)
                    .collect();
                op.insert("x-roles".into(), json!(roles));
                responses.insert(
                    "403".into(),
                    error("The caller's role lacks the permission"),
                );
            }
        }
    }
    if let Audit::As(action) = route.audit {
        op.insert("x-audit-action".into(), json!(action));
    }
    if route.audit == Audit::ByService {
        op.insert("x-audited".into(), json!(true));
    }
    if is_binary_upload(route) {
        op.insert(
            "requestBody".into(),
            json!({"required": true, "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}}),
        );
    } else if matches!(route.method.as_str(), "POST" | "PUT") {
        op.insert(
            "requestBody".into(),
            json!({"required": false, "content": {"application/json": {"schema": {"type": "object"}}}}),
        );
    }
    op.insert("responses".into(), Value::Object(responses));
    Value::Object(op)
}

/// Routes whose body is a file rather than JSON: `(method, path)`.
const BINARY_UPLOADS: &[(&str, &str)] = &[
    // An addon bundle file, as `opsconductor addon pack` writes it.
    ("POST", "/api/v1/addons"),
];

fn is_binary_upload(route: &Route) -> bool {
    BINARY_UPLOADS.contains(&(route.method.as_str(), route.path))
}

fn path_parameters(path: &str) -> Vec<String> {
    path.split('/')
        .filter_map(|segment| segment.strip_prefix('{')?.strip_suffix('}'))
        .map(|name| name.trim_start_matches('*').to_owned())
        .collect()
}

/// `GET /api/v1/alerts/{id}/history` → `get_alerts_id_history`.
fn operation_id(method: &str, path: &str) -> String {
    let rest: Vec<String> = path
        .trim_start_matches("/api/v1")
        .split('/')
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.trim_matches(|c| c == '{' || c == '}' || c == '*')
                .replace(['-', '.'], "_")
        })
        .collect();
    format!("{}_{}", method.to_lowercase(), rest.join("_"))
}

/// The first path segment after `/api/v1` (`alerts`, `auth`), or the root segment.
fn tag(path: &str) -> String {
    path.trim_start_matches("/api/v1")
        .split('/')
        .find(|s| !s.is_empty())
        .unwrap_or("root")
        .trim_end_matches(".json")
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_route_is_in_the_document_once() {
        let routes = routes();
        let doc = build(&routes);
        let mut ids = std::collections::HashSet::new();
        for route in &routes {
            let op = &doc["paths"][openapi_path(route.path)][route.method.as_str().to_lowercase()];
            assert!(op.is_object(), "{} {} is missing", route.method, route.path);
            assert_eq!(op["summary"], route.summary);
            assert!(
                ids.insert(op["operationId"].as_str().unwrap().to_owned()),
                "duplicate operationId {}",
                op["operationId"]
            );
        }
        let described: usize = doc["paths"]
            .as_object()
            .unwrap()
            .values()
            .map(|ops| ops.as_object().unwrap().len())
            .sum();
        assert_eq!(
            described,
            routes.len(),
            "the document describes only routes served"
        );
    }

    #[test]
    fn operations_say_who_may_call_them() {
        let doc = build(&routes());
        let ack = &doc["paths"]["/api/v1/alerts/{id}/acknowledge"]["post"];
        assert_eq!(ack["x-required-permission"], "act_on_alerts");
        assert_eq!(ack["x-roles"], json!(["admin", "operator", "service"]));
        assert_eq!(ack["x-audit-action"], "alert.acknowledge");
        assert_eq!(ack["parameters"][0]["name"], "id");
        assert_eq!(
            doc["paths"]["/api/v1/auth/login"]["post"]["security"],
            json!([])
        );
        assert_eq!(
            doc["paths"]["/webhooks/{path}"]["post"]["parameters"][0]["name"],
            "path"
        );
    }

    #[test]
    fn the_bundle_upload_takes_a_binary_body() {
        let routes = routes();
        for (method, path) in BINARY_UPLOADS {
            assert!(
                routes
                    .iter()
                    .any(|r| r.method.as_str() == *method && r.path == *path),
                "{method} {path} is a route"
            );
        }
        let doc = build(&routes);
        let upload = &doc["paths"]["/api/v1/addons"]["post"]["requestBody"];
        assert_eq!(upload["required"], true);
        assert_eq!(
            upload["content"],
            json!({"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}})
        );
        // Other bodies stay JSON.
        let settings = &doc["paths"]["/api/v1/addons/{id}/settings"]["put"]["requestBody"];
        assert!(
            settings["content"]["application/json"].is_object(),
            "{settings}"
        );
        assert!(doc["paths"]["/api/v1/addons"]["get"]["requestBody"].is_null());
    }

    #[test]
    fn operation_ids_and_tags() {
        assert_eq!(
            operation_id("GET", "/api/v1/alerts/{id}/history"),
            "get_alerts_id_history"
        );
        assert_eq!(
            operation_id("POST", "/webhooks/{*path}"),
            "post_webhooks_path"
        );
        assert_eq!(tag("/api/v1/ssh-host-keys/{endpoint}"), "ssh-host-keys");
        assert_eq!(tag("/health"), "health");
    }
}
