use super::*;

const HEAD: &str = "id = \"t\"\nname = \"T\"\nkind = \"home_buy\"\nscheme = \"right_to_buy\"\ncountry = \"england\"\neffective_from = 2020-01-01\nteam_role = \"team\"\n";

fn problems(body: &str) -> Vec<Problem> {
    let files = vec![(PathBuf::from("d.toml"), format!("{HEAD}{body}"))];
    let sandbox = std::sync::Arc::new(crate::script::Sandbox::new(
        &crate::script::Limits::default(),
    ));
    let known = KnownNames {
        sandbox: Some(sandbox),
        ..KnownNames::default()
    };
    compile(&files, &known).err().unwrap_or_default()
}

#[test]
fn a_target_expression_is_compiled_and_its_errors_point_into_the_string() {
    let stage = |sla: &str| {
        format!(
            "[[stage]]\nkey = \"s\"\nname = \"S\"\nmaster = \"application\"\norder = 1\nsla = {{ {sla} }}\n\
                 [[stage.task]]\nkey = \"a\"\nname = \"A\"\n"
        )
    };
    assert!(problems(&stage(r#"target_expr = 'if case_facts.tenure == "leasehold" { "12 weeks" } else { "8 weeks" }'"#)).is_empty());
    let p = problems(&stage(
        r#"target_expr = 'if case_facts.tenure == { "12 weeks" }'"#,
    ));
    assert_eq!(p.len(), 1, "{p:?}");
    assert_eq!(p[0].line, 13, "{}", p[0]);
    assert!(p[0].message.starts_with("target_expr:"), "{}", p[0]);
    let p = problems(&stage(r#"target_expr = 'tenure == "x"'"#));
    assert!(
        p[0].message.contains("tenure"),
        "undefined variables are refused: {}",
        p[0]
    );
    let p = problems(&stage(r#"target = "8 weeks", target_expr = '"8 weeks"'"#));
    assert!(
        p[0].message
            .contains("one of target, target_by or target_expr"),
        "{}",
        p[0]
    );
}

#[test]
fn a_stage_whose_target_cannot_cover_a_chain_of_its_tasks_is_refused_at_the_task() {
    let body = "[[stage]]\nkey = \"s\"\nname = \"S\"\nmaster = \"application\"\norder = 1\nsla = { target = \"5 working days\" }\n\
                [[stage.task]]\nkey = \"a\"\nname = \"A\"\nsla = { target = \"3 working days\" }\n\
                [[stage.task]]\nkey = \"b\"\nname = \"B\"\ndepends_on = [\"a\"]\nsla = { target = \"3 working days\" }\n";
    let p = problems(body);
    assert_eq!(p.len(), 1, "{p:?}");
    assert_eq!((p[0].line, p[0].column), (22, 18), "{}", p[0]);
    assert!(p[0].message.contains("task \"b\" has a target of 3 working days after 3 working day(s) of tasks it depends on"), "{}", p[0]);
    assert!(
        p[0].message
            .contains("stage \"s\"'s target of 5 working days"),
        "{}",
        p[0]
    );
}

#[test]
fn a_gap_between_definitions_of_one_scheme_must_be_explained() {
    let def = |id: &str, dates: &str, closed: &str| {
        format!(
            "id = \"{id}\"\nname = \"T\"\nkind = \"home_buy\"\nscheme = \"right_to_buy\"\ncountry = \"england\"\n{dates}\n{closed}\
                 team_role = \"team\"\n[[stage]]\nkey = \"s\"\nname = \"S\"\nmaster = \"application\"\norder = 1\n\
                 [[stage.task]]\nkey = \"a\"\nname = \"A\"\n"
        )
    };
    let compile_two = |closed: &str, second_from: &str| {
        let files = vec![
            (
                PathBuf::from("a.toml"),
                def(
                    "a",
                    "effective_from = 2020-01-01\neffective_to = 2020-12-31",
                    closed,
                ),
            ),
            (
                PathBuf::from("b.toml"),
                def("b", &format!("effective_from = {second_from}"), ""),
            ),
        ];
        compile(&files, &KnownNames::default())
            .err()
            .unwrap_or_default()
    };
    assert!(
        compile_two("", "2021-01-01").is_empty(),
        "back to back is fine"
    );
    let p = compile_two("", "2021-03-01");
    assert_eq!(p.len(), 1, "{p:?}");
    assert_eq!(p[0].file, PathBuf::from("b.toml"));
    assert!(
        p[0].message.contains("from 2021-01-01 to 2021-02-28"),
        "{}",
        p[0]
    );
    assert!(
        compile_two("closed_reason = \"suspended by order\"\n", "2021-03-01").is_empty(),
        "an explained gap is fine"
    );
}

#[test]
fn a_task_in_weeks_must_fit_a_stage_in_weeks_and_claim_clocks_are_capped_instead() {
    let stage = |target: &str, task: &str| {
        format!(
            "[[stage]]\nkey = \"s\"\nname = \"S\"\nmaster = \"application\"\norder = 1\nsla = {{ target = \"{target}\" }}\n\
                 [[stage.task]]\nkey = \"a\"\nname = \"A\"\nsla = {{ {task} }}\n"
        )
    };
    assert!(problems(&stage("4 weeks", "target = \"4 weeks\"")).is_empty());
    assert_eq!(problems(&stage("4 weeks", "target = \"29 days\"")).len(), 1);
    assert!(
        problems(&stage(
            "4 weeks",
            "target = \"8 weeks\", from = \"case_received\""
        ))
        .is_empty()
    );
    let p = problems(&stage(
        "4 weeks",
        "target = \"1 week\", from = \"yesterday\"",
    ));
    assert!(
        p[0].message.contains("unknown clock start \"yesterday\""),
        "{}",
        p[0]
    );
}

#[test]
fn a_pausable_stage_over_a_non_pausable_task_that_waits_for_pausable_work_is_reported() {
    let body = |stage_sla: &str, from: &str| {
        format!(
            "[[stage]]\nkey = \"s\"\nname = \"S\"\nmaster = \"eligibility\"\norder = 1\nsla = {{ target = \"4 weeks\", from = \"case_received\"{stage_sla} }}\n\
             [[stage.task]]\nkey = \"a\"\nname = \"A\"\nsla = {{ target = \"5 working days\" }}\n\
             [[stage.task]]\nkey = \"b\"\nname = \"B\"\ndepends_on = [\"a\"]\nsla = {{ target = \"4 weeks\", from = \"{from}\", pausable = false }}\n"
        )
    };
    let p = problems(&body("", "case_received"));
    assert_eq!(p.len(), 1, "{p:?}");
    assert_eq!(p[0].line, 19, "reported at the non-pausable task: {}", p[0]);
    assert!(
        p[0].message
            .contains("stage \"s\" has a pausable clock but covers task \"b\"")
            && p[0]
                .message
                .contains("counts from the claim and waits for a"),
        "{}",
        p[0]
    );
    // The stage's clock not pausable, or the task's clock started by its own activation: nothing
    // a hold does can run the work past it unseen.
    assert!(problems(&body(", pausable = false", "case_received")).is_empty());
    assert!(problems(&body("", "activation")).is_empty());
}

#[test]
fn a_workflows_duties_name_known_duties_and_its_own_tasks_and_reach_the_compiled_tasks() {
    let workflow = |duties: &str| {
        let files = vec![(
            PathBuf::from("w.toml"),
            format!(
                "id = \"w\"\nname = \"W\"\nkind = \"housing_options\"\nworkflow = \"w\"\ncountry = \"wales\"\n\
                 effective_from = 2020-01-01\nteam_role = \"team\"\n{duties}\n\
                 [[task]]\nkey = \"prevention_duty\"\nname = \"P\"\nsla = {{ target = \"56 days\" }}\n\
                 [[task]]\nkey = \"relief_duty\"\nname = \"R\"\nmandatory = false\nactivation = \"manual\"\n"
            ),
        )];
        compile(&files, &KnownNames::default())
    };
    let defs =
        workflow("[duties]\nprevention = \"prevention_duty\"\nrelief = \"relief_duty\"\n").unwrap();
    let duty = |key: &str| defs[0].stages[0].task(key).and_then(|t| t.duty.clone());
    assert_eq!(duty("prevention_duty").as_deref(), Some("prevention"));
    assert_eq!(duty("relief_duty").as_deref(), Some("relief"));
    for (duties, expected) in [
        (
            "[duties]\ninterim = \"relief_duty\"\n",
            "[duties] names unknown duty \"interim\"",
        ),
        (
            "[duties]\nprevention = \"prevent\"\n",
            "duty \"prevention\" runs on task \"prevent\", which is not a task of this workflow",
        ),
        (
            "[duties]\nprevention = \"relief_duty\"\nrelief = \"relief_duty\"\n",
            "task \"relief_duty\" already runs the",
        ),
    ] {
        let p = workflow(duties).unwrap_err();
        assert!(
            p.iter().any(|p| p.message.contains(expected)),
            "{duties}: {p:?}"
        );
    }
    let p = problems(
        "[duties]\nprevention = \"a\"\n[[stage]]\nkey = \"s\"\nname = \"S\"\nmaster = \"application\"\norder = 1\n[[stage.task]]\nkey = \"a\"\nname = \"A\"\n",
    );
    assert!(
        p.iter()
            .any(|p| p.message == "only housing options workflows have [duties]"),
        "{p:?}"
    );
}
