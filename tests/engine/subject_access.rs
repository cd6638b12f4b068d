//! Subject access: the export of a contact holds every record the scenario made for them (their
//! record and group, both their cases with notes, holds, skips, amendments, answers, duties, plan
//! steps and packs, the notification sent to them) and nobody else's; the pack files beside it
//! are the ones casewarden made.

use casewarden::report::{copy_packs, export_contact};
use serde_json::json;

use crate::erasure::{JANE, JANE_DUTY_END, erase, jane_on_record, record_janes_duty};
use crate::on_both_backends;

on_both_backends! {
    async fn a_subject_access_export_holds_every_record_of_the_person_and_no_one_elses(env: Env) {
        let (env, _rules_dir, _mail) = jane_on_record(env).await;
        record_janes_duty(&env).await;

        let now = "2026-03-03T09:00:00Z".parse().unwrap();
        let access = export_contact(&env.db, "jane", now).await.unwrap().expect("jane is known");
        let document = serde_json::to_value(&access).unwrap();
        let text = document.to_string();
        // Every value she gave, wherever it is kept.
        for jane in JANE.into_iter().chain([JANE_DUTY_END]) {
            let escaped = serde_json::to_string(jane).unwrap();
            assert!(text.contains(&escaped[1..escaped.len() - 1]), "{jane:?} is missing from the export");
        }
        assert_eq!(document["contact"]["ref"], "jane");
        assert_eq!(document["groups"], json!([{"ref": "jane-household", "name": "The Example household"}]));
        let cases: Vec<&str> = access.cases.iter().map(|c| c.report.case.case_ref.as_str()).collect();
        assert_eq!(cases, ["E-1", "HO-1"], "her cases, and not E-2");
        let e1 = &document["cases"][0];
        assert_eq!(e1["notes"][0]["body"], JANE[7]);
        assert_eq!(e1["holds"][0]["reason"], JANE[8]);
        assert_eq!(e1["updates"][0]["reason"], JANE[10]);
        assert_eq!(e1["case"]["attributes"]["date_of_birth"], JANE[6]);
        let ho = &document["cases"][1];
        assert_eq!(ho["housing"]["enquiry"]["answers"]["household"], "family_with_children");
        assert_eq!(ho["housing"]["packs"][0]["version"], 1);
        assert!(ho["events"].as_array().unwrap().iter().any(|e| e["kind"] == "pack_rendered"));
        // The housing pack e-mailed to her, with the address it went to.
        assert_eq!(access.notifications.len(), 1, "{:?}", access.notifications);
        assert_eq!((access.notifications[0].template.as_str(), access.notifications[0].recipient_email.as_deref()), ("housing_pack", Some(JANE[1])));
        assert!(access.erasures.is_empty());
        // Nobody else's data.
        assert!(!text.contains("Tenant 2") && !text.contains("tenant2@example.net"), "{text}");

        // The pack files, as casewarden made them.
        let out = tempfile::tempdir().unwrap();
        let files = copy_packs(&env.db, &access, out.path()).await.unwrap();
        assert_eq!(files.len(), 2, "{files:?}");
        let html = std::fs::read_to_string(files.iter().find(|f| f.extension().is_some_and(|e| e == "html")).unwrap()).unwrap();
        assert!(html.contains("Jane Example"), "the pack names her");
        assert!(export_contact(&env.db, "nobody", now).await.unwrap().is_none());

        // After an erasure, the export says so and holds none of it.
        for case in ["E-1", "HO-1"] {
            env.ok("2026-03-03T09:00:00Z", json!({"type": "close_case", "case_ref": case, "outcome": "withdrawn"})).await;
        }
        erase(&env, "jane", ("ER-2026-031", false), (now, "operator")).await.unwrap();
        let after = export_contact(&env.db, "jane", now).await.unwrap().unwrap();
        let text = serde_json::to_string(&after).unwrap();
        for jane in JANE.into_iter().chain([JANE_DUTY_END]) {
            assert!(!text.contains(jane), "{jane:?} outlived the erasure: {text}");
        }
        assert_eq!(after.erasures.len(), 1);
        assert_eq!(after.erasures[0].reason, "ER-2026-031");
        assert!(after.contact.erased_at.is_some());
    }
}
