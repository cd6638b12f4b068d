//! The `cases:read` endpoints: a case in full and in pages, worklists and decisions, forms,
//! advice and housing pack files; each the document the CLI prints, each refused by name.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::api_on_both_backends;
use crate::seed::{self, all_ok, get, refused};

fn refs(page: &Value) -> Vec<&str> {
    page["cases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["case_ref"].as_str().unwrap())
        .collect()
}

fn complete(case_ref: &str, task: &str, by: &str) -> Value {
    json!({"type": "complete_task", "case_ref": case_ref, "task": task, "by": by})
}

api_on_both_backends! {
    async fn a_case_reads_as_show_case_prints_it(api: Api) {
        seed::organisation(api).await;
        all_ok(api, vec![seed::rtb_claim("RTB/1", "tenant1", true)]).await;
        let reader = api.client("crm-reader", "cases:read").await;

        // A reference with a slash travels percent-encoded as one path segment.
        let (status, _, shown) = get(api, &reader, "/v1/cases/RTB%2F1").await;
        assert_eq!(status, StatusCode::OK, "{shown:#}");
        let report = casewarden::report::case(&api.db, "RTB/1").await.unwrap().unwrap();
        assert_eq!(shown, serde_json::to_value(&report).unwrap(), "the document `show case --json` prints");
        assert_eq!(shown["case"]["owner"], "off1");

        refused(api, &reader, "/v1/cases/RTB-404", StatusCode::NOT_FOUND, "no case \"RTB-404\"").await;
        refused(api, &reader, "/v1/cases/RTB%201", StatusCode::BAD_REQUEST, "ref \"RTB 1\" contains").await;
        let writer = api.client("crm-writer", "commands:write").await;
        for path in ["/v1/cases/RTB%2F1", "/v1/cases", "/v1/worklists/users/off1", "/v1/worklists/roles/legal",
                     "/v1/worklists/decisions", "/v1/forms/section_21", "/v1/cases/RTB%2F1/advice",
                     "/v1/cases/RTB%2F1/packs/1/html"] {
            refused(api, &writer, path, StatusCode::FORBIDDEN, "lacks the cases:read scope").await;
        }
    }

    async fn cases_are_listed_a_page_at_a_time_and_filtered(api: Api) {
        seed::organisation(api).await;
        all_ok(api, vec![
            seed::rtb_claim("RTB-1", "tenant1", true),
            seed::rtb_claim("RTB-2", "tenant2", false),
            seed::rtb_claim("RTB-3", "tenant3", true),
            seed::launch("HO-1", "section_21", "tenant1"),
        ]).await;
        let reader = api.client("crm-reader", "cases:read").await;

        let (status, _, all) = get(api, &reader, "/v1/cases").await;
        assert_eq!(status, StatusCode::OK, "{all:#}");
        assert_eq!(refs(&all), ["RTB-1", "RTB-2", "RTB-3", "HO-1"], "in the order they were made");
        assert_eq!(all["next"], Value::Null);
        let rtb = &all["cases"][0];
        assert_eq!(
            (&rtb["kind"], &rtb["scheme"], &rtb["workflow"], &rtb["country"], &rtb["status"], &rtb["owner"]),
            (&json!("home_buy"), &json!("right_to_buy"), &Value::Null, &json!("england"), &json!("open"), &json!("off1"))
        );
        assert_eq!(rtb["open_stage"], "application");
        assert_eq!(rtb["received_at"], "2026-01-05T09:00:00Z");
        assert_eq!(rtb["closed_at"], Value::Null);
        assert!(rtb.get("id").is_none(), "ids stay inside: pages are reached by cursor");
        let ho = &all["cases"][3];
        assert_eq!((&ho["workflow"], &ho["owner"]), (&json!("section_21"), &json!("ho1")));
        let ho_case = casewarden::report::case(&api.db, "HO-1").await.unwrap().unwrap();
        assert_eq!(ho["target_at"], serde_json::to_value(ho_case.case.target_at).unwrap());
        assert!(ho["target_at"].is_string(), "a housing options case has its own target");

        // Pages of two: the cursor of the first leads to the second, which is the last.
        let (_, _, first) = get(api, &reader, "/v1/cases?limit=2").await;
        assert_eq!(refs(&first), ["RTB-1", "RTB-2"]);
        let next = first["next"].as_str().expect("a next page");
        let (_, _, second) = get(api, &reader, &format!("/v1/cases?limit=2&after={next}")).await;
        assert_eq!(refs(&second), ["RTB-3", "HO-1"]);
        assert_eq!(second["next"], Value::Null);

        // Each filter, alone and together.
        let matching = |pred: &dyn Fn(&Value) -> bool| -> Vec<String> {
            all["cases"].as_array().unwrap().iter().filter(|c| pred(c)).map(|c| c["case_ref"].as_str().unwrap().to_string()).collect()
        };
        let sla = rtb["sla_state"].as_str().expect("the open stage's SLA state").to_string();
        for (query, expected) in [
            ("owner=off1", matching(&|c| c["owner"] == "off1")),
            ("scheme=right_to_buy", vec!["RTB-1".into(), "RTB-2".into(), "RTB-3".into()]),
            ("workflow=section_21", vec!["HO-1".into()]),
            ("status=open", matching(&|_| true)),
            ("status=closed", vec![]),
            (&format!("sla_state={sla}"), matching(&|c| c["sla_state"] == sla.as_str())),
            ("owner=off1&scheme=right_to_buy&status=open&limit=1", vec!["RTB-1".into()]),
        ] {
            let (status, _, page) = get(api, &reader, &format!("/v1/cases?{query}")).await;
            assert_eq!(status, StatusCode::OK, "{query}: {page:#}");
            assert_eq!(refs(&page), expected, "{query}");
        }
        assert!(matching(&|c| c["owner"] == "off1").len() >= 2, "off1 has the north patch's claims");
    }

    async fn a_filter_that_does_not_parse_is_refused_by_name(api: Api) {
        let reader = api.client("crm-reader", "cases:read").await;
        for (query, needle) in [
            ("status=shut", "status: unknown variant `shut`"),
            ("sla_state=red", "sla_state: unknown variant `red`"),
            ("limit=0", "limit 0 is out of range: ask for 1 to 500"),
            ("limit=501", "limit 501 is out of range"),
            ("limit=ten", "the query string is not understood: limit: invalid digit"),
            ("owner=off%201", "owner \"off 1\" contains"),
            ("scheme=", "scheme is empty"),
            ("workflow=%2Fx", "workflow \"/x\" does not start with a letter or digit"),
            ("after=not-a-cursor", "after \"not-a-cursor\" is not a cursor this API gave"),
            ("stauts=open", "unknown field `stauts`"),
        ] {
            refused(api, &reader, &format!("/v1/cases?{query}"), StatusCode::BAD_REQUEST, needle).await;
        }
    }

    async fn worklists_are_the_cli_worklists_and_decisions_wait_on_their_own(api: Api) {
        seed::organisation(api).await;
        all_ok(api, vec![seed::rtb_claim("RTB-1", "tenant1", true), seed::rtb_claim("RTB-2", "tenant2", true)]).await;
        let reader = api.client("crm-reader", "cases:read").await;

        let (status, _, mine) = get(api, &reader, "/v1/worklists/users/off1").await;
        assert_eq!(status, StatusCode::OK, "{mine:#}");
        let expected = casewarden::report::worklist(&api.db, Some("off1"), None).await.unwrap();
        assert_eq!(mine, serde_json::to_value(&expected).unwrap(), "as `worklist --user off1 --json`");
        assert!(mine.as_array().unwrap().iter().any(|t| t["case_ref"] == "RTB-2" && t["task"] == "check_signatories"), "{mine:#}");
        let (status, _, team) = get(api, &reader, "/v1/worklists/roles/patch_north").await;
        assert_eq!(status, StatusCode::OK, "{team:#}");
        let expected = casewarden::report::worklist(&api.db, None, Some("patch_north")).await.unwrap();
        assert_eq!(team, serde_json::to_value(&expected).unwrap(), "as `worklist --role patch_north --json`");
        assert!(!team.as_array().unwrap().is_empty());
        refused(api, &reader, "/v1/worklists/users/nobody", StatusCode::NOT_FOUND, "no user \"nobody\"").await;
        refused(api, &reader, "/v1/worklists/roles/nobody", StatusCode::NOT_FOUND, "no role \"nobody\"").await;
        refused(api, &reader, "/v1/worklists/users/off%201", StatusCode::BAD_REQUEST, "ref \"off 1\"").await;

        // No decision waits yet; RTB-1 taken to the tenant's reply, which the CRM decides.
        let (status, _, none) = get(api, &reader, "/v1/worklists/decisions").await;
        assert_eq!((status, none), (StatusCode::OK, json!([])));
        for stage in [
            &["check_property_address", "check_signatories", "check_previous_tenancies", "register_claim"][..],
            &["check_exclusions", "confirm_qualifying_period", "issue_rtb2"],
            &["instruct_valuer", "inspect_property", "receive_valuation"],
            &["calculate_discount", "prepare_s125_offer", "serve_s125_offer"],
            &["await_tenant_reply"],
        ] {
            all_ok(api, stage.iter().map(|t| complete("RTB-1", t, "off1")).collect()).await;
        }
        let (status, _, waiting) = get(api, &reader, "/v1/worklists/decisions").await;
        assert_eq!(status, StatusCode::OK, "{waiting:#}");
        let rows = waiting.as_array().unwrap();
        assert_eq!(rows.len(), 1, "{waiting:#}");
        assert_eq!(
            (&rows[0]["case_ref"], &rows[0]["owner"], &rows[0]["after_stage"], &rows[0]["case_kind"]),
            (&json!("RTB-1"), &json!("off1"), &json!("tenant_reply"), &json!("home_buy"))
        );
        assert_eq!(rows[0]["decision"]["choices"], json!(["offer_accepted", "dv_determination"]));
        // The same case is on its owner's and roles' lists of cases with no task to work on.
        let (status, _, mine) = get(api, &reader, "/v1/worklists/users/off1/cases").await;
        assert_eq!(status, StatusCode::OK, "{mine:#}");
        let today = casewarden::clock::london_date(casewarden::clock::now());
        let expected = casewarden::report::waiting_cases(&api.db, Some("off1"), None, today).await.unwrap();
        assert_eq!(mine, serde_json::to_value(&expected).unwrap(), "as `worklist --user off1 --json`'s cases");
        assert_eq!((&mine[0]["case_ref"], &mine[0]["waits_for"], &mine[0]["choices"]), (&json!("RTB-1"), &json!("advance_case"), &json!(["offer_accepted", "dv_determination"])));
        let (status, _, team) = get(api, &reader, "/v1/worklists/roles/patch_north/cases").await;
        assert_eq!(status, StatusCode::OK, "{team:#}");
        assert_eq!(team.as_array().unwrap().iter().map(|c| &c["case_ref"]).collect::<Vec<_>>(), [&json!("RTB-1")]);
        let (_, _, none) = get(api, &reader, "/v1/worklists/users/off2/cases").await;
        assert_eq!(none, json!([]));
        refused(api, &reader, "/v1/worklists/users/nobody/cases", StatusCode::NOT_FOUND, "no user \"nobody\"").await;
        refused(api, &reader, "/v1/worklists/roles/nobody/cases", StatusCode::NOT_FOUND, "no role \"nobody\"").await;
        refused(api, &reader, "/v1/worklists/roles/a%0Ab/cases", StatusCode::BAD_REQUEST, "ref \"a\\nb\"").await;
        let (_, _, awaiting) = get(api, &reader, "/v1/cases?status=awaiting_advance").await;
        assert_eq!(refs(&awaiting), ["RTB-1"]);
        assert_eq!((&awaiting["cases"][0]["open_stage"], &awaiting["cases"][0]["sla_state"]), (&Value::Null, &Value::Null));
    }

    async fn a_form_comes_from_the_rules_in_force(api: Api) {
        let reader = api.client("crm-reader", "cases:read").await;
        let (status, _, form) = get(api, &reader, "/v1/forms/section_21").await;
        assert_eq!(status, StatusCode::OK, "{form:#}");
        assert_eq!(form["id"], "private_renting");
        assert!(form["workflows"].as_array().unwrap().contains(&json!("section_21")));
        let household = form["questions"].as_array().unwrap().iter().find(|q| q["key"] == "household").unwrap();
        assert_eq!((&household["type"], &household["choices"][0]), (&json!("single_choice"), &json!("single")));
        let detail = refused(api, &reader, "/v1/forms/no_such_workflow", StatusCode::NOT_FOUND, "no housing options workflow \"no_such_workflow\" has a form").await;
        assert!(detail.contains("section_21"), "the known workflows are named: {detail}");
    }

    async fn a_housing_case_gives_its_advice_and_its_pack_files(api: Api) {
        seed::organisation(api).await;
        seed::housing_case_with_pack(api, "HO-1", "tenant1").await;
        all_ok(api, vec![seed::launch("HO-2", "section_21", "tenant2"), seed::rtb_claim("RTB-1", "tenant3", true)]).await;
        let reader = api.client("crm-reader", "cases:read").await;

        // Advice: as `casewarden advice HO-1 --now … --json`.
        let (status, _, advice) = get(api, &reader, "/v1/cases/HO-1/advice?now=2026-03-11T10:05:00Z").await;
        assert_eq!(status, StatusCode::OK, "{advice:#}");
        let choice = |id: &str| advice.as_array().unwrap().iter().find(|c| c["statement"] == id).cloned().unwrap_or_else(|| panic!("{id} in {advice:#}"));
        assert_eq!(choice("s21_deposit_not_protected")["chosen"], true);
        assert!(choice("s21_deposit_not_protected")["why"].as_str().unwrap().contains("answers.deposit = \"not_protected\""), "{advice:#}");
        assert_eq!(choice("s21_no_notice_yet")["chosen"], false);
        refused(api, &reader, "/v1/cases/HO-2/advice", StatusCode::CONFLICT, "case HO-2 has no enquiry answers yet").await;
        refused(api, &reader, "/v1/cases/RTB-1/advice", StatusCode::CONFLICT, "case RTB-1 is a home_buy case").await;
        refused(api, &reader, "/v1/cases/HO-404/advice", StatusCode::NOT_FOUND, "no case \"HO-404\"").await;
        refused(api, &reader, "/v1/cases/HO-1/advice?now=tuesday", StatusCode::BAD_REQUEST, "now: \"tuesday\" is not a time").await;

        // The pack's files, byte for byte as the engine recorded them, with headers that keep
        // applicant data from being run, sniffed or cached.
        let report = casewarden::report::case(&api.db, "HO-1").await.unwrap().unwrap();
        let recorded = |media: &str| {
            let a = report.attachments.iter().find(|a| a.media_type == media).unwrap();
            std::path::PathBuf::from(a.uri.strip_prefix("file://").unwrap())
        };
        for (format, media, csp) in [("html", "text/html", true), ("txt", "text/plain", false)] {
            let response = api.request(reqwest::Method::GET, &reader, &format!("/v1/cases/HO-1/packs/1/{format}")).send().await.unwrap();
            assert_eq!(response.status(), StatusCode::OK, "{format}");
            let headers = response.headers().clone();
            assert_eq!(headers["content-type"], format!("{media}; charset=utf-8"));
            assert_eq!(headers["x-content-type-options"], "nosniff");
            assert_eq!(headers["cache-control"], "private, no-store");
            assert_eq!(headers.get("content-security-policy").map(|v| v.to_str().unwrap()),
                       csp.then_some("default-src 'none'; style-src 'unsafe-inline'"), "{format}");
            let body = response.bytes().await.unwrap();
            assert_eq!(body.as_ref(), std::fs::read(recorded(media)).unwrap().as_slice(), "{format}");
            assert!(String::from_utf8_lossy(&body).contains("Tenant 1"), "{format}");
        }
        refused(api, &reader, "/v1/cases/HO-1/packs/2/html", StatusCode::NOT_FOUND, "case HO-1 has no housing pack v2").await;
        refused(api, &reader, "/v1/cases/HO-2/packs/1/txt", StatusCode::NOT_FOUND, "case HO-2 has no housing pack v1").await;
        refused(api, &reader, "/v1/cases/HO-404/packs/1/txt", StatusCode::NOT_FOUND, "no case \"HO-404\"").await;
        refused(api, &reader, "/v1/cases/HO-1/packs/0/txt", StatusCode::BAD_REQUEST, "version \"0\" is not a whole number from 1").await;
        refused(api, &reader, "/v1/cases/HO-1/packs/v1/txt", StatusCode::BAD_REQUEST, "version \"v1\"").await;
        refused(api, &reader, "/v1/cases/HO-1/packs/1/pdf", StatusCode::BAD_REQUEST, "format \"pdf\" is not one of: html, txt").await;
        refused(api, &reader, "/v1/cases/HO-1/packs/1/..%2F..%2Fcases.db", StatusCode::BAD_REQUEST, "format").await;

        // A file changed on disk since it was made is not served.
        std::fs::write(recorded("text/plain"), "something else").unwrap();
        refused(api, &reader, "/v1/cases/HO-1/packs/1/txt", StatusCode::CONFLICT, "changed since it was made").await;
        std::fs::remove_file(recorded("text/html")).unwrap();
        refused(api, &reader, "/v1/cases/HO-1/packs/1/html", StatusCode::CONFLICT, "is missing").await;
    }
}
