//! Service-level arithmetic: which days are working days, and when a period that starts (or ends)
//! at an instant is over. Pure: values in, values out; the only I/O is [`Calendars::load`] reading
//! `rules/calendars/`.
//!
//! - [`calendar`] owns the calendars: GOV.UK's bank holidays for each division plus the
//!   organisation's closures, and counting working days over dates.
//! - `calendar_files` loads them from `rules/calendars/`, with a problem for each bad entry.
//! - [`periods`] owns periods over instants: adding and subtracting a [`Period`] in Europe/London
//!   wall-clock time, and counting working days left or held.
//!
//! # Counting rules
//!
//! These are the rules SLA clocks follow, whatever the period:
//!
//! - **Dates are London dates.** An instant's day is its calendar date in Europe/London (GMT in
//!   winter, BST in summer), so 23:30 UTC on 30 June is 1 July.
//! - **A working day** is Monday to Friday, unless the calendar closes it: a bank holiday of the
//!   calendar's division (from GOV.UK's published data, substitute days included) or an
//!   organisation closure from a closures file.
//! - **Days and weeks** keep the London wall-clock time: 09:00 plus 7 days is 09:00 seven days
//!   later, even when the clocks change in between (09:00 BST on 22 October 2026 plus a week is
//!   09:00 GMT on 29 October, 169 hours later). A wall-clock time that does not exist because the clocks went forward (01:30 on the last
//!   Sunday of March) means the moment they went forward (02:00 BST); one that happens twice
//!   because they went back (01:30 on the last Sunday of October) means the first time.
//! - **N working days** after an instant is the same London wall-clock time on the N-th working
//!   day after its London date. The start day never counts, even when it is a working day;
//!   when it is not (a Saturday, a bank holiday), counting still starts from it, so 1 working day
//!   after a Saturday is the Monday. 0 working days is the start itself.
//! - **N working days before** an instant is the mirror image: the same wall-clock time on the
//!   N-th working day before its London date. It is how an amber warning is placed before a
//!   target; from a working day, going forward N and back N returns to the start.
//! - **Working days remaining** from `now` to a due instant counts the working days after now's
//!   London date up to and including the due date's; it is 0 on the due date and negative once
//!   the due date has passed (−1 on the first working day after it).
//! - **Working days held** counts the working days from the day a hold started up to, but not
//!   including, the day it was released: a hold from Monday 10:00 to Wednesday 09:00 held the
//!   clock for 2 working days (Monday and Tuesday); a hold released the same day held it for 0.
//!
//! Bank holidays are known only as far ahead as the published data goes (see
//! [`Calendar::listed_until`]); beyond that every weekday counts as a working day until the file
//! is refreshed.
//!
//! [`Period`]: crate::definitions::period::Period

pub mod calendar;
mod calendar_files;
pub mod checkpoint;
pub mod periods;

pub use calendar::{Calendar, Calendars};
