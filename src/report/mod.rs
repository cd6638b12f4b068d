//! What the read-only commands and the API's reads show: a case with its stages, tasks, notes,
//! attachments and events (`show case`), cases in summary a page at a time, the advice its
//! answers choose (`advice`), its housing pack files, the inbox (`inbox`), worklists
//! (`worklist`) and the outbox (`outbox`). Each is a value that serialises to JSON for machines
//! and, where people read it, renders as text.

mod advice;
mod amendments;
mod case;
mod case_list;
mod format;
mod lists;
mod pack;
mod worklist;

pub use advice::*;
pub use amendments::*;
pub use case::*;
pub use case_list::*;
pub use lists::*;
pub use pack::*;
pub use worklist::*;
