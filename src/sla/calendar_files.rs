//! Loading the calendars from `rules/calendars/`: GOV.UK's bank-holiday file, then every closures
//! file, with a problem (file, line, column) for everything wrong in them. The file formats are
//! described in [`super::calendar`].

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use serde::Deserialize;
use toml::Spanned;

use super::calendar::{BANK_HOLIDAYS_FILE, Calendar, Calendars, DIVISIONS};
use crate::problems::{Problem, Source};

/// A closure longer than this is almost certainly a mistyped year, which would otherwise stop
/// every working-day clock in the calendar for years.
const LONGEST_CLOSURE_DAYS: i64 = 366;

impl Calendars {
    /// Loads `dir` (normally `rules/calendars/`): the GOV.UK bank holidays in
    /// `uk-bank-holidays.json` give the three divisions, then every `*.toml` closures file adds
    /// its closures. Returns every problem found, each with file, line and column.
    pub fn load(dir: &Path) -> Result<Calendars, Vec<Problem>> {
        if !dir.is_dir() {
            return Err(vec![
                Problem::new(dir, (1, 1), "calendar directory not found").help(format!(
                    "create it with GOV.UK's bank holidays saved as {BANK_HOLIDAYS_FILE}"
                )),
            ]);
        }
        let mut problems = Vec::new();
        let calendars = bank_holidays(&dir.join(BANK_HOLIDAYS_FILE))
            .map_err(|p| problems.push(p))
            .ok();
        let mut closures = Vec::new();
        match closure_files(dir) {
            Ok(files) => {
                for (path, text) in files {
                    let src = Source {
                        path: &path,
                        text: &text,
                    };
                    closures.extend(parse_closures(&src, &mut problems));
                }
            }
            Err(p) => problems.push(p),
        }
        match calendars {
            Some(mut calendars) if problems.is_empty() => {
                calendars.apply(&closures);
                Ok(calendars)
            }
            _ => {
                problems
                    .sort_by(|a, b| (&a.file, a.line, a.column).cmp(&(&b.file, b.line, b.column)));
                Err(problems)
            }
        }
    }

    fn apply(&mut self, closures: &[Closure]) {
        for c in closures {
            for cal in self.by_name.values_mut() {
                if c.calendars.iter().any(|n| n == cal.name()) {
                    for d in c.from.iter_days().take_while(|d| *d <= c.to) {
                        cal.close(d, &c.reason);
                    }
                }
            }
        }
    }
}

fn read(path: &Path) -> Result<String, Problem> {
    std::fs::read_to_string(path)
        .map_err(|e| Problem::new(path, (1, 1), format!("cannot read file: {e}")))
}

/// GOV.UK's bank-holidays file, as far as calendars need it.
#[derive(Deserialize)]
struct GovUkFile {
    #[serde(rename = "england-and-wales")]
    england_and_wales: Division,
    scotland: Division,
    #[serde(rename = "northern-ireland")]
    northern_ireland: Division,
}

#[derive(Deserialize)]
struct Division {
    events: Vec<Event>,
}

#[derive(Deserialize)]
struct Event {
    title: String,
    date: NaiveDate,
}

fn bank_holidays(path: &Path) -> Result<Calendars, Problem> {
    let text = read(path).map_err(|p| {
        p.help(format!(
            "download https://www.gov.uk/bank-holidays.json and save it unchanged as {}",
            path.display()
        ))
    })?;
    let file: GovUkFile = serde_json::from_str(&text).map_err(|e| json_problem(path, &e))?;
    let divisions = [
        (DIVISIONS[0], file.england_and_wales),
        (DIVISIONS[1], file.scotland),
        (DIVISIONS[2], file.northern_ireland),
    ];
    Ok(divisions
        .into_iter()
        .map(|(name, division)| {
            let mut cal = Calendar::from_closures(name, BTreeMap::new());
            for event in division.events {
                cal.close(event.date, &event.title);
            }
            cal
        })
        .collect())
}

fn json_problem(path: &Path, e: &serde_json::Error) -> Problem {
    let (line, column) = (e.line().max(1), e.column().max(1));
    let message = e.to_string();
    let message = message
        .strip_suffix(&format!(" at line {} column {}", e.line(), e.column()))
        .unwrap_or(&message);
    Problem::new(
        path,
        (line, column),
        format!("not GOV.UK's bank holidays JSON: {message}"),
    )
    .help("replace it with a fresh, unedited download of https://www.gov.uk/bank-holidays.json")
}

/// Every `*.toml` file directly in `dir`, with its text, in name order.
fn closure_files(dir: &Path) -> Result<Vec<(PathBuf, String)>, Problem> {
    let entries = std::fs::read_dir(dir)
        .map_err(|e| Problem::new(dir, (1, 1), format!("cannot read directory: {e}")))?;
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && p.extension().is_some_and(|e| e == "toml"))
        .collect();
    paths.sort();
    paths
        .into_iter()
        .map(|p| read(&p).map(|text| (p, text)))
        .collect()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ClosuresFile {
    #[serde(default)]
    closure: Vec<ClosureEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ClosureEntry {
    from: Spanned<toml::value::Datetime>,
    to: Option<Spanned<toml::value::Datetime>>,
    reason: Spanned<String>,
    calendars: Option<Spanned<Vec<Spanned<String>>>>,
}

/// A checked closure: inclusive dates.
struct Closure {
    from: NaiveDate,
    to: NaiveDate,
    reason: String,
    calendars: Vec<String>,
}

fn parse_closures(src: &Source, problems: &mut Vec<Problem>) -> Vec<Closure> {
    match toml::from_str::<ClosuresFile>(src.text) {
        Ok(file) => file
            .closure
            .into_iter()
            .filter_map(|entry| check_closure(src, entry, problems))
            .collect(),
        Err(e) => {
            let at = e.span().map_or(0, |s| s.start);
            problems.push(src.at(at, e.message().trim()).help(
                "a closure is [[closure]] with from, to (optional), reason and calendars \
                 (optional); see the shipped rules/calendars/closures.toml",
            ));
            Vec::new()
        }
    }
}

fn check_closure(src: &Source, c: ClosureEntry, problems: &mut Vec<Problem>) -> Option<Closure> {
    let before = problems.len();
    let from = toml_date(src, "from", &c.from, problems);
    let to = match &c.to {
        Some(to) => toml_date(src, "to", to, problems),
        None => from,
    };
    if let (Some(from), Some(to), Some(at)) = (from, to, &c.to) {
        let days = (to - from).num_days() + 1;
        if to < from {
            problems.push(
                src.at(
                    at.span().start,
                    format!("closure ends ({to}) before it starts ({from})"),
                )
                .help("`to` is the last closed day, on or after `from`"),
            );
        } else if days > LONGEST_CLOSURE_DAYS {
            problems.push(
                src.at(
                    at.span().start,
                    format!("closure from {from} to {to} lasts {days} days"),
                )
                .help(format!(
                    "closures are limited to {LONGEST_CLOSURE_DAYS} days; check the year"
                )),
            );
        }
    }
    if c.reason.get_ref().trim().is_empty() {
        problems.push(
            src.at(c.reason.span().start, "closure reason is empty")
                .help("say why the offices are closed; it explains the closed day to users"),
        );
    }
    let calendars = closure_calendars(src, c.calendars, problems);
    if problems.len() > before {
        return None;
    }
    Some(Closure {
        from: from?,
        to: to?,
        reason: c.reason.into_inner().trim().to_string(),
        calendars,
    })
}

fn closure_calendars(
    src: &Source,
    names: Option<Spanned<Vec<Spanned<String>>>>,
    problems: &mut Vec<Problem>,
) -> Vec<String> {
    let Some(names) = names else {
        return DIVISIONS.iter().map(|d| d.to_string()).collect();
    };
    if names.get_ref().is_empty() {
        problems.push(
            src.at(names.span().start, "closure applies to no calendars")
                .help("leave `calendars` out to close every division"),
        );
    }
    let mut known = Vec::new();
    for name in names.into_inner() {
        if DIVISIONS.contains(&name.get_ref().as_str()) {
            known.push(name.into_inner());
        } else {
            problems.push(
                src.at(
                    name.span().start,
                    format!("unknown calendar {:?}", name.get_ref()),
                )
                .help(format!("use one of: {}", DIVISIONS.join(", "))),
            );
        }
    }
    known
}

fn toml_date(
    src: &Source,
    field: &str,
    value: &Spanned<toml::value::Datetime>,
    problems: &mut Vec<Problem>,
) -> Option<NaiveDate> {
    let dt = value.get_ref();
    let date = match (dt.date, dt.time) {
        (Some(d), None) => NaiveDate::from_ymd_opt(d.year.into(), d.month.into(), d.day.into()),
        _ => None,
    };
    if date.is_none() {
        problems.push(
            src.at(
                value.span().start,
                format!("{field} must be a date without a time, not {dt}"),
            )
            .help(format!(
                "write it as a bare TOML date: {field} = 2026-12-29"
            )),
        );
    }
    date
}
