//! What the read-only commands and the API's reads show: a case with its stages, tasks, notes,
//! attachments and events (`show case`), cases in summary a page at a time, the advice its
//! answers choose (`advice`), its housing pack files, the inbox (`inbox`), worklists
//! (`worklist`), the outbox (`outbox`) and the quarterly extract of duty records (`report
//! duties`). Each is a value that serialises to JSON for machines
//! and, where people read it, renders as text.

mod advice;
mod amendments;
mod case;
mod case_list;
mod duties;
mod duty_return;
mod format;
mod lists;
mod pack;
mod subject_access;
mod worklist;

pub use advice::*;
pub use amendments::*;
pub use case::*;
pub use case_list::*;
pub use duty_return::{COLUMNS as DUTY_RETURN_COLUMNS, ExtractError, Quarter, duties_csv};
pub use lists::*;
pub use pack::*;
pub use subject_access::*;
pub use worklist::*;
