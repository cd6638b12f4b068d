//! What the read-only commands show: a case with its stages, tasks, notes, attachments and
//! events (`show case`), the advice its answers choose (`advice`), the inbox (`inbox`), worklists
//! (`worklist`) and the outbox (`outbox`). Each is a value that serialises to JSON for machines
//! and renders as text for people.

mod advice;
mod case;
mod format;
mod lists;

pub use advice::*;
pub use case::*;
pub use lists::*;
