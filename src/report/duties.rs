//! The homelessness duties, referral and plan steps of a housing options case, as `show case`
//! prints them.

use std::fmt::Write;

use super::format::when;
use crate::duties::Record;
use crate::text::terminal as t;

/// Appends the record to a case's text report; nothing when nothing is on record.
pub(super) fn write_text(out: &mut String, country: &str, record: &Record) {
    if record.is_empty() {
        let _ = writeln!(out, "\nDuties: none on record");
        return;
    }
    let _ = writeln!(out, "\nDuties");
    for d in &record.duties {
        let _ = write!(
            out,
            "  {:<10} {}  started {}",
            t(&d.duty),
            crate::duties::title(country, &d.duty),
            d.start_date
        );
        match (&d.end_date, &d.end_reason) {
            (Some(end), Some(reason)) => {
                let _ = writeln!(out, "  ended {end}: {}", t(reason));
            }
            _ => {
                let _ = writeln!(out, "  open");
            }
        }
    }
    if let Some(r) = &record.referral {
        let _ = writeln!(
            out,
            "  referral   {} on {}{}",
            t(&r.source),
            r.referred_on,
            r.authority
                .as_deref()
                .map(|a| format!(" by {}", t(a)))
                .unwrap_or_default()
        );
    }
    if !record.plan.is_empty() {
        let _ = writeln!(out, "\nPersonalised housing plan");
        for s in &record.plan {
            let _ = writeln!(
                out,
                "  [{}] {:<9} {:<9} agreed {}  review {}  updated {}\n      {}",
                t(&s.step_ref),
                t(&s.owner),
                t(&s.status),
                s.agreed_on,
                s.review_on.map_or("-".to_string(), |d| d.to_string()),
                when(Some(s.updated_at)),
                t(&s.step)
            );
        }
    }
}
