//! `update_case` over the API: the same command as through the inbox, recorded as the client's,
//! refused for a closed case.

use reqwest::StatusCode;
use serde_json::json;

use crate::api_on_both_backends;
use crate::seed::{self, all_ok, get};

api_on_both_backends! {
    async fn update_case_through_the_api_records_the_clients_amendment_and_a_closed_case_refuses_it(api: Api) {
        seed::organisation(api).await;
        all_ok(api, vec![seed::rtb_claim("RTB-U1", "tenant1", false)]).await;
        let writer = api.client("housing-crm", "commands:write").await;
        let update = json!({"type": "update_case", "case_ref": "RTB-U1", "reason": "found during the checks",
            "attributes": {"qualifying_period_all_with_landlord": false}, "property": {"tenure": "leasehold"}});
        let (status, body) = api.commands(&writer, &update).await;
        assert_eq!(status, StatusCode::OK, "{body:#}");
        assert_eq!(body["results"][0]["status"], "accepted", "{body:#}");
        let id = body["results"][0]["inbox_id"].as_i64().unwrap();
        let (_, outcome) = api.get(&writer, &format!("/v1/commands/{id}")).await;
        assert_eq!(outcome["type"], "update_case");
        let event = &outcome["events"][0];
        assert_eq!((event["kind"].as_str(), event["actor"].as_str()), (Some("case_updated"), Some("housing-crm")), "{outcome:#}");
        assert_eq!(event["data"]["changed"], json!(["attributes.qualifying_period_all_with_landlord", "property.tenure"]));

        let reader = api.client("crm-reader", "cases:read").await;
        let (status, _, case) = get(api, &reader, "/v1/cases/RTB-U1").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(case["case"]["tenure"], "leasehold");
        assert_eq!(case["updates"][0]["changes"][1], json!({"fact": "property.tenure", "from": "freehold", "to": "leasehold"}));
        assert_eq!(case["updates"][0]["reason"], "found during the checks");

        all_ok(api, vec![json!({"type": "close_case", "case_ref": "RTB-U1", "outcome": "withdrawn"})]).await;
        let (_, body) = api.commands(&writer, &update).await;
        assert_eq!(body["results"][0]["status"], "rejected", "{body:#}");
        assert_eq!(body["results"][0]["reason"], "case RTB-U1 is closed (outcome: withdrawn); it takes no more changes");
    }
}
