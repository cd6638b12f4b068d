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
use super::{admin, cases, commands, feed, health, metrics, webhooks};

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
    /// The query string's fields, as a type: each field is a query parameter.
    pub query: Option<SchemaFn>,
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
            query: None,
            request: None,
            responses: Vec::new(),
            problems: &[],
        }
    }

    /// The query string's parameters, the fields of `T`.
    fn query<T: JsonSchema>(mut self) -> Endpoint {
        self.query = Some(|g: &mut Gen| g.inline::<T>());
        self
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

    fn answers_as(
        mut self,
        status: u16,
        content_type: &'static str,
        description: &'static str,
    ) -> Endpoint {
        self.responses.push(Response {
            status,
            description,
            content_type,
            schema: Some(string),
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
            .problems(&[400, 408, 413, 415, 422]),
        Endpoint::new(Method::GET, "/v1/commands/{id}", Some(CommandsWrite), get(commands::outcome), "getCommand", "commands")
            .says(
                "A command's outcome",
                "Its status (pending, accepted, rejected, duplicate), the reason for a rejection or duplicate, and the events its application wrote. A client sees the commands it submitted; an admin sees all.",
            )
            .param("path", "id", "The inbox id `POST /v1/commands` returned.", integer)
            .answers(200, "The command.", schema::<commands::CommandOutcome>())
            .problems(&[400, 404]),
        Endpoint::new(Method::GET, "/v1/events", Some(EventsRead), get(feed::events), "listEvents", "events")
            .says(
                "The event log, after an id",
                "Events with ids above `after`, oldest first, at most `limit`, optionally one case's or one kind's. Store the last id you processed and pass it as `after` (or pass `next_after`). With `wait`, an empty answer is held until a matching event is committed (a long poll). A kind filter looks at no more than 10,000 rows per request and gives the last id it looked at as `next_after`, so a follower always progresses.",
            )
            .query::<feed::FeedQuery>()
            .answers(200, "A page of events.", schema::<feed::Feed>())
            .problems(&[400]),
        Endpoint::new(Method::GET, "/v1/events/stream", Some(EventsRead), get(feed::stream), "streamEvents", "events")
            .says(
                "The event log as Server-Sent Events",
                "Each event as an SSE frame: `id:` the event id, `event:` its kind, `data:` the event on one line. Reconnect with `Last-Event-ID` (most SSE clients do it for you) to resume after the last event received: nothing is lost or repeated. A `: keep-alive` comment every 15 s on a quiet stream.",
            )
            .param("header", "Last-Event-ID", "Resume after this event id (takes precedence over `after`).", integer)
            .query::<feed::StreamQuery>()
            .answers_as(200, "text/event-stream", "The stream.")
            .problems(&[400]),
        Endpoint::new(Method::GET, "/v1/cases", Some(CasesRead), get(cases::list), "listCases", "cases")
            .says(
                "Cases, filtered, a page at a time",
                "Case summaries in the order they were created, filtered by any of status, owner, scheme, workflow and SLA state. Pass `next` from one page as `after` for the next; `next` is null on the last page.",
            )
            .query::<cases::CaseQuery>()
            .answers(200, "A page of cases.", schema::<cases::CasePage>())
            .problems(&[400]),
        Endpoint::new(Method::GET, "/v1/cases/{ref}", Some(CasesRead), get(cases::show), "getCase", "cases")
            .says(
                "A case in full",
                "The document `casewarden show case REF --json` prints: the case, its stages and tasks with their dates and SLA states, notes, attachments, housing options answers and packs, and its events.",
            )
            .param("path", "ref", "The case reference.", string)
            .answers(200, "The case.", schema::<crate::report::CaseReport>())
            .problems(&[400, 404]),
        Endpoint::new(Method::GET, "/v1/cases/{ref}/advice", Some(CasesRead), get(cases::advice), "getAdvice", "cases")
            .says(
                "Advice chosen for a housing options case",
                "Which advice statements the case's enquiry answers choose, and why each was chosen or left out, with the rules in force (as `casewarden advice REF --json`). Writes nothing.",
            )
            .param("path", "ref", "The case reference.", string)
            .query::<cases::AdviceQuery>()
            .answers(200, "Each statement, chosen or not, with its reason.", schema::<Vec<crate::advice::Choice>>())
            .problems(&[400, 404, 409]),
        Endpoint::new(Method::GET, "/v1/cases/{ref}/packs/{version}/{format}", Some(CasesRead), get(cases::pack), "getPackFile", "cases")
            .says(
                "A housing pack's file",
                "The HTML or text file of one version of a case's housing pack, as the engine wrote it, checked against the SHA-256 it recorded (409 if the file on disk changed). Served with `X-Content-Type-Options: nosniff`, `Cache-Control: private, no-store` and, for HTML, a Content-Security-Policy that loads and runs nothing.",
            )
            .param("path", "ref", "The case reference.", string)
            .param("path", "version", "The pack's version: 1, 2 …", integer)
            .param("path", "format", "`html` or `txt`.", |_| json!({"type": "string", "enum": ["html", "txt"]}))
            .answers_as(200, "text/html", "The pack as HTML (or, for `txt`, as `text/plain`).")
            .problems(&[400, 404, 409]),
        Endpoint::new(Method::GET, "/v1/worklists/users/{ref}", Some(CasesRead), get(cases::user_worklist), "getUserWorklist", "worklists")
            .says("An officer's worklist", "The user's open tasks with their dates, as the `worklist_by_user` view and the `tasks` of `casewarden worklist --user REF --json` give them.")
            .param("path", "ref", "The user's reference.", string)
            .answers(200, "The open tasks.", schema::<Vec<crate::report::WorklistRow>>())
            .problems(&[400, 404]),
        Endpoint::new(Method::GET, "/v1/worklists/roles/{ref}", Some(CasesRead), get(cases::role_worklist), "getRoleWorklist", "worklists")
            .says("A role's worklist", "Open tasks on a role's list, as the `worklist_by_role` view and the `tasks` of `casewarden worklist --role REF --json` give them.")
            .param("path", "ref", "The role's reference.", string)
            .answers(200, "The open tasks.", schema::<Vec<crate::report::WorklistRow>>())
            .problems(&[400, 404]),
        Endpoint::new(Method::GET, "/v1/worklists/users/{ref}/cases", Some(CasesRead), get(cases::user_waiting_cases), "getUserWaitingCases", "worklists")
            .says("An officer's cases with no task to work on", "The user's cases that wait for `advance_case` or for a manual task's `activate_task`, with what each waits for, as the `worklist_cases_by_user` view and the `cases` of `casewarden worklist --user REF --json` give them.")
            .param("path", "ref", "The user's reference.", string)
            .answers(200, "The waiting cases.", schema::<Vec<crate::report::WaitingCase>>())
            .problems(&[400, 404]),
        Endpoint::new(Method::GET, "/v1/worklists/roles/{ref}/cases", Some(CasesRead), get(cases::role_waiting_cases), "getRoleWaitingCases", "worklists")
            .says("A role's cases with no task to work on", "Cases on a role's list (owned by a holder of the role, queued on it, or waiting for a manual task of the role) that wait for `advance_case` or `activate_task`, as the `worklist_cases_by_role` view and the `cases` of `casewarden worklist --role REF --json` give them.")
            .param("path", "ref", "The role's reference.", string)
            .answers(200, "The waiting cases.", schema::<Vec<crate::report::WaitingCase>>())
            .problems(&[400, 404]),
        Endpoint::new(Method::GET, "/v1/worklists/decisions", Some(CasesRead), get(cases::decisions), "getDecisions", "worklists")
            .says("Cases waiting for the CRM's choice", "Cases whose stage has more than one possible successor, waiting for `advance_case`, with the stages to choose from (the `worklist_decisions` view).")
            .answers(200, "The waiting cases.", schema::<Vec<crate::report::DecisionRow>>()),
        Endpoint::new(Method::GET, "/v1/forms/{workflow}", Some(CasesRead), get(cases::form), "getForm", "cases")
            .says("A housing options enquiry form", "The form of a housing options workflow: its questions, their types, choices and limits, as `submit_enquiry` checks answers against them (`casewarden form WORKFLOW --json`).")
            .param("path", "workflow", "The workflow, e.g. `prevention`.", string)
            .answers(200, "The form.", schema::<crate::advice::form::Description>())
            .problems(&[404]),
        Endpoint::new(Method::GET, "/v1/outbox", Some(Admin), get(admin::outbox), "listOutbox", "operations")
            .says("Notifications", "The most recent notifications with their state, attempts and last error, and whether the mail server was reachable at the last pass (as `casewarden outbox --json`).")
            .query::<admin::OutboxQuery>()
            .answers(200, "The notifications.", schema::<admin::Outbox>())
            .problems(&[400]),
        Endpoint::new(Method::POST, "/v1/outbox/{id}/retry", Some(Admin), post(admin::retry), "retryNotification", "operations")
            .says("Send a dead notification again", "Requeues a dead notification, due now, and wakes the engine; a `notification_requeued` event names the client.")
            .param("path", "id", "The notification's id.", integer)
            .answers(200, "Requeued.", schema::<admin::Requeued>())
            .problems(&[400, 404, 409]),
        Endpoint::new(Method::POST, "/v1/contacts/{ref}/erasure", Some(Admin), post(admin::erase_contact), "eraseContact", "operations")
            .says("Erase a contact's personal data", "As `casewarden erase contact REF --reason TEXT`: the contact's name, e-mail, phone and address, their place in contact groups, and the personal data of every case they are the applicant of (answers, notes, attachments' names, typed reasons, pack files, notifications' addresses and `.eml` files), in one transaction. Refused with 409 while such a case is open, unless `force` is true. The `contact_erased` event names the client; the reason is kept in `erasures`. See docs/data-protection.md.")
            .param("path", "ref", "The contact's reference.", string)
            .body(&["application/json"], "Why, and whether to erase a contact whose cases are still open.", |g| g.of::<admin::EraseRequest>())
            .answers(200, "Erased.", schema::<crate::privacy::Erasure>())
            .problems(&[400, 404, 409]),
        Endpoint::new(Method::GET, "/v1/contacts/{ref}/export", Some(Admin), get(admin::export_contact), "exportContact", "operations")
            .says("Everything held about a contact", "For a subject access request, as `casewarden export contact REF` writes it: the contact's record and groups, every case they are the applicant of in full (stages, tasks with every hold and its reason, notes, attachments, enquiry answers, packs, duties and plan steps, amendments, events), the notifications sent to them and any erasure of their data. The pack files themselves are at `GET /v1/cases/{ref}/packs/{version}/{format}`. See docs/data-protection.md.")
            .param("path", "ref", "The contact's reference.", string)
            .answers(200, "The subject access document.", schema::<crate::report::SubjectAccess>())
            .problems(&[400, 404]),
        Endpoint::new(Method::GET, "/v1/rules", Some(Admin), get(admin::rules), "getRules", "operations")
            .says("The rule set in force", "Its hash and when it was loaded, and the problems of the last rule set refused at a reload since the daemon started (the set in force stayed).")
            .answers(200, "The rule set's state.", schema::<admin::Rules>()),
        Endpoint::new(Method::GET, "/v1/webhooks", Some(Admin), get(webhooks::list), "listWebhooks", "admin")
            .says(
                "Webhook subscriptions",
                "Each `[[webhooks]]` subscription of the configuration, as `casewarden webhooks --json` shows it: its URL (any password and query values as `***`, never its secret), the events it wants, the last event id its receiver acknowledged, how many events wait and how old the oldest is, the batch in flight, its last success and last error, and since when it has been failing. Read from the database, so every instance answers the same. See docs/webhooks.md.",
            )
            .answers(200, "Every subscription, in the order of the configuration.", schema::<crate::webhooks::Webhooks>()),
        Endpoint::new(Method::GET, "/metrics", Some(MetricsRead), get(metrics::scrape), "getMetrics", "operations")
            .says(
                "Prometheus metrics",
                "The daemon's metrics in the OpenMetrics text format, when `[metrics] on_api` is set (404 otherwise): passes and their steps' durations, commands, escalations, rule errors, packs, mail, the inbox's and outbox's backlog, webhook lag, the rule set and the build. Every metric is described in docs/operations.md. A listener of its own without authentication can serve them too (`[metrics] listen`).",
            )
            .answers_as(200, "application/openmetrics-text; version=1.0.0; charset=utf-8", "The metrics.")
            .problems(&[404]),
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
