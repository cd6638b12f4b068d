//! casewarden: a case workflow daemon for UK social housing organisations. It sits beside a CRM,
//! takes commands from an inbox, allocates cases with Rhai rules, runs their stages and tasks from
//! TOML definitions, and records every change in an append-only event log.

pub mod advice;
pub mod allocator;
pub mod api;
pub mod backoff;
pub mod backup;
pub mod cli;
pub mod clock;
pub mod commands;
pub mod daemon;
pub mod db;
pub mod definitions;
pub mod demo;
pub mod duties;
pub mod engine;
pub mod events;
pub mod facts;
pub mod files;
pub mod instances;
pub mod live;
pub mod mail;
pub mod metrics;
pub mod outbox;
pub mod output;
pub mod personal;
pub mod privacy;
pub mod problems;
pub mod range;
pub mod report;
pub mod rules;
pub mod script;
pub mod settings;
pub mod settings_origin;
pub mod sla;
pub mod startup;
pub mod states;
pub mod status;
pub mod telemetry;
pub mod templates;
pub mod text;
pub mod wake;
pub mod watchdog;
pub mod webhooks;
