//! `GET /api/v1/openapi.json`: the API as an OpenAPI 3.1 document, built from the route table
//! ([`super::routes`]) that also builds the router, so that the two cannot disagree: every
//! route served is described, with its path parameters, who may call it (`security` and
//! `x-required-permission`), whether it is audited, and the error answers the guard gives.
//!
//! Request and answer bodies and query parameters have real schemas: each route in the table
//! names the types its handler reads and answers (`takes`, `returns`, `query`), and schemars
//! derives their JSON Schemas from the same Rust types serde serialises, so the two cannot
//! disagree; named types become `components/schemas`. The document is checked in as
//! `docs/openapi.json`, from which the dashboard generates its TypeScript types
//! (`dashboard/src/api/schema.d.ts`); a test fails when the two differ, and
//! `tests/tests/openapi.rs` validates real answers against it.

use std::collections::{BTreeMap, BTreeSet};

use axum::Json;
use schemars::SchemaGenerator;
use schemars::generate::SchemaSettings;
use serde_json::{Value, json};

use super::{Access, Audit, RequestBody, ResponseBody, Route, routes};

/// Where named schemas live in an OpenAPI 3.1 document.
const COMPONENTS: &str = "#/components/schemas/";

/// Where the request side's named schemas are referenced until [`merge`] gives them their
/// final names in [`COMPONENTS`]; no such path is left in the document.
const REQUEST_COMPONENTS: &str = "#/components/x-request-schemas/";

/// What a request-side schema is named when the same type serialises differently from how it
/// deserialises (a field with `#[serde(default)]` may be left out of a request, but is always
/// in an answer).
const INPUT_SUFFIX: &str = "Input";

/// The document. Built per request: it is small, and rarely asked for.
pub(super) async fn document() -> Json<Value> {
    Json(build(&routes()))
}

/// Two generators, because serde's two directions differ and the document describes both:
/// answers are what `Serialize` writes (an `Option` field without `skip_serializing_if` is
/// always present, as `null` at least, so it is required), request bodies and query strings
/// what `Deserialize` accepts (the same field may be left out).
struct Generators {
    answers: SchemaGenerator,
    requests: SchemaGenerator,
}

impl Generators {
    fn new() -> Generators {
        Generators {
            answers: SchemaSettings::draft2020_12()
                .for_serialize()
                .with(|s| s.definitions_path = COMPONENTS.into())
                .into_generator(),
            requests: SchemaSettings::draft2020_12()
                .for_deserialize()
                .with(|s| s.definitions_path = REQUEST_COMPONENTS.into())
                .into_generator(),
        }
    }
}

/// The document for `routes`.
pub fn build(routes: &[Route]) -> Value {
    let mut generators = Generators::new();
    let mut paths: BTreeMap<String, serde_json::Map<String, Value>> = BTreeMap::new();
    for route in routes {
        let path = openapi_path(route.path);
        let operation = operation(route, &mut generators);
        paths
            .entry(path)
            .or_default()
            .insert(route.method.as_str().to_lowercase(), operation);
    }
    let (mut schemas, names) = merge(
        generators.answers.take_definitions(true),
        generators.requests.take_definitions(true),
    );
    schemas.insert("Error".into(), error_schema());
    let mut paths = json!(paths);
    rename_request_refs(&mut paths, &names);
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
            "schemas": schemas,
        },
    })
}

/// Puts the two sides' named schemas into one `components/schemas`: a type that reads as it
/// writes (most of them, and every enum) is there once, under its name; one that does not gets
/// a second entry, `<Name>Input`, for the request side. A schema that refers to a split one
/// differs between the sides too, so splitting repeats until nothing changes. Returns the
/// schemas and the final name of every request-side schema.
fn merge(
    answers: serde_json::Map<String, Value>,
    requests: serde_json::Map<String, Value>,
) -> (BTreeMap<String, Value>, BTreeMap<String, String>) {
    let mut split: BTreeSet<String> = BTreeSet::new();
    let final_names = |split: &BTreeSet<String>| -> BTreeMap<String, String> {
        requests
            .keys()
            .map(|name| {
                let final_name = if split.contains(name) {
                    format!("{name}{INPUT_SUFFIX}")
                } else {
                    name.clone()
                };
                (name.clone(), final_name)
            })
            .collect()
    };
    loop {
        let names = final_names(&split);
        let mut changed = false;
        for (name, schema) in &requests {
            let Some(answer) = answers.get(name) else {
                continue;
            };
            if split.contains(name) {
                continue;
            }
            let mut renamed = schema.clone();
            rename_request_refs(&mut renamed, &names);
            if renamed != *answer {
                split.insert(name.clone());
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }
    let names = final_names(&split);
    let mut schemas: BTreeMap<String, Value> = answers.into_iter().collect();
    for (name, mut schema) in requests {
        rename_request_refs(&mut schema, &names);
        let final_name = &names[&name];
        if split.contains(&name) {
            assert!(
                !schemas.contains_key(final_name),
                "two types would both be named {final_name} in the OpenAPI document"
            );
        }
        schemas.insert(final_name.clone(), schema);
    }
    (schemas, names)
}

/// Points every reference to a request-side schema at its final name in `components/schemas`.
fn rename_request_refs(value: &mut Value, names: &BTreeMap<String, String>) {
    match value {
        Value::Object(object) => {
            for (key, v) in object.iter_mut() {
                if key == "$ref"
                    && let Some(name) = v.as_str().and_then(|r| r.strip_prefix(REQUEST_COMPONENTS))
                {
                    let name = names.get(name).map_or(name, String::as_str);
                    *v = Value::String(format!("{COMPONENTS}{name}"));
                } else {
                    rename_request_refs(v, names);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| rename_request_refs(v, names)),
        _ => {}
    }
}

/// `{"error": {"code", "message"}}`, every failure's shape; some add fields (a capability
/// difference), hence no `additionalProperties: false`.
fn error_schema() -> Value {
    json!({
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
    })
}

fn schema(f: super::SchemaFn, generator: &mut SchemaGenerator) -> Value {
    serde_json::to_value(f(generator)).expect("schemas serialise")
}

/// The query parameters a struct's schema describes: one per property, required when the
/// struct requires it. A parameter is absent or has a value, never `null`, so the `null` that
/// an `Option` adds to a property's schema is left out.
fn query_parameters(f: super::SchemaFn, generator: &mut SchemaGenerator) -> Vec<Value> {
    let reference = schema(f, generator);
    let resolved = match reference["$ref"].as_str() {
        Some(r) => generator
            .definitions()
            .get(r.trim_start_matches(REQUEST_COMPONENTS))
            .cloned()
            .unwrap_or(Value::Null),
        None => reference,
    };
    let required: Vec<&str> = resolved["required"]
        .as_array()
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    resolved["properties"]
        .as_object()
        .map(|props| {
            props
                .iter()
                .map(|(name, property)| {
                    let mut property = without_null(property.clone());
                    let description = property
                        .as_object_mut()
                        .and_then(|p| p.remove("description"));
                    let mut parameter = json!({
                        "name": name,
                        "in": "query",
                        "required": required.contains(&name.as_str()),
                        "schema": property,
                    });
                    if let Some(d) = description {
                        parameter["description"] = d;
                    }
                    parameter
                })
                .collect()
        })
        .unwrap_or_default()
}

/// `schema` without the `null` an `Option` adds: `{"type": ["integer", "null"]}` becomes
/// `{"type": "integer"}`, `{"anyOf": [S, {"type": "null"}]}` becomes S, and a `null` default
/// goes.
fn without_null(schema: Value) -> Value {
    let Value::Object(mut object) = schema else {
        return schema;
    };
    if object.get("default") == Some(&Value::Null) {
        object.remove("default");
    }
    if let Some(Value::Array(types)) = object.get_mut("type") {
        types.retain(|t| t != "null");
        if types.len() == 1 {
            let only = types.remove(0);
            object.insert("type".into(), only);
        }
    }
    if let Some(Value::Array(any_of)) = object.get("anyOf") {
        let rest: Vec<&Value> = any_of
            .iter()
            .filter(|s| s.get("type") != Some(&json!("null")))
            .collect();
        if let [only] = rest[..] {
            let only = only.clone();
            object.remove("anyOf");
            if let Value::Object(inner) = only {
                object.extend(inner);
            }
        }
    }
    Value::Object(object)
}

/// The document as checked in: pretty, keys in order, a final newline.
pub fn pretty(doc: &Value) -> String {
    let mut text = serde_json::to_string_pretty(doc).expect("the document serialises");
    text.push('\n');
    text
}

/// `/api/v1/alerts/{id}` stays as it is; axum's catch-all `{*path}` becomes `{path}`.
fn openapi_path(path: &str) -> String {
    path.replace("{*", "{")
}

fn operation(route: &Route, generators: &mut Generators) -> Value {
    let mut parameters: Vec<Value> = path_parameters(route.path)
        .into_iter()
        .map(|name| json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}}))
        .collect();
    if let Some(query) = route.query {
        parameters.extend(query_parameters(query, &mut generators.requests));
    }
    let error = |description: &str| {
        json!({
            "description": description,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
        })
    };
    let mut responses = serde_json::Map::new();
    let success = match route.response {
        ResponseBody::Json(f) => {
            json!({"description": "Success", "content": {"application/json": {"schema": schema(f, &mut generators.answers)}}})
        }
        ResponseBody::Empty => json!({"description": "Done; no content"}),
        ResponseBody::Html => {
            json!({"description": "The console's page", "content": {"text/html": {"schema": {"type": "string"}}}})
        }
        ResponseBody::Asset => {
            json!({"description": "A file of the console", "content": {"*/*": {"schema": {"type": "string", "format": "binary"}}}})
        }
        ResponseBody::Upgrade => json!({"description": "Switching to the WebSocket protocol"}),
        ResponseBody::Metrics => {
            json!({"description": "Metrics in the OpenMetrics text format", "content": {"application/openmetrics-text": {"schema": {"type": "string"}}}})
        }
        ResponseBody::Redirect => json!({
            "description": "A redirect for the browser to follow",
            "headers": {"Location": {"schema": {"type": "string"}}},
        }),
        ResponseBody::Unspecified => json!({"description": "Success (undescribed)"}),
    };
    for status in std::iter::once(route.status).chain(route.also.iter().copied()) {
        responses.insert(status.to_string(), success.clone());
    }
    responses.insert("400".into(), error("Malformed request"));
    responses.insert(
        "422".into(),
        error("Invalid request (the message names the field)"),
    );
    // Every other failure of the API (404, 409, 413, 500, 503, ...) has the same shape; the
    // console's pages and files are not the API's and answer plain HTTP errors.
    if !matches!(route.response, ResponseBody::Html | ResponseBody::Asset) {
        responses.insert(
            "default".into(),
            error("Any other failure: not found, conflict, too large, unavailable"),
        );
    }
    let mut op = serde_json::Map::new();
    op.insert("summary".into(), json!(route.summary));
    let id = operation_id(route.method.as_str(), route.path);
    // The console's page paths echo the API's (`/alerts/{id}`): keep their ids apart.
    let id = if matches!(route.response, ResponseBody::Html | ResponseBody::Asset) {
        format!("console_{id}")
    } else {
        id
    };
    op.insert("operationId".into(), json!(id));
    let tag = if matches!(route.response, ResponseBody::Html | ResponseBody::Asset) {
        "dashboard".to_owned()
    } else {
        tag(route.path)
    };
    op.insert("tags".into(), json!([tag]));
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
    match route.request {
        RequestBody::Binary => {
            op.insert(
                "requestBody".into(),
                json!({"required": true, "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}}),
            );
        }
        RequestBody::Json {
            schema: f,
            required,
        } => {
            op.insert(
                "requestBody".into(),
                json!({"required": required, "content": {"application/json": {"schema": schema(f, &mut generators.requests)}}}),
            );
        }
        RequestBody::None => {}
    }
    op.insert("responses".into(), Value::Object(responses));
    Value::Object(op)
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
    if rest.is_empty() {
        return format!("{}_index", method.to_lowercase());
    }
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
        let doc = build(&routes());
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

    /// Every route says what it answers, and every POST and PUT what it takes (or that it
    /// takes nothing): a new route cannot leave its bodies undescribed.
    #[test]
    fn every_route_describes_its_bodies() {
        for route in routes() {
            assert!(
                !matches!(route.response, ResponseBody::Unspecified),
                "{} {} does not say what it answers (.returns::<T>(), .no_content(), ...)",
                route.method,
                route.path
            );
        }
        let doc = build(&routes());
        let takes_nothing = [
            "/api/v1/auth/logout",
            "/api/v1/auth/signing-keys/rotate",
            "/api/v1/addons/{id}/rollback",
            "/api/v1/addons/{id}/release",
            "/api/v1/addons/{id}/enable",
            "/api/v1/addons/{id}/disable",
            "/api/v1/targets/{id}/enable",
            "/api/v1/targets/{id}/disable",
            "/api/v1/targets/{id}/poll",
        ];
        for route in routes() {
            if matches!(route.method.as_str(), "POST" | "PUT")
                && !takes_nothing.contains(&route.path)
            {
                let op =
                    &doc["paths"][openapi_path(route.path)][route.method.as_str().to_lowercase()];
                assert!(
                    op["requestBody"]["content"].is_object(),
                    "{} {} takes an undescribed body",
                    route.method,
                    route.path
                );
            }
        }
    }

    #[test]
    fn bodies_and_queries_have_real_schemas() {
        let doc = build(&routes());
        let schemas = &doc["components"]["schemas"];
        let alert = &schemas["StoredAlert"];
        assert_eq!(alert["type"], "object", "{alert}");
        assert!(alert["properties"]["severity"].is_object(), "{alert}");
        assert!(
            schemas["Severity"]["enum"]
                .as_array()
                .is_some_and(|e| e.len() == 5),
            "{}",
            schemas["Severity"]
        );
        let list = &doc["paths"]["/api/v1/alerts"]["get"];
        assert_eq!(
            list["responses"]["200"]["content"]["application/json"]["schema"]["$ref"],
            "#/components/schemas/AlertPage"
        );
        let names: Vec<&str> = list["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["name"].as_str().unwrap())
            .collect();
        for q in [
            "status", "severity", "addon", "device", "q", "limit", "before",
        ] {
            assert!(names.contains(&q), "{names:?}");
        }
        let note = &doc["paths"]["/api/v1/alerts/{id}/notes"]["post"];
        assert!(note["responses"]["201"].is_object(), "{note}");
        assert!(doc["paths"]["/api/v1/silences/{id}"]["delete"]["responses"]["204"].is_object());
        // Every reference resolves.
        let text = doc.to_string();
        for piece in text.split("\"$ref\":\"#/components/schemas/").skip(1) {
            let name = piece.split('"').next().unwrap();
            assert!(
                schemas[name].is_object() || schemas[name].is_boolean(),
                "dangling $ref {name}"
            );
        }
    }

    /// `docs/openapi.json` is the document the code builds: the dashboard's TypeScript types
    /// are generated from that file, so a change of the API that is not written there fails
    /// here. `OPSCONDUCTOR_UPDATE_OPENAPI=1 cargo test -p opsconductor --lib openapi` (or
    /// `opsconductor openapi > docs/openapi.json`) rewrites it.
    #[test]
    fn the_checked_in_document_is_current() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/openapi.json");
        let current = pretty(&build(&routes()));
        if std::env::var_os("OPSCONDUCTOR_UPDATE_OPENAPI").is_some() {
            std::fs::write(&path, &current).unwrap();
            return;
        }
        let checked_in = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            checked_in == current,
            "docs/openapi.json is not the API the code serves: regenerate it with \
             `OPSCONDUCTOR_UPDATE_OPENAPI=1 cargo test -p opsconductor --lib openapi`, then \
             rebuild the dashboard (its types come from it)"
        );
    }

    /// Answers are described as serde writes them, request bodies as it reads them: an
    /// `Option` is always in an answer (as `null` at least) unless `skip_serializing_if` leaves
    /// it out, and a `#[serde(default)]` field may be left out of a request. A type that
    /// differs between the two has a second schema for requests.
    #[test]
    fn answers_are_described_as_serialised_and_requests_as_deserialised() {
        let doc = build(&routes());
        let schemas = &doc["components"]["schemas"];
        let required = |name: &str| -> Vec<String> {
            schemas[name]["required"]
                .as_array()
                .map(|r| r.iter().map(|v| v.as_str().unwrap().to_owned()).collect())
                .unwrap_or_default()
        };
        assert!(required("StoredAlert").contains(&"acknowledged_at".to_owned()));
        assert!(required("AlertPage").contains(&"next_before".to_owned()));
        // `skip_serializing_if`: absent on the last page.
        assert!(!required("AuditPage").contains(&"next_before".to_owned()));
        assert!(!required("BulkResult").contains(&"alert".to_owned()));
        assert_eq!(
            required("SilenceMatchers").len(),
            4,
            "{}",
            schemas["SilenceMatchers"]
        );
        assert!(required("SilenceMatchersInput").is_empty());
        assert_eq!(
            schemas["SilenceSpec"]["properties"]["matchers"]["$ref"],
            "#/components/schemas/SilenceMatchersInput"
        );
        assert_eq!(
            schemas["SilenceView"]["properties"]["matchers"]["$ref"],
            "#/components/schemas/SilenceMatchers"
        );
        // A type that reads as it writes is there once.
        assert!(schemas["SeverityInput"].is_null());
        let text = doc.to_string();
        assert!(
            !text.contains(REQUEST_COMPONENTS),
            "a request reference was left"
        );
        // schemars numbers a second type with the same name (`Stats2`): the TypeScript types
        // would carry that name, so two types must not share one.
        for name in schemas.as_object().unwrap().keys() {
            assert!(
                !name.ends_with(|c: char| c.is_ascii_digit()),
                "two types are named {}",
                name.trim_end_matches(|c: char| c.is_ascii_digit())
            );
        }
    }

    /// A query parameter is absent or has a value; `null` cannot be sent.
    #[test]
    fn query_parameters_are_typed_and_never_null() {
        let doc = build(&routes());
        for (path, ops) in doc["paths"].as_object().unwrap() {
            for (method, op) in ops.as_object().unwrap() {
                for parameter in op["parameters"].as_array().into_iter().flatten() {
                    let schema = parameter["schema"].to_string();
                    assert!(
                        !schema.contains("null"),
                        "{method} {path} parameter {}: {schema}",
                        parameter["name"]
                    );
                }
            }
        }
        let alerts = &doc["paths"]["/api/v1/alerts"]["get"]["parameters"];
        let parameter = |name: &str| {
            alerts
                .as_array()
                .unwrap()
                .iter()
                .find(|p| p["name"] == name)
                .unwrap()["schema"]
                .clone()
        };
        assert_eq!(
            parameter("status"),
            json!({"$ref": "#/components/schemas/AlertStatus"})
        );
        assert_eq!(
            parameter("since"),
            json!({"type": "string", "format": "date-time"})
        );
        assert_eq!(parameter("limit")["maximum"], super::super::MAX_PAGE);
        let ws = &doc["paths"]["/ws"]["get"]["parameters"];
        assert_eq!(ws[0]["name"], "token", "{ws}");
    }

    /// Query parameters the handlers read as text and parse with `FromStr` are described by
    /// the enums' schemas, which come from serde: the two spellings must be one.
    #[test]
    fn query_values_are_their_serde_names() {
        fn same<T: serde::Serialize + std::str::FromStr + PartialEq + std::fmt::Debug>(
            all: &[T],
            name: impl Fn(&T) -> &'static str,
        ) {
            for value in all {
                assert_eq!(serde_json::to_value(value).unwrap(), json!(name(value)));
                assert_eq!(name(value).parse::<T>().ok().as_ref(), Some(value));
            }
        }
        same(&crate::alert::AlertStatus::ALL, |v| v.as_str());
        same(&crate::alert::Severity::ALL, |v| v.as_str());
        same(&crate::silence::SilenceState::ALL, |v| v.as_str());
        same(&crate::store::AuditOutcome::ALL, |v| v.as_str());
    }

    /// Every failure of the API has the one error shape, including those the route does not
    /// list by status.
    #[test]
    fn api_failures_are_described() {
        let doc = build(&routes());
        for route in routes() {
            let op = &doc["paths"][openapi_path(route.path)][route.method.as_str().to_lowercase()];
            let console = matches!(route.response, ResponseBody::Html | ResponseBody::Asset);
            assert_eq!(
                op["responses"]["default"]["content"]["application/json"]["schema"]["$ref"]
                    .as_str(),
                (!console).then_some("#/components/schemas/Error"),
                "{} {}",
                route.method,
                route.path
            );
        }
    }

    #[test]
    fn without_null_keeps_the_rest() {
        assert_eq!(
            without_null(json!({"type": ["integer", "null"], "format": "int64", "default": null})),
            json!({"type": "integer", "format": "int64"})
        );
        assert_eq!(
            without_null(json!({"anyOf": [{"$ref": "#/x"}, {"type": "null"}], "description": "d"})),
            json!({"$ref": "#/x", "description": "d"})
        );
        assert_eq!(
            without_null(json!({"type": "boolean"})),
            json!({"type": "boolean"})
        );
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
