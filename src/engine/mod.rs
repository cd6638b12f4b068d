//! The engine: one pass runs each step once (ingest → allocate → release holds → retention →
//! housing packs → SLA sweep → delivery), each step finding its work by index and committing in small
//! transactions. `run_pass(now)` is what the scheduler, `tick --now` and the tests all call.
//!
//! - The pass: `pass` (the pipeline, the engine and its settings), `due` (whether a pass has
//!   anything to do, asked in one statement), `outcome` (what a pass did),
//!   `error` (what a step returns), `guard` (one bad item never stops a step), `plan` (a dry run).
//! - The steps, in pass order: `ingest` (inbox rows → `apply`, each row then given the
//!   `event_range` its decision wrote), `allocate`, `holds`,
//!   `retention` (closed cases past their retention date), `housing_options` (making packs), `sla_sweep` (firing escalations to `recipients`).
//! - Commands: `queue` (adding them to the inbox), `apply`, with a file per family of commands
//!   and their shared lookups.
//! - What steps and commands share: `context` (who and when a change is made), `progress`
//!   (entering stages, activating and completing tasks), `deadlines` (writing SLA dates),
//!   `duty_clock` (homelessness duties' clocks from their recorded start dates),
//!   `case_target` (a housing options case's target), `pack_request`, `pack_facts` and
//!   `pack_files`.
//!
//! No engine file imports this one; each imports the module that owns what it needs, so the
//! files' dependencies run one way (checked by `tests/layout.rs`).

pub mod allocate;
pub mod apply;
pub mod budget;
pub mod case_target;
pub mod context;
pub mod deadlines;
pub mod due;
pub mod duty_clock;
pub mod error;
pub mod event_range;
pub mod guard;
pub mod holds;
pub mod housing_options;
pub mod ingest;
pub mod metrics;
pub mod outcome;
pub mod pack_facts;
pub mod pack_files;
pub mod pack_request;
pub mod pass;
pub mod plan;
pub mod progress;
pub mod queue;
pub mod recipients;
pub mod retarget;
pub mod retention;
pub mod sla_sweep;
mod stage_rows;

// The names the rest of the crate uses; inside the engine each file imports from the module
// that owns the item, so that no engine file depends on this one.
pub use crate::db::Db;
pub use error::StepError;
pub use outcome::PassOutcome;
pub use pass::{Engine, EngineSettings};
