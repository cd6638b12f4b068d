//! The published contract: the JSON Schema of commands is generated from the Rust types, the
//! checked-in copy under docs/schema/ is the generated one, and every command example in the
//! docs is valid against it. `UPDATE_SCHEMA=1 cargo test --test contract` rewrites the copy.

use std::path::PathBuf;

fn repo(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(rel)
}

/// The published copy of a schema is the generated one (rewritten first under UPDATE_SCHEMA).
fn assert_published(rel: &str, schema: serde_json::Value) {
    let generated = serde_json::to_string_pretty(&schema).unwrap() + "\n";
    let path = repo(rel);
    if std::env::var_os("UPDATE_SCHEMA").is_some() {
        std::fs::write(&path, &generated).unwrap();
    }
    let published = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        published == generated,
        "{rel} differs from the schema the types generate: \
         run `UPDATE_SCHEMA=1 cargo test --test contract` and commit the result"
    );
}

#[test]
fn the_published_command_schema_is_the_one_generated_from_the_types() {
    assert_published(
        "docs/schema/commands.schema.json",
        casewarden::commands::json_schema(),
    );
}

#[test]
fn the_published_openapi_document_is_the_generated_one() {
    assert_published("docs/openapi.json", casewarden::api::openapi::document());
}

/// The command examples of a document: lines in code blocks that are a JSON object with a type.
/// Commands the document shows being rejected (a block followed by `Rejected: `, or the commands
/// behind a list of rejections, in `<details>`) may break the schema on purpose: tests/docs.rs
/// checks those against the binary instead.
fn examples(doc: &str) -> Vec<(usize, String)> {
    let text = std::fs::read_to_string(repo(doc)).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let mut in_block = false;
    let mut in_details = false;
    let mut block = Vec::new();
    let mut out = Vec::new();
    for (n, line) in lines.iter().enumerate() {
        let trimmed = line.trim_start();
        in_details =
            (in_details || trimmed.starts_with("<details")) && !trimmed.starts_with("</details>");
        if trimmed.starts_with("```") {
            in_block = !in_block;
            let after = lines[n + 1..].iter().find(|l| !l.trim().is_empty());
            let rejected = after.is_some_and(|l| l.starts_with("Rejected: "));
            if !in_block && !in_details && !rejected {
                out.append(&mut block);
            }
            block.clear();
        } else if in_block
            && line.starts_with("{\"type\"")
            // A problem document (docs/api.md) has a `type` too, a URN.
            && !line.starts_with("{\"type\":\"urn:")
        {
            block.push((n + 1, line.to_string()));
        }
    }
    out
}

#[test]
fn every_command_example_in_the_docs_is_valid_against_the_schema() {
    let schema = casewarden::commands::json_schema();
    let validator = jsonschema::validator_for(&schema).expect("the schema compiles");
    let mut seen = 0;
    for doc in [
        "docs/integration.md",
        "docs/housing-options.md",
        "docs/api.md",
        "README.md",
    ] {
        for (line, example) in examples(doc) {
            let value: serde_json::Value = serde_json::from_str(&example)
                .unwrap_or_else(|e| panic!("{doc}:{line}: not JSON: {e}"));
            let errors: Vec<String> = validator
                .iter_errors(&value)
                .map(|e| e.to_string())
                .collect();
            assert!(errors.is_empty(), "{doc}:{line}: {example}\n{errors:#?}");
            seen += 1;
        }
    }
    assert!(
        seen >= 20,
        "only {seen} examples found: is the extraction still right?"
    );
}

#[test]
fn the_schema_refuses_what_parse_refuses_for_its_shape() {
    let schema = casewarden::commands::json_schema();
    let validator = jsonschema::validator_for(&schema).unwrap();
    for bad in [
        r#"{"type":"launch_rocket"}"#,
        r#"{"type":"upsert_role","ref":"r"}"#,
        r#"{"type":"upsert_role","ref":"r","name":"n","colour":"red"}"#,
        r#"{"type":"upsert_role","ref":5,"name":"n"}"#,
    ] {
        let value: serde_json::Value = serde_json::from_str(bad).unwrap();
        assert!(!validator.is_valid(&value), "{bad} passed the schema");
        assert!(
            casewarden::commands::parse(bad).is_err(),
            "{bad} passed parse"
        );
    }
    let good = r#"{"type":"upsert_role","command_id":"c-1","ref":"r","name":"n"}"#;
    assert!(validator.is_valid(&serde_json::from_str(good).unwrap()));
    assert!(casewarden::commands::parse(good).is_ok());
}

#[test]
fn the_published_event_schema_is_the_one_generated_from_the_types() {
    assert_published(
        "docs/schema/events.schema.json",
        casewarden::events::kinds::json_schema(),
    );
}

#[test]
fn the_event_schema_refuses_an_unknown_kind_a_missing_field_and_an_undocumented_one() {
    let schema = casewarden::events::kinds::json_schema();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let event = |kind: &str, data: serde_json::Value| {
        serde_json::json!({"id": 7, "case_ref": "RTB-1", "at": "2026-01-05T09:00:00Z",
            "actor": "crm", "kind": kind, "data": data})
    };
    let good = event("case_closed", serde_json::json!({"outcome": "withdrawn"}));
    assert!(
        validator.is_valid(&good),
        "{:?}",
        validator
            .iter_errors(&good)
            .map(|e| e.to_string())
            .collect::<Vec<_>>()
    );
    for bad in [
        event("case_vanished", serde_json::json!({})),
        event("case_closed", serde_json::json!({})),
        event(
            "case_closed",
            serde_json::json!({"outcome": "withdrawn", "applicant_name": "Priya"}),
        ),
        event("case_closed", serde_json::json!({"outcome": 7})),
    ] {
        assert!(!validator.is_valid(&bad), "{bad} passed the schema");
    }
}
