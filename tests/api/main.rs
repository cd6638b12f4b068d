//! The integration API's suite: a real daemon (engine, schedule and HTTP server) on an
//! ephemeral loopback port, a real HTTP client, each scenario on SQLite and on PostgreSQL.

#[path = "../common/mod.rs"]
mod common;
#[path = "../common/exposition.rs"]
mod exposition;
mod harness;
#[path = "../common/pg.rs"]
mod pg;

mod admin;
mod amend;
mod cases;
mod commands;
mod events;
mod hostile;
mod instances;
mod journey;
mod meta;
mod metrics;
mod privacy;
mod security;
mod seed;
mod wake;
