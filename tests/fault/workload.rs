//! The commands a CRM sends in each round, with what each must come to: accepted with exactly
//! one effect, rejected, or a duplicate of an earlier `command_id` with none. Every command's
//! outcome follows from the commands before it, whatever pass applies it, so kills that delay
//! a command cannot change what is expected of it.

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

/// The one change an accepted command makes, as the event log shows it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Effect {
    CaseCreated(String),
    TaskCompleted(String, String),
}

#[derive(Debug, Clone)]
pub struct Sent {
    pub command_id: String,
    pub body: Value,
    /// "accepted", "rejected" or "duplicate".
    pub expect: &'static str,
    pub effect: Option<Effect>,
}

/// A small xorshift64* generator: the run is reproducible from its seed.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }

    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// The organisation every round works in: roles, users with e-mail addresses, applicants.
pub fn organisation() -> Vec<Sent> {
    let mut commands = vec![
        json!({"type": "upsert_role", "ref": "home_ownership", "name": "Home ownership team"}),
        json!({"type": "upsert_role", "ref": "patch_north", "name": "North patch"}),
        json!({"type": "upsert_role", "ref": "managers", "name": "Team managers"}),
        json!({"type": "upsert_user", "ref": "mgr1", "name": "Morag Manager", "email": "morag@example.org", "roles": ["managers"]}),
        json!({"type": "upsert_user", "ref": "off1", "name": "Olu Officer", "email": "olu@example.org", "line_manager": "mgr1", "roles": ["home_ownership", "patch_north"]}),
        json!({"type": "upsert_user", "ref": "off2", "name": "Ola Officer", "email": "ola@example.org", "line_manager": "mgr1", "roles": ["home_ownership"]}),
    ];
    for i in 1..=6 {
        commands.push(json!({"type": "upsert_contact", "ref": format!("tenant{i}"), "name": format!("Tenant {i}"),
            "email": format!("tenant{i}@example.net")}));
    }
    commands
        .into_iter()
        .enumerate()
        .map(|(i, mut body)| {
            let command_id = format!("seed-{i}");
            body["command_id"] = json!(command_id);
            Sent {
                command_id,
                body,
                expect: "accepted",
                effect: None,
            }
        })
        .collect()
}

fn case_ref(round: usize) -> String {
    format!("F-{round}")
}

fn claim(round: usize, received: DateTime<Utc>) -> Value {
    json!({
        "type": "create_case", "case_ref": case_ref(round), "kind": "home_buy", "scheme": "right_to_buy",
        "country": "england", "applicant": format!("tenant{}", round % 6 + 1),
        "property": {"ref": format!("P-{round}"), "address": "1 Example Road, Leeds", "tenure": "freehold"},
        "received_at": received.to_rfc3339(), "attributes": {"qualifying_period_all_with_landlord": true}
    })
}

fn complete(round: usize, task: &str) -> Value {
    json!({"type": "complete_task", "case_ref": case_ref(round), "task": task, "by": "off1"})
}

/// The work done on an even-numbered case, by rounds after its claim: through the application
/// stage into eligibility and on to valuation. Odd-numbered cases are left to escalate.
const PROGRESS: &[(usize, &[&str])] = &[
    (1, &["check_property_address", "check_signatories"]),
    (2, &["check_previous_tenancies"]),
    (3, &["register_claim"]),
    (5, &["check_exclusions", "confirm_qualifying_period"]),
    (8, &["issue_rtb2"]),
];

/// The commands of `round` (whose simulated time is `now`), after those already `sent`.
pub fn round(round: usize, now: DateTime<Utc>, sent: &[Sent], rng: &mut Rng) -> Vec<Sent> {
    let mut out = Vec::new();
    let mut push = |body: Value, expect, effect| {
        out.push(Sent {
            command_id: String::new(),
            body,
            expect,
            effect,
        })
    };
    let r = round;
    push(
        claim(r, now),
        "accepted",
        Some(Effect::CaseCreated(case_ref(r))),
    );
    for (after, tasks) in PROGRESS {
        if let Some(case) = r.checked_sub(*after).filter(|c| c % 2 == 0) {
            for task in *tasks {
                push(
                    complete(case, task),
                    "accepted",
                    Some(Effect::TaskCompleted(case_ref(case), task.to_string())),
                );
            }
        }
    }
    if r % 5 == 4 {
        // A task the definition does not have.
        push(complete(r - 1, "collect_keys"), "rejected", None);
    }
    if r % 7 == 6 {
        // The same claim again under a new command_id: the case exists.
        push(claim(r - 3, now), "rejected", None);
    }
    for (i, s) in out.iter_mut().enumerate() {
        s.command_id = format!("round-{r}-{i}");
        s.body["command_id"] = json!(s.command_id);
    }
    if r % 3 == 2 {
        // The CRM sends an earlier command again, command_id and all.
        let originals: Vec<&Sent> = sent.iter().filter(|s| s.expect != "duplicate").collect();
        let again = originals[rng.below(originals.len() as u64) as usize].clone();
        out.push(Sent {
            expect: "duplicate",
            effect: None,
            ..again
        });
    }
    out
}
