//! Functions the host gives every script: `days_between` for advice conditions, `notify` and
//! `reassign` for escalation rules' actions, and `least_loaded` for allocation rules. Each is pure:
//! it reads its arguments and returns a value.

use rhai::{Array, Dynamic, Engine, EvalAltResult, ImmutableString, Map};

pub(super) fn register(engine: &mut Engine) {
    register_action_helpers(engine);
    engine.register_fn("days_between", days_between);
    engine.register_fn("least_loaded", |officers: &mut Array, role: &str| {
        least_loaded(officers, &[role])
    });
    engine.register_fn("least_loaded", |officers: &mut Array, roles: Array| {
        let roles = roles
            .iter()
            .map(|r| r.clone().into_immutable_string())
            .collect::<Result<Vec<ImmutableString>, _>>()
            .map_err(|t| format!("least_loaded: roles must be strings, not {t}"))?;
        let roles: Vec<&str> = roles.iter().map(|r| r.as_str()).collect();
        least_loaded(officers, &roles)
    });
}

/// `days_between(from, to)`: whole days from one "YYYY-MM-DD" date to another, negative when
/// `to` is earlier. Pure, so advice conditions can compare dates with `today`.
fn days_between(from: &str, to: &str) -> Result<i64, Box<EvalAltResult>> {
    let parse = |what: &str, s: &str| -> Result<chrono::NaiveDate, Box<EvalAltResult>> {
        chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
            .map_err(|_| format!("days_between: {what} {s:?} is not a date (YYYY-MM-DD)").into())
    };
    Ok((parse("to", to)? - parse("from", from)?).num_days())
}

/// `officers.least_loaded(role)`: of the officers (maps as allocation rules get them) who hold
/// `role`, the one with the fewest `open_cases`, ties to the lower `ref`; `()` when nobody holds
/// it. Given an array of roles, of those who hold every one. The same choice as a loop over the
/// officers in the script, made by the host, so a rule stays fast with hundreds of officers.
fn least_loaded(officers: &mut Array, roles: &[&str]) -> Result<Dynamic, Box<EvalAltResult>> {
    let mut best: Option<(usize, i64, ImmutableString)> = None;
    for (i, officer) in officers.iter().enumerate() {
        let not_an_officer = || -> Box<EvalAltResult> {
            format!(
                "least_loaded: officers[{i}] is not an officer (a map with ref, roles and open_cases)"
            )
            .into()
        };
        let map = officer.read_lock::<Map>().ok_or_else(not_an_officer)?;
        let field = |name: &str| map.get(name).ok_or_else(not_an_officer);
        let held = field("roles")?
            .read_lock::<Array>()
            .ok_or_else(not_an_officer)?;
        let holds = |role: &&str| {
            held.iter().any(|r| {
                r.read_lock::<ImmutableString>()
                    .is_some_and(|r| r.as_str() == *role)
            })
        };
        if !roles.iter().all(holds) {
            continue;
        }
        let load = field("open_cases")?
            .as_int()
            .map_err(|_| not_an_officer())?;
        let reference = field("ref")?
            .read_lock::<ImmutableString>()
            .map(|r| r.clone())
            .ok_or_else(not_an_officer)?;
        let better = match &best {
            None => true,
            Some((_, l, r)) => load < *l || (load == *l && reference < *r),
        };
        if better {
            best = Some((i, load, reference));
        }
    }
    Ok(best.map_or(Dynamic::UNIT, |(i, ..)| officers[i].flatten_clone()))
}

/// Registers the helpers escalation rules build their actions with (`notify`, `reassign`);
/// `rules::escalation` reads the maps they make.
fn register_action_helpers(engine: &mut Engine) {
    engine.register_fn("notify", |to: Array, template: &str| -> Map {
        let mut m = Map::new();
        m.insert("notify".into(), Dynamic::from_array(to));
        m.insert("template".into(), template.into());
        m
    });
    engine.register_fn("notify", |to: &str, template: &str| -> Map {
        let mut m = Map::new();
        m.insert("notify".into(), Dynamic::from_array(vec![to.into()]));
        m.insert("template".into(), template.into());
        m
    });
    engine.register_fn("reassign", |to: &str| -> Map {
        let mut m = Map::new();
        m.insert("reassign".into(), to.into());
        m
    });
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use rhai::Dynamic;

    use crate::script::{Limits, Sandbox};

    fn officers() -> Dynamic {
        let officer = |r: &str, roles: &[&str], open: i64| serde_json::json!({"ref": r, "roles": roles, "open_cases": open, "line_manager": null});
        rhai::serde::to_dynamic(serde_json::json!([
            officer("cy", &["team", "north"], 2),
            officer("bo", &["team"], 1),
            officer("al", &["team", "north"], 2),
            officer("di", &["legal"], 0),
        ]))
        .unwrap()
    }

    fn chosen(expression: &str) -> Result<String, String> {
        let sandbox = Sandbox::new(&Limits::default());
        let text = format!(
            "fn f(officers) {{ let o = {expression}; if o == () {{ \"nobody\" }} else {{ o.ref }} }}"
        );
        let script = sandbox.compile("t", Path::new("t.rhai"), &text).unwrap();
        sandbox
            .call(&script, "f", (officers(),))
            .map(|d| d.into_string().unwrap())
            .map_err(|e| e.message)
    }

    #[test]
    fn least_loaded_picks_the_fewest_open_cases_among_holders_of_the_role_ties_to_the_lower_ref() {
        assert_eq!(chosen("officers.least_loaded(\"team\")").unwrap(), "bo");
        assert_eq!(chosen("officers.least_loaded(\"north\")").unwrap(), "al");
        assert_eq!(
            chosen("officers.least_loaded([\"team\", \"north\"])").unwrap(),
            "al"
        );
        assert_eq!(
            chosen("officers.least_loaded([\"legal\", \"north\"])").unwrap(),
            "nobody"
        );
        assert_eq!(
            chosen("officers.least_loaded(\"south\")").unwrap(),
            "nobody"
        );
        assert_eq!(chosen("[].least_loaded(\"team\")").unwrap(), "nobody");
    }

    #[test]
    fn least_loaded_refuses_what_is_not_a_list_of_officers() {
        let err = chosen("[1].least_loaded(\"team\")").unwrap_err();
        assert!(err.contains("officers[0] is not an officer"), "{err}");
        let err = chosen("[#{ref: \"x\", roles: [\"team\"]}].least_loaded(\"team\")").unwrap_err();
        assert!(err.contains("officers[0] is not an officer"), "{err}");
        let err = chosen("officers.least_loaded([\"team\", 5])").unwrap_err();
        assert!(err.contains("roles must be strings"), "{err}");
    }
}
