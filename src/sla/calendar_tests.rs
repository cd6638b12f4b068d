use std::sync::OnceLock;

use super::*;
use std::path::{Path, PathBuf};

use crate::problems::Problem;

const EW: &str = "england-and-wales";
const SC: &str = "scotland";
const NI: &str = "northern-ireland";

fn d(s: &str) -> NaiveDate {
    s.parse().expect("test date")
}

fn calendars_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("rules/calendars")
}

fn shipped() -> &'static Calendars {
    static SHIPPED: OnceLock<Calendars> = OnceLock::new();
    SHIPPED.get_or_init(|| Calendars::load(&calendars_dir()).expect("shipped calendars load"))
}

fn cal(name: &str) -> &'static Calendar {
    shipped().get(name).expect("shipped calendar")
}

/// A calendars directory with the shipped GOV.UK file and `files` (name, text) added; a file
/// named like the GOV.UK one replaces it.
fn dir_with(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    let json = calendars_dir().join(BANK_HOLIDAYS_FILE);
    std::fs::copy(json, dir.path().join(BANK_HOLIDAYS_FILE)).expect("copy GOV.UK file");
    for (name, text) in files {
        std::fs::write(dir.path().join(name), text).expect("write test file");
    }
    dir
}

fn problems(files: &[(&str, &str)]) -> Vec<Problem> {
    let dir = dir_with(files);
    Calendars::load(dir.path()).expect_err("the directory has problems")
}

/// (file name, line, column, message) of each problem, for compact assertions.
fn where_and_what(problems: &[Problem]) -> Vec<(String, usize, usize, String)> {
    problems
        .iter()
        .map(|p| {
            let file = p.file.file_name().unwrap().to_string_lossy().into_owned();
            (file, p.line, p.column, p.message.clone())
        })
        .collect()
}

/// Counting one day at a time: the definition the arithmetic must agree with.
fn add_by_stepping(cal: &Calendar, mut d: NaiveDate, n: u32) -> NaiveDate {
    for _ in 0..n {
        d = d.succ_opt().unwrap();
        while !cal.is_working_day(d) {
            d = d.succ_opt().unwrap();
        }
    }
    d
}

fn sub_by_stepping(cal: &Calendar, mut d: NaiveDate, n: u32) -> NaiveDate {
    for _ in 0..n {
        d = d.pred_opt().unwrap();
        while !cal.is_working_day(d) {
            d = d.pred_opt().unwrap();
        }
    }
    d
}

fn between_by_stepping(cal: &Calendar, from: NaiveDate, to: NaiveDate) -> i64 {
    let (lo, hi, sign) = if to < from {
        (to, from, -1)
    } else {
        (from, to, 1)
    };
    let count = lo
        .iter_days()
        .skip(1)
        .take_while(|d| *d <= hi)
        .filter(|d| cal.is_working_day(*d))
        .count();
    sign * count as i64
}

#[test]
fn the_shipped_calendars_are_the_three_divisions() {
    assert_eq!(shipped().names(), [EW, NI, SC]);
    for name in DIVISIONS {
        assert_eq!(cal(name).name(), name);
    }
    assert!(shipped().get("wales").is_none());
}

#[test]
fn saturdays_and_sundays_are_not_working_days() {
    for name in DIVISIONS {
        assert!(
            !cal(name).is_working_day(d("2026-01-10")),
            "{name} Saturday"
        );
        assert!(!cal(name).is_working_day(d("2026-01-11")), "{name} Sunday");
        assert_eq!(
            cal(name).closure(d("2026-01-10")),
            None,
            "a weekend has no reason"
        );
    }
}

#[test]
fn an_ordinary_weekday_is_a_working_day_with_no_closure() {
    for name in DIVISIONS {
        for day in [
            "2026-01-12",
            "2026-01-13",
            "2026-01-14",
            "2026-01-15",
            "2026-01-16",
        ] {
            assert!(cal(name).is_working_day(d(day)), "{name} {day}");
            assert_eq!(cal(name).closure(d(day)), None);
        }
    }
}

#[test]
fn a_bank_holiday_monday_is_not_a_working_day() {
    for name in DIVISIONS {
        assert!(!cal(name).is_working_day(d("2026-05-04")), "{name}");
        assert_eq!(
            cal(name).closure(d("2026-05-04")),
            Some("Early May bank holiday")
        );
    }
}

#[test]
fn boxing_day_2020_on_a_saturday_closes_the_monday_after_instead() {
    for name in DIVISIONS {
        assert_eq!(
            cal(name).closure(d("2020-12-26")),
            None,
            "{name}: Saturday itself"
        );
        assert_eq!(
            cal(name).closure(d("2020-12-28")),
            Some("Boxing Day"),
            "{name}"
        );
        assert!(!cal(name).is_working_day(d("2020-12-28")));
        assert!(cal(name).is_working_day(d("2020-12-29")));
    }
}

#[test]
fn christmas_2021_on_a_weekend_closes_27_and_28_december() {
    for name in DIVISIONS {
        assert_eq!(
            cal(name).closure(d("2021-12-27")),
            Some("Christmas Day"),
            "{name}"
        );
        assert_eq!(
            cal(name).closure(d("2021-12-28")),
            Some("Boxing Day"),
            "{name}"
        );
        assert_eq!(
            cal(name).add_working_days(d("2021-12-24"), 1),
            d("2021-12-29")
        );
    }
}

#[test]
fn new_year_2022_closes_3_january_and_scotland_also_4_january() {
    for name in DIVISIONS {
        assert_eq!(
            cal(name).closure(d("2022-01-03")),
            Some("New Year\u{2019}s Day")
        );
    }
    assert_eq!(cal(SC).closure(d("2022-01-04")), Some("2nd January"));
    assert!(cal(EW).is_working_day(d("2022-01-04")));
    assert!(cal(NI).is_working_day(d("2022-01-04")));
    assert_eq!(
        cal(EW).add_working_days(d("2021-12-31"), 1),
        d("2022-01-04")
    );
    assert_eq!(
        cal(SC).add_working_days(d("2021-12-31"), 1),
        d("2022-01-05")
    );
}

#[test]
fn the_state_funeral_and_the_coronation_closed_every_division() {
    for name in DIVISIONS {
        let funeral = cal(name).closure(d("2022-09-19")).unwrap_or_default();
        assert!(
            funeral.contains("State Funeral of Queen Elizabeth II"),
            "{name}"
        );
        let coronation = cal(name).closure(d("2023-05-08")).unwrap_or_default();
        assert!(
            coronation.contains("coronation of King Charles III"),
            "{name}"
        );
        assert_eq!(
            cal(name).add_working_days(d("2022-09-16"), 1),
            d("2022-09-20")
        );
        assert_eq!(
            cal(name).add_working_days(d("2023-05-05"), 1),
            d("2023-05-09")
        );
    }
}

#[test]
fn the_platinum_jubilee_closed_thursday_2_and_friday_3_june_2022() {
    for name in DIVISIONS {
        assert_eq!(
            cal(name).closure(d("2022-06-02")),
            Some("Spring bank holiday")
        );
        assert_eq!(
            cal(name).closure(d("2022-06-03")),
            Some("Platinum Jubilee bank holiday")
        );
        assert_eq!(
            cal(name).add_working_days(d("2022-06-01"), 1),
            d("2022-06-06")
        );
    }
}

#[test]
fn scotland_closes_2_january_and_st_andrews_day() {
    assert_eq!(cal(SC).closure(d("2026-01-02")), Some("2nd January"));
    assert_eq!(
        cal(SC).closure(d("2026-11-30")),
        Some("St Andrew\u{2019}s Day")
    );
    // 30 November 2025 was a Sunday: the substitute is the Monday.
    assert_eq!(
        cal(SC).closure(d("2025-12-01")),
        Some("St Andrew\u{2019}s Day")
    );
    for day in ["2026-01-02", "2026-11-30", "2025-12-01"] {
        assert!(cal(EW).is_working_day(d(day)), "{day}");
        assert!(cal(NI).is_working_day(d(day)), "{day}");
    }
}

#[test]
fn northern_ireland_closes_st_patricks_day_and_the_battle_of_the_boyne() {
    assert_eq!(
        cal(NI).closure(d("2026-03-17")),
        Some("St Patrick\u{2019}s Day")
    );
    let boyne = "Battle of the Boyne (Orangemen\u{2019}s Day)";
    assert_eq!(cal(NI).closure(d("2022-07-12")), Some(boyne));
    // 12 July 2026 is a Sunday: the substitute is Monday 13 July.
    assert_eq!(cal(NI).closure(d("2026-07-13")), Some(boyne));
    for day in ["2026-03-17", "2022-07-12", "2026-07-13"] {
        assert!(cal(EW).is_working_day(d(day)), "{day}");
        assert!(cal(SC).is_working_day(d(day)), "{day}");
    }
    assert_eq!(
        cal(NI).add_working_days(d("2026-07-10"), 1),
        d("2026-07-14")
    );
    assert_eq!(
        cal(EW).add_working_days(d("2026-07-10"), 1),
        d("2026-07-13")
    );
}

#[test]
fn scotland_has_no_easter_monday() {
    assert!(cal(SC).is_working_day(d("2026-04-06")));
    assert_eq!(cal(EW).closure(d("2026-04-06")), Some("Easter Monday"));
    assert_eq!(cal(NI).closure(d("2026-04-06")), Some("Easter Monday"));
    for name in DIVISIONS {
        assert_eq!(
            cal(name).closure(d("2026-04-03")),
            Some("Good Friday"),
            "{name}"
        );
    }
}

#[test]
fn the_summer_bank_holiday_is_late_august_in_england_and_early_august_in_scotland() {
    assert_eq!(
        cal(EW).closure(d("2026-08-31")),
        Some("Summer bank holiday")
    );
    assert_eq!(
        cal(NI).closure(d("2026-08-31")),
        Some("Summer bank holiday")
    );
    assert_eq!(
        cal(SC).closure(d("2026-08-03")),
        Some("Summer bank holiday")
    );
    assert!(cal(SC).is_working_day(d("2026-08-31")));
    assert!(cal(EW).is_working_day(d("2026-08-03")));
}

#[test]
fn each_division_has_its_own_number_of_working_days_in_2026() {
    let (eve, end) = (d("2025-12-31"), d("2026-12-31"));
    assert_eq!(cal(EW).working_days_between(eve, end), 253);
    assert_eq!(cal(SC).working_days_between(eve, end), 252);
    assert_eq!(cal(NI).working_days_between(eve, end), 251);
}

#[test]
fn twenty_working_days_from_15_december_2025_skip_christmas_and_new_year() {
    // 16–19, 22–24, 29–31 Dec, 2 Jan, 5–9 and 12–15 Jan: 25, 26 Dec and 1 Jan are skipped.
    assert_eq!(
        cal(EW).add_working_days(d("2025-12-15"), 20),
        d("2026-01-15")
    );
    assert_eq!(
        cal(NI).add_working_days(d("2025-12-15"), 20),
        d("2026-01-15")
    );
    // Scotland also closes 2 January.
    assert_eq!(
        cal(SC).add_working_days(d("2025-12-15"), 20),
        d("2026-01-16")
    );
    assert_eq!(
        cal(EW).sub_working_days(d("2026-01-15"), 20),
        d("2025-12-15")
    );
}

#[test]
fn counting_back_over_new_year_skips_the_holidays_too() {
    assert_eq!(
        cal(EW).sub_working_days(d("2026-01-05"), 5),
        d("2025-12-24")
    );
    assert_eq!(
        cal(SC).sub_working_days(d("2026-01-05"), 5),
        d("2025-12-23")
    );
    assert_eq!(
        cal(EW).sub_working_days(d("2026-01-15"), 3),
        d("2026-01-12")
    );
}

#[test]
fn adding_or_subtracting_zero_working_days_is_the_same_day_even_on_a_weekend() {
    for day in ["2026-01-10", "2026-05-04", "2026-01-14"] {
        assert_eq!(cal(EW).add_working_days(d(day), 0), d(day));
        assert_eq!(cal(EW).sub_working_days(d(day), 0), d(day));
    }
}

#[test]
fn counting_from_a_day_that_is_not_a_working_day_starts_from_that_day() {
    // Saturday: the 1st working day after it is Monday, the 1st before it Friday.
    assert_eq!(
        cal(EW).add_working_days(d("2026-01-10"), 1),
        d("2026-01-12")
    );
    assert_eq!(
        cal(EW).sub_working_days(d("2026-01-10"), 1),
        d("2026-01-09")
    );
    // Easter Monday 2026: the 1st working day after it is the Tuesday.
    assert_eq!(
        cal(EW).add_working_days(d("2026-04-06"), 1),
        d("2026-04-07")
    );
    assert_eq!(
        cal(EW).sub_working_days(d("2026-04-06"), 1),
        d("2026-04-02")
    );
}

#[test]
fn adding_then_subtracting_working_days_returns_to_a_working_day_start() {
    for name in DIVISIONS {
        let c = cal(name);
        for start in d("2019-01-01")
            .iter_days()
            .take_while(|x| *x <= d("2027-12-31"))
        {
            if !c.is_working_day(start) {
                continue;
            }
            for n in [0, 1, 2, 3, 5, 10, 20, 40] {
                let there = c.add_working_days(start, n);
                assert_eq!(c.sub_working_days(there, n), start, "{name} {start} +{n}");
                assert_eq!(c.working_days_between(start, there), i64::from(n));
            }
        }
    }
}

#[test]
fn the_arithmetic_agrees_with_counting_one_day_at_a_time() {
    for name in DIVISIONS {
        let c = cal(name);
        let days = d("2018-12-01")
            .iter_days()
            .take_while(|x| *x <= d("2028-02-01"));
        for start in days.step_by(3) {
            for n in [1, 2, 4, 5, 6, 9, 15, 23, 65] {
                assert_eq!(c.add_working_days(start, n), add_by_stepping(c, start, n));
                assert_eq!(c.sub_working_days(start, n), sub_by_stepping(c, start, n));
            }
            for span in [0, 1, 2, 6, 7, 8, 13, 30, 100] {
                let later = start + chrono::Days::new(span);
                let between = between_by_stepping(c, start, later);
                assert_eq!(
                    c.working_days_between(start, later),
                    between,
                    "{start}+{span}"
                );
                assert_eq!(c.working_days_between(later, start), -between);
            }
        }
    }
}

#[test]
fn working_days_between_counts_after_from_up_to_and_including_to() {
    let c = cal(EW);
    assert_eq!(c.working_days_between(d("2026-01-14"), d("2026-01-14")), 0);
    assert_eq!(c.working_days_between(d("2026-01-16"), d("2026-01-19")), 1);
    assert_eq!(c.working_days_between(d("2026-01-10"), d("2026-01-11")), 0);
    assert_eq!(c.working_days_between(d("2025-12-24"), d("2026-01-02")), 4);
}

#[test]
fn working_days_between_is_negative_when_to_is_before_from() {
    let c = cal(EW);
    assert_eq!(c.working_days_between(d("2026-01-19"), d("2026-01-16")), -1);
    assert_eq!(c.working_days_between(d("2026-01-02"), d("2025-12-24")), -4);
    assert_eq!(c.working_days_between(d("2026-01-11"), d("2026-01-10")), 0);
}

#[test]
fn a_calendar_built_from_closures_closes_exactly_those_days() {
    let closed = BTreeMap::from([(d("2026-01-14"), "Stocktake".to_string())]);
    let c = Calendar::from_closures("test", closed);
    assert_eq!(c.name(), "test");
    assert_eq!(c.closure(d("2026-01-14")), Some("Stocktake"));
    assert_eq!(c.add_working_days(d("2026-01-13"), 1), d("2026-01-15"));
    assert!(
        c.is_working_day(d("2026-12-25")),
        "no bank holidays unless given"
    );
    assert_eq!(c.listed_until(), Some(d("2026-01-14")));
}

#[test]
fn bank_holidays_are_known_as_far_as_the_published_data_goes() {
    for name in DIVISIONS {
        assert_eq!(cal(name).listed_until(), Some(d("2027-12-28")), "{name}");
    }
}

#[test]
fn absurdly_long_periods_saturate_instead_of_overflowing() {
    let c = cal(EW);
    assert_eq!(
        c.add_working_days(d("2026-01-14"), u32::MAX),
        NaiveDate::MAX
    );
    assert_eq!(
        c.sub_working_days(d("2026-01-14"), u32::MAX),
        NaiveDate::MIN
    );
    let far = c.working_days_between(NaiveDate::MIN, NaiveDate::MAX);
    assert!(far > 100_000_000, "{far}");
}

#[test]
fn the_shipped_calendars_are_govuk_bank_holidays_exactly() {
    let text = std::fs::read_to_string(calendars_dir().join(BANK_HOLIDAYS_FILE)).unwrap();
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    for name in DIVISIONS {
        let events = json[name]["events"].as_array().unwrap();
        let from_json: BTreeMap<NaiveDate, String> = events
            .iter()
            .map(|e| {
                (
                    d(e["date"].as_str().unwrap()),
                    e["title"].as_str().unwrap().into(),
                )
            })
            .collect();
        assert_eq!(
            cal(name).closed,
            from_json,
            "{name}: the closures file must change nothing"
        );
    }
}

#[test]
fn the_shipped_example_closure_works_once_uncommented() {
    let shipped = std::fs::read_to_string(calendars_dir().join("closures.toml")).unwrap();
    let example = shipped
        .split_once("\n# [[closure]]")
        .expect("example present")
        .1;
    let enabled: String = format!("[[closure]]{example}").replace("\n# ", "\n");
    let dir = dir_with(&[("closures.toml", &enabled)]);
    let calendars = Calendars::load(dir.path()).expect("the example is valid");
    for name in DIVISIONS {
        let c = calendars.get(name).unwrap();
        for day in ["2026-12-29", "2026-12-30", "2026-12-31"] {
            assert_eq!(
                c.closure(d(day)),
                Some("Offices closed between Christmas and New Year"),
                "{name} {day}"
            );
        }
        assert_eq!(
            c.closure(d("2026-12-28")),
            Some("Boxing Day"),
            "substitute kept"
        );
    }
    let first_after = |name| {
        calendars
            .get(name)
            .unwrap()
            .add_working_days(d("2026-12-24"), 1)
    };
    assert_eq!(first_after(EW), d("2027-01-04"));
    assert_eq!(first_after(NI), d("2027-01-04"));
    // Scotland's 2nd January falls on a Saturday in 2027: its substitute is Monday 4th.
    assert_eq!(first_after(SC), d("2027-01-05"));
}

#[test]
fn a_closures_file_closes_days_in_the_named_calendars_only() {
    let text = r#"
[[closure]]
from = 2026-06-10
to = 2026-06-12
reason = "Office move"
calendars = ["scotland"]
"#;
    let dir = dir_with(&[("leeds.toml", text)]);
    let calendars = Calendars::load(dir.path()).unwrap();
    let (sc, ew) = (calendars.get(SC).unwrap(), calendars.get(EW).unwrap());
    for day in ["2026-06-10", "2026-06-11", "2026-06-12"] {
        assert_eq!(sc.closure(d(day)), Some("Office move"));
        assert!(ew.is_working_day(d(day)));
    }
    assert_eq!(sc.add_working_days(d("2026-06-09"), 1), d("2026-06-15"));
    assert_eq!(ew.add_working_days(d("2026-06-09"), 1), d("2026-06-10"));
}

#[test]
fn a_closure_without_to_or_calendars_is_one_day_in_every_division() {
    let text = "[[closure]]\nfrom = 2026-06-10\nreason = \"Staff training day\"\n";
    let dir = dir_with(&[("training.toml", text)]);
    let calendars = Calendars::load(dir.path()).unwrap();
    for name in DIVISIONS {
        let c = calendars.get(name).unwrap();
        assert_eq!(
            c.closure(d("2026-06-10")),
            Some("Staff training day"),
            "{name}"
        );
        assert!(c.is_working_day(d("2026-06-11")), "{name}");
    }
}

#[test]
fn a_bank_holiday_keeps_its_title_inside_a_closure() {
    let text = "[[closure]]\nfrom = 2026-12-24\nto = 2026-12-31\nreason = \"Christmas shutdown\"\n";
    let dir = dir_with(&[("xmas.toml", text)]);
    let calendars = Calendars::load(dir.path()).unwrap();
    let c = calendars.get(EW).unwrap();
    assert_eq!(c.closure(d("2026-12-24")), Some("Christmas shutdown"));
    assert_eq!(c.closure(d("2026-12-25")), Some("Christmas Day"));
    assert_eq!(
        c.closure(d("2026-12-26")),
        Some("Christmas shutdown"),
        "a Saturday"
    );
    assert_eq!(c.working_days_between(d("2026-12-23"), d("2027-01-04")), 1);
}

#[test]
fn every_toml_file_in_the_directory_is_a_closures_file() {
    let a = "[[closure]]\nfrom = 2026-06-10\nreason = \"Training\"\n";
    let b = "[[closure]]\nfrom = 2026-06-10\nreason = \"Stocktake\"\n\n[[closure]]\nfrom = 2026-06-11\nreason = \"Stocktake\"\n";
    let dir = dir_with(&[("a.toml", a), ("b.toml", b), ("notes.txt", "not read")]);
    let calendars = Calendars::load(dir.path()).unwrap();
    let c = calendars.get(NI).unwrap();
    assert_eq!(
        c.closure(d("2026-06-10")),
        Some("Training"),
        "first file wins"
    );
    assert_eq!(c.closure(d("2026-06-11")), Some("Stocktake"));
}

#[test]
fn a_missing_bank_holidays_file_is_a_problem_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let found = Calendars::load(dir.path()).unwrap_err();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].file, dir.path().join(BANK_HOLIDAYS_FILE));
    assert_eq!((found[0].line, found[0].column), (1, 1));
    assert!(
        found[0].message.starts_with("cannot read file"),
        "{}",
        found[0]
    );
    assert!(
        found[0]
            .help
            .as_deref()
            .unwrap()
            .contains("gov.uk/bank-holidays.json")
    );
}

#[test]
fn a_missing_directory_is_one_problem() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("calendars");
    let found = Calendars::load(&missing).unwrap_err();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].file, missing);
    assert_eq!(found[0].message, "calendar directory not found");
}

#[test]
fn malformed_json_is_a_problem_at_its_line_and_column() {
    let json = "{\n  \"england-and-wales\": {\n    \"events\": [\n      {\"title\": \"x\", \"date\": \"2026-01-01\"},,\n";
    let found = problems(&[(BANK_HOLIDAYS_FILE, json)]);
    let found = where_and_what(&found);
    assert_eq!(found.len(), 1, "{found:?}");
    let (file, line, column, message) = &found[0];
    assert_eq!((file.as_str(), *line, *column), (BANK_HOLIDAYS_FILE, 4, 44));
    // Column 44 is the second comma.
    assert!(
        message.starts_with("not GOV.UK's bank holidays JSON: "),
        "{message}"
    );
    assert!(
        !message.contains("at line"),
        "the position is not repeated: {message}"
    );
}

#[test]
fn an_impossible_date_in_the_json_is_a_problem_on_its_line() {
    let text = std::fs::read_to_string(calendars_dir().join(BANK_HOLIDAYS_FILE)).unwrap();
    let broken = text.replacen("\"2019-04-19\"", "\"2019-04-31\"", 1);
    let line = broken
        .lines()
        .position(|l| l.contains("2019-04-31"))
        .unwrap()
        + 1;
    let found = problems(&[(BANK_HOLIDAYS_FILE, &broken)]);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].line, line, "{}", found[0]);
}

#[test]
fn a_division_missing_from_the_json_is_a_problem() {
    let json =
        "{\n  \"england-and-wales\": {\"events\": []},\n  \"scotland\": {\"events\": []}\n}\n";
    let found = problems(&[(BANK_HOLIDAYS_FILE, json)]);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].line, 4);
    assert!(
        found[0].message.contains("northern-ireland"),
        "{}",
        found[0]
    );
}

#[test]
fn an_unknown_key_in_a_closures_file_is_a_problem_at_the_key() {
    let text = "[[closure]]\nfrom = 2026-12-29\noffice = \"Leeds\"\nreason = \"Move\"\n";
    let found = where_and_what(&problems(&[("closures.toml", text)]));
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!((found[0].1, found[0].2), (3, 1), "{found:?}");
    assert!(found[0].3.contains("unknown field `office`"), "{found:?}");
}

#[test]
fn a_closures_file_that_is_not_toml_is_a_problem_at_the_error() {
    let text = "[[closure]]\nfrom = 2026-12-29\nreason = \"Move\n";
    let found = where_and_what(&problems(&[("closures.toml", text)]));
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].1, 3, "{found:?}");
}

#[test]
fn mistakes_in_a_closure_are_each_a_problem_at_their_value() {
    let text = "[[closure]]\nfrom = 2026-12-29\nto = 2026-12-28\nreason = \"  \"\ncalendars = [\"england-and-wales\", \"wales\"]\n";
    let found = where_and_what(&problems(&[("closures.toml", text)]));
    let at: Vec<_> = found.iter().map(|(_, l, c, _)| (*l, *c)).collect();
    assert_eq!(at, [(3, 6), (4, 10), (5, 35)], "{found:?}");
    assert_eq!(
        found[0].3,
        "closure ends (2026-12-28) before it starts (2026-12-29)"
    );
    assert_eq!(found[1].3, "closure reason is empty");
    assert_eq!(found[2].3, "unknown calendar \"wales\"");
}

#[test]
fn an_unknown_calendar_lists_the_known_ones() {
    let text = "[[closure]]\nfrom = 2026-12-29\nreason = \"x\"\ncalendars = [\"england\"]\n";
    let found = problems(&[("closures.toml", text)]);
    let help = found[0].help.as_deref().unwrap();
    assert_eq!(
        help,
        "use one of: england-and-wales, scotland, northern-ireland"
    );
}

#[test]
fn closure_dates_must_be_bare_dates_within_a_year() {
    let text = "[[closure]]\nfrom = 2026-12-29T09:00:00\nreason = \"x\"\n\n[[closure]]\nfrom = 2026-12-29\nto = 2062-12-31\nreason = \"typo\"\n\n[[closure]]\nfrom = 2026-12-29\nreason = \"x\"\ncalendars = []\n";
    let found = where_and_what(&problems(&[("closures.toml", text)]));
    let at: Vec<_> = found.iter().map(|(_, l, c, _)| (*l, *c)).collect();
    assert_eq!(at, [(2, 8), (7, 6), (13, 13)], "{found:?}");
    assert!(
        found[0].3.contains("from must be a date without a time"),
        "{found:?}"
    );
    assert!(found[1].3.contains("lasts 13152 days"), "{found:?}");
    assert_eq!(found[2].3, "closure applies to no calendars");
}

#[test]
fn problems_in_every_file_are_reported_together_in_file_order() {
    let bad_key = "[[closure]]\nfrom = 2026-12-29\nreason = \"x\"\nuntil = 2026-12-30\n";
    let bad_to = "[[closure]]\nfrom = 2026-12-29\nto = 2026-12-01\nreason = \"x\"\n";
    let json = "{";
    let found = problems(&[
        ("b.toml", bad_to),
        ("a.toml", bad_key),
        (BANK_HOLIDAYS_FILE, json),
    ]);
    let files: Vec<_> = where_and_what(&found)
        .into_iter()
        .map(|f| (f.0, f.1))
        .collect();
    assert_eq!(
        files,
        [
            ("a.toml".into(), 4),
            ("b.toml".into(), 3),
            (BANK_HOLIDAYS_FILE.into(), 1)
        ]
    );
}
