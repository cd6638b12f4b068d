//! Functions the host gives every script: `days_between` for advice conditions, `notify` and
//! `reassign` for escalation rules' actions, and `least_loaded` for allocation rules. Each is pure:
//! it reads its arguments and returns a value.

use std::sync::Arc;

use rhai::{Array, Dynamic, Engine, EvalAltResult, ImmutableString, Map, NativeCallContext};

pub(super) fn register(engine: &mut Engine) {
    register_action_helpers(engine);
    engine.register_fn("days_between", days_between);
    engine.register_fn(
        "least_loaded",
        |context: NativeCallContext, officers: &mut Array, role: &str| {
            least_loaded(&context, officers, &[role])
        },
    );
    engine.register_fn(
        "least_loaded",
        |context: NativeCallContext, officers: &mut Array, roles: Array| {
            let roles = roles
                .iter()
                .map(|r| r.clone().into_immutable_string())
                .collect::<Result<Vec<ImmutableString>, _>>()
                .map_err(|t| format!("least_loaded: roles must be strings, not {t}"))?;
            let roles: Vec<&str> = roles.iter().map(|r| r.as_str()).collect();
            least_loaded(&context, officers, &roles)
        },
    );
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
/// When the host passed the [`Loads`] of this very array, it chooses from those.
fn least_loaded(
    context: &NativeCallContext,
    officers: &mut Array,
    roles: &[&str],
) -> Result<Dynamic, Box<EvalAltResult>> {
    let loads = context.tag().and_then(|t| t.read_lock::<Arc<Loads>>());
    let chosen = match loads {
        Some(loads) if loads.describe(officers) => loads.least_loaded(roles),
        _ => least_loaded_of_maps(officers, roles)?,
    };
    Ok(chosen.map_or(Dynamic::UNIT, |i| officers[i].flatten_clone()))
}

/// [`least_loaded`] reading each officer's map: the index of the officer chosen.
fn least_loaded_of_maps(
    officers: &Array,
    roles: &[&str],
) -> Result<Option<usize>, Box<EvalAltResult>> {
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
    Ok(best.map(|(i, ..)| i))
}

/// What `least_loaded` reads of an array of officers, read once from the array: the host keeps
/// it beside the shared, read-only array it gives every rule of a batch (and updates both when
/// it counts a case), and passes it with each call, so that `least_loaded` on that array reads
/// no maps. Used for that array only: any other array, a rule's own copy among them, is read
/// map by map.
#[derive(Debug, Clone)]
pub struct Loads {
    /// Where the array's elements are, which no other live array shares.
    elements: usize,
    /// Each officer's roles and open cases, in the array's order.
    officers: Vec<(Vec<ImmutableString>, i64)>,
    /// Positions in the array, ordered by ref (and, for equal refs, by position): the order
    /// ties are settled in.
    by_ref: Vec<usize>,
}

impl Loads {
    /// `None` when an element is not an officer map with ref, roles and open_cases: then
    /// `least_loaded` reads the maps, and says which is not an officer.
    pub fn of(officers: &Array) -> Option<Loads> {
        let mut read = Vec::with_capacity(officers.len());
        let mut refs = Vec::with_capacity(officers.len());
        for officer in officers {
            let map = officer.read_lock::<Map>()?;
            let roles = map
                .get("roles")?
                .read_lock::<Array>()?
                .iter()
                .filter_map(|r| r.read_lock::<ImmutableString>().map(|r| r.clone()))
                .collect();
            let load = map.get("open_cases")?.as_int().ok()?;
            refs.push(map.get("ref")?.read_lock::<ImmutableString>()?.clone());
            read.push((roles, load));
        }
        let mut by_ref: Vec<usize> = (0..read.len()).collect();
        by_ref.sort_by(|a, b| refs[*a].as_str().cmp(refs[*b].as_str()));
        Some(Loads {
            elements: officers.as_ptr() as usize,
            officers: read,
            by_ref,
        })
    }

    /// Sets the open cases of the officer at `index`, as the host has in the array's map.
    pub fn set_open_cases(&mut self, index: usize, open_cases: i64) {
        if let Some((_, load)) = self.officers.get_mut(index) {
            *load = open_cases;
        }
    }

    /// Whether these are the loads of `officers` (an empty array has nobody to choose anyway).
    fn describe(&self, officers: &Array) -> bool {
        !officers.is_empty()
            && officers.as_ptr() as usize == self.elements
            && officers.len() == self.officers.len()
    }

    /// The position of the least loaded officer holding every role: the first, in ref order,
    /// of those with the fewest open cases.
    fn least_loaded(&self, roles: &[&str]) -> Option<usize> {
        let mut best: Option<(usize, i64)> = None;
        for &i in &self.by_ref {
            let (held, load) = &self.officers[i];
            if !roles.iter().all(|r| held.iter().any(|h| h.as_str() == *r)) {
                continue;
            }
            if best.is_none_or(|(_, l)| *load < l) {
                best = Some((i, *load));
            }
        }
        best.map(|(i, _)| i)
    }
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

#[cfg(test)]
mod loads_tests {
    use proptest::prelude::*;
    use rhai::{Array, Dynamic};

    use super::{Loads, least_loaded_of_maps};

    /// Officers with few refs, roles and loads, so that ties and shared refs are common.
    fn officers() -> impl Strategy<Value = Vec<(u8, Vec<u8>, i64)>> {
        let officer = (0..4_u8, proptest::collection::vec(0..3_u8, 0..3), 0..3_i64);
        proptest::collection::vec(officer, 0..8)
    }

    fn array(officers: &[(u8, Vec<u8>, i64)]) -> Array {
        let role = |r: &u8| format!("r{r}");
        officers
            .iter()
            .map(|(r, roles, open)| {
                let roles: Vec<String> = roles.iter().map(role).collect();
                rhai::serde::to_dynamic(serde_json::json!(
                    {"ref": format!("o{r}"), "roles": roles, "open_cases": open, "line_manager": null}
                ))
                .unwrap()
            })
            .collect()
    }

    proptest! {
        #[test]
        fn the_loads_choose_as_reading_the_maps_does(
            officers in officers(),
            wanted in proptest::collection::vec(0..4_u8, 0..3),
            counted in proptest::collection::vec(0..8_usize, 0..4),
        ) {
            let mut array = array(&officers);
            let mut loads = Loads::of(&array).unwrap();
            prop_assert!(loads.describe(&array) || array.is_empty());
            // Cases counted as a batch counts them: in the map, and in the loads.
            let len = array.len();
            for i in counted.into_iter().filter(|i| *i < len) {
                let mut map = array[i].as_map_mut().unwrap();
                let open = map["open_cases"].as_int().unwrap() + 1;
                map.insert("open_cases".into(), Dynamic::from_int(open));
                drop(map);
                loads.set_open_cases(i, open);
            }
            let wanted: Vec<String> = wanted.iter().map(|r| format!("r{r}")).collect();
            let wanted: Vec<&str> = wanted.iter().map(String::as_str).collect();
            prop_assert_eq!(
                loads.least_loaded(&wanted),
                least_loaded_of_maps(&array, &wanted).unwrap()
            );
        }
    }

    #[test]
    fn the_loads_of_one_array_are_not_used_for_another() {
        let officers = [(1, vec![0], 0)];
        let (one, other) = (array(&officers), array(&officers));
        let loads = Loads::of(&one).unwrap();
        assert!(loads.describe(&one));
        assert!(!loads.describe(&other));
        assert!(!loads.describe(&Array::new()));
        assert!(Loads::of(&vec![Dynamic::from_int(1)]).is_none());
    }
}
