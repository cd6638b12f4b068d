//! The engine: one pass runs each step once (ingest → allocate → release holds → housing
//! packs → SLA sweep → delivery), each step
//! finding its work by index and committing in small transactions. `run_pass(now)` is what the
//! scheduler, `tick --now` and the tests all call.

pub mod allocate;
pub mod apply;
pub mod case_target;
pub mod context;
pub mod deadlines;
pub mod error;
pub mod guard;
pub mod holds;
pub mod housing_options;
pub mod ingest;
pub mod pack_files;
pub mod pack_request;
pub mod pass;
pub mod plan;
pub mod progress;
pub mod recipients;
pub mod sla_sweep;

// The names the rest of the crate uses; inside the engine each file imports from the module
// that owns the item, so that no engine file depends on this one.
pub use crate::db::{Db, WRITER_LOCK};
pub use error::StepError;
pub use pass::{Engine, EngineSettings, PassOutcome};
