//! The OpenAPI 3.1 document, generated from the endpoint table ([`super::endpoints`]) and from
//! the Rust types with schemars, the generator that writes the published JSON Schemas: the
//! command and event schemas in it are those of `docs/schema/`, moved under
//! `components/schemas`. Served at `/v1/openapi.json` and checked in as `docs/openapi.json`.
//!
//! Why not utoipa: it would need a second derive on every contract type, whose output could
//! disagree with the schemars schemas the contract publishes; one generator cannot.

use schemars::JsonSchema;
use schemars::generate::{SchemaGenerator, SchemaSettings};
use serde_json::{Map, Value, json};

use super::endpoints::{Endpoint, endpoints};

/// Builds schemas into the document's `components/schemas`.
pub struct Gen {
    schemars: SchemaGenerator,
    published: Map<String, Value>,
}

/// A function that gives the schema of a body, registering what it refers to.
pub type SchemaFn = fn(&mut Gen) -> Value;

impl Gen {
    fn new() -> Gen {
        let settings = SchemaSettings::draft2020_12()
            .with(|s| {
                s.definitions_path = "/components/schemas".into();
                s.meta_schema = None;
            })
            .for_serialize();
        Gen {
            schemars: settings.into_generator(),
            published: Map::new(),
        }
    }

    /// A response type's schema (a `$ref` for a named type).
    pub fn of<T: JsonSchema>(&mut self) -> Value {
        self.schemars.subschema_for::<T>().to_value()
    }

    /// A type's schema with everything inlined, for a query string's fields.
    pub fn inline<T: JsonSchema>(&mut self) -> Value {
        SchemaSettings::draft2020_12()
            .with(|s| {
                s.inline_subschemas = true;
                s.meta_schema = None;
            })
            .for_deserialize()
            .into_generator()
            .into_root_schema_for::<T>()
            .to_value()
    }

    /// The published command schema (docs/schema/commands.schema.json), as `Command`.
    pub fn command(&mut self) -> Value {
        self.publish("Command", crate::commands::json_schema())
    }

    /// The published event schema (docs/schema/events.schema.json), as `Event`.
    pub fn event(&mut self) -> Value {
        self.publish("Event", crate::events::kinds::json_schema())
    }

    /// Adds a published schema under `name`, its `$defs` beside it.
    fn publish(&mut self, name: &str, mut schema: Value) -> Value {
        if !self.published.contains_key(name) {
            let object = schema.as_object_mut().expect("a schema is an object");
            object.remove("$schema");
            let defs = object.remove("$defs").unwrap_or_else(|| json!({}));
            let mut moved = |name: &str, s: Value| {
                let mut text = s.to_string();
                text = text.replace("\"#/$defs/", "\"#/components/schemas/");
                self.published
                    .insert(name.to_string(), serde_json::from_str(&text).expect("JSON"));
            };
            for (def, s) in defs.as_object().cloned().unwrap_or_default() {
                moved(&def, s);
            }
            moved(name, schema);
        }
        json!({"$ref": format!("#/components/schemas/{name}")})
    }
}

/// The whole document.
pub fn document() -> Value {
    let mut generator = Gen::new();
    let mut paths = Map::new();
    for endpoint in endpoints() {
        let operation = operation(&endpoint, &mut generator);
        let item = paths
            .entry(endpoint.path.to_string())
            .or_insert_with(|| json!({}));
        item[endpoint.method.as_str().to_ascii_lowercase()] = operation;
    }
    let mut schemas = generator.schemars.take_definitions(true);
    for (name, schema) in generator.published {
        if let Some(other) = schemas.get(&name) {
            assert_eq!(
                other, &schema,
                "two different schemas are named {name}: rename one"
            );
        }
        schemas.insert(name, schema);
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "casewarden integration API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Commands in, outcomes and events out: how a CRM works with casewarden over HTTPS. Every /v1 endpoint takes a bearer token issued with `casewarden clients add`; each needs the scope it names. Errors are RFC 9457 problem details. See docs/api.md.",
            "license": {"name": "Apache-2.0", "identifier": "Apache-2.0"}
        },
        "servers": [{"url": "/", "description": "The casewarden daemon (default http://127.0.0.1:8725)"}],
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "description": "A token from `casewarden clients add NAME --scopes …`."}
            }
        }
    })
}

fn operation(e: &Endpoint, generator: &mut Gen) -> Value {
    let mut op = json!({
        "operationId": e.id,
        "summary": e.summary,
        "description": e.description,
        "tags": [e.tag],
    });
    if let Some(scope) = e.scope {
        op["security"] = json!([{"bearer": [scope.name()]}]);
        op["description"] = json!(format!("{}\n\nScope: `{}`.", e.description, scope.name()));
    } else {
        op["security"] = json!([]);
    }
    let mut params: Vec<Value> = e
        .params
        .iter()
        .map(|p| {
            json!({
                "name": p.name,
                "in": p.place,
                "required": p.place == "path",
                "description": p.description,
                "schema": (p.schema)(generator),
            })
        })
        .collect();
    if let Some(query) = e.query {
        params.extend(query_params(query(generator)));
    }
    if !params.is_empty() {
        op["parameters"] = Value::Array(params);
    }
    if let Some(body) = &e.request {
        let schema = (body.schema)(generator);
        let content: Map<String, Value> = body
            .content_types
            .iter()
            .map(|c| (c.to_string(), json!({"schema": schema})))
            .collect();
        op["requestBody"] =
            json!({"required": true, "description": body.description, "content": content});
    }
    let mut responses = Map::new();
    for r in &e.responses {
        let mut response = json!({"description": r.description});
        if let Some(schema) = r.schema {
            response["content"] = json!({r.content_type: {"schema": schema(generator)}});
        }
        responses.insert(r.status.to_string(), response);
    }
    let problem = generator.of::<super::problem::Problem>();
    for status in e.problems.iter().copied().chain(auth_problems(e)) {
        let reason = axum::http::StatusCode::from_u16(status)
            .ok()
            .and_then(|s| s.canonical_reason())
            .unwrap_or("Error");
        responses.insert(
            status.to_string(),
            json!({"description": reason, "content": {super::problem::CONTENT_TYPE: {"schema": problem}}}),
        );
    }
    op["responses"] = Value::Object(responses);
    op
}

/// A query type's fields as query parameters, each with its description and schema.
fn query_params(schema: Value) -> Vec<Value> {
    let required: Vec<&str> = schema["required"]
        .as_array()
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let Some(properties) = schema["properties"].as_object() else {
        return Vec::new();
    };
    properties
        .iter()
        .map(|(name, field)| {
            let mut field = field.clone();
            let description = field
                .as_object_mut()
                .and_then(|f| f.remove("description"))
                .unwrap_or_else(|| json!(""));
            json!({
                "name": name,
                "in": "query",
                "required": required.contains(&name.as_str()),
                "description": description,
                "schema": field,
            })
        })
        .collect()
}

/// Every authenticated endpoint can answer 401, 403 and 429.
fn auth_problems(e: &Endpoint) -> Vec<u16> {
    match e.scope {
        Some(_) => vec![401, 403, 429, 500],
        None => vec![],
    }
}
