//! The engine's integration suite. Every scenario runs on SQLite and on PostgreSQL.

#[path = "../common/mod.rs"]
mod common;
mod erasure;
mod helpers;
mod indexes;
mod mail;
mod minimal;
#[path = "../common/pg.rs"]
mod pg;

mod allocation;
mod amend;
mod attribution;
mod batch_marks;
mod batch_memory;
mod batches;
mod commands;
mod duties;
mod duty_return;
mod housing;
mod loads;
mod london;
mod progression;
mod reliability;
mod retention;
mod sla;
mod sla_batches;
mod statistics;
mod subject_access;
mod upgrade;
mod wales;
mod worklists;
