//! Every endpoint in one table: its route and handler, the scope it needs, and what the OpenAPI
//! document says of it. The router is built from this table and so is the document, so neither
//! can list an endpoint the other lacks.

use axum::http::Method;
use axum::routing::{MethodRouter, get, post};
use schemars::JsonSchema;
use serde_json::{Value, json};

use super::ApiState;
use super::clients::Scope;
use super::openapi::{Gen, SchemaFn};
use super::{commands, health, webhooks};

pub struct Endpoint {
    pub method: Method,
    pub path: &'static str,
    /// The scope it needs; `None`: open to anyone (health checks, the API description).
    pub scope: Option<Scope>,
    pub route: MethodRouter<ApiState>,
    pub id: &'static str,
    pub tag: &'static str,
    pub summary: &'static str,
    pub description: &'static str,
    pub params: Vec<Param>,
    pub request: Option<Body>,
    pub responses: Vec<Response>,
    /// Problem statuses it can answer besides 401, 403, 429 and 500.
    pub problems: &'static [u16],
}

pub struct Param {
    pub name: &'static str,
    /// `path`, `query` or `header`.
    pub place: &'static str,
    pub description: &'static str,
    pub schema: SchemaFn,
}

pub struct Body {
    pub content_types: &'static [&'static str],
    pub description: &'static str,
    pub schema: SchemaFn,
}

pub struct Response {
    pub status: u16,
    pub description: &'static str,
    pub content_type: &'static str,
    pub schema: Option<SchemaFn>,
}

fn schema<T: JsonSchema>() -> SchemaFn {
    |g: &mut Gen| g.of::<T>()
}

fn string(_: &mut Gen) -> Value {
    json!({"type": "string"})
}

fn integer(_: &mut Gen) -> Value {
    json!({"type": "integer", "format": "int64"})
}

impl Endpoint {
    fn new(
        method: Method,
        path: &'static str,
        scope: Option<Scope>,
        route: MethodRouter<ApiState>,
        id: &'static str,
        tag: &'static str,
    ) -> Endpoint {
        Endpoint {
            method,
            path,
            scope,
            route,
            id,
            tag,
            summary: "",
            description: "",
            params: Vec::new(),
            request: None,
            responses: Vec::new(),
            problems: &[],
        }
    }

    fn says(mut self, summary: &'static str, description: &'static str) -> Endpoint {
        self.summary = summary;
        self.description = description;
        self
    }

    fn param(
        mut self,
        place: &'static str,
        name: &'static str,
        description: &'static str,
        schema: SchemaFn,
    ) -> Endpoint {
        self.params.push(Param {
            name,
            place,
            description,
            schema,
        });
        self
    }

    fn body(
        mut self,
        content_types: &'static [&'static str],
        description: &'static str,
        schema: SchemaFn,
    ) -> Endpoint {
        self.request = Some(Body {
            content_types,
            description,
            schema,
        });
        self
    }

    fn answers(mut self, status: u16, description: &'static str, schema: SchemaFn) -> Endpoint {
        self.responses.push(Response {
            status,
            description,
            content_type: "application/json",
            schema: Some(schema),
        });
        self
    }

    fn problems(mut self, statuses: &'static [u16]) -> Endpoint {
        self.problems = statuses;
        self
    }
}

/// The table.
pub fn endpoints() -> Vec<Endpoint> {
    use Scope::*;
    vec![
        Endpoint::new(Method::POST, "/v1/commands", Some(CommandsWrite), post(commands::submit), "submitCommands", "commands")
            .says(
                "Submit commands",
                "One command (a JSON object), a JSON array of commands, or NDJSON (one command per line), at most `api.max_commands_per_request` (default 1,000) in a body of at most `api.max_body_bytes` (default 1 MiB). Each is checked against the contract at once: one that fails is answered with its reason and not queued; the others are queued in order, under the caller's name, and the engine is woken for a pass. Without `Prefer: wait` the answer is 202 with each queued command's inbox id. With `Prefer: wait=N` (N ≤ 30 s) it waits until every queued command is applied or rejected and answers 200 with each one's status, reason and event ids (202 if N passed first). If no command fits the contract, 422 and nothing is queued.",
            )
            .param("header", "Prefer", "`wait=N`: wait up to N seconds for the outcome (RFC 7240).", string)
            .body(&["application/json", "application/x-ndjson"], "A command, an array of commands, or one command per line (NDJSON).", |g| {
                let command = g.command();
                json!({"oneOf": [command, {"type": "array", "items": command}]})
            })
            .answers(200, "Every queued command was decided within the wait.", schema::<commands::Submitted>())
            .answers(202, "Queued (and, with a wait, not all decided in time).", schema::<commands::Submitted>())
            .problems(&[400, 413, 415, 422]),
        Endpoint::new(Method::GET, "/v1/commands/{id}", Some(CommandsWrite), get(commands::outcome), "getCommand", "commands")
            .says(
                "A command's outcome",
                "Its status (pending, accepted, rejected, duplicate), the reason for a rejection or duplicate, and the events its application wrote. A client sees the commands it submitted; an admin sees all.",
            )
            .param("path", "id", "The inbox id `POST /v1/commands` returned.", integer)
            .answers(200, "The command.", schema::<commands::CommandOutcome>())
            .problems(&[400, 404]),
        Endpoint::new(Method::GET, "/v1/webhooks", Some(Admin), get(webhooks::list), "listWebhooks", "admin")
            .says(
                "Webhook subscriptions",
                "Each `[[webhooks]]` subscription of the configuration, as `casewarden webhooks --json` shows it: its URL (any password and query values as `***`, never its secret), the events it wants, the last event id its receiver acknowledged, how many events wait and how old the oldest is, the batch in flight, its last success and last error, and since when it has been failing. Read from the database, so every instance answers the same. See docs/webhooks.md.",
            )
            .answers(200, "Every subscription, in the order of the configuration.", schema::<crate::webhooks::Webhooks>()),
        Endpoint::new(Method::GET, "/v1/openapi.json", None, get(super::openapi_json), "getOpenApi", "meta")
            .says("This document", "The OpenAPI 3.1 description of the API, generated from the types that implement it.")
            .answers(200, "The document.", |_| json!({"type": "object"})),
        Endpoint::new(Method::GET, "/healthz", None, get(health::healthz), "healthz", "meta")
            .says("Liveness", "200 while the process answers. Unauthenticated.")
            .answers(200, "Alive.", schema::<health::Health>()),
        Endpoint::new(Method::GET, "/readyz", None, get(health::readyz), "readyz", "meta")
            .says(
                "Readiness",
                "200 when the database answers, the rule set is loaded and a pass has finished within twice the schedule's interval plus a minute; 503 with the reason otherwise. Unauthenticated.",
            )
            .answers(200, "Ready.", schema::<health::Health>())
            .problems(&[503]),
    ]
}
