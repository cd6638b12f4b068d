//! What the read-only commands show: a case with its stages, tasks, notes, attachments and
//! events (`show case`), the inbox (`inbox`), and worklists (`worklist`). Each is a value that
//! serialises to JSON for machines and renders as text for people.

mod case;
mod format;
mod lists;

pub use case::*;
pub use lists::*;
