//! A target decided by the case: the facts a period may depend on (`tenure`, `scheme`, an
//! attribute…) and a target expression evaluated in the sandbox. The engine's SLA clocks and
//! `rules test` both compute targets with these.

use serde_json::Value;

use crate::db::rows::CaseRow;

/// A case fact by name, for targets that depend on one.
pub fn fact(case: &CaseRow) -> impl Fn(&str) -> Option<String> + '_ {
    move |name| match name {
        "tenure" => case.tenure.clone(),
        "scheme" => case.scheme.clone(),
        "workflow" => case.workflow.clone(),
        "country" => Some(case.country.clone()),
        "kind" => Some(case.kind.clone()),
        other => match case.attributes.0.get(other)? {
            Value::String(s) => Some(s.clone()),
            Value::Null => None,
            v => Some(v.to_string()),
        },
    }
}

/// Runs a target expression: it must give a period such as "8 weeks", or () for none.
pub fn evaluate(
    sandbox: &crate::script::Sandbox,
    ast: &rhai::AST,
    case: &CaseRow,
) -> Result<Option<crate::definitions::Period>, String> {
    let facts = case.facts(None);
    let facts = rhai::serde::to_dynamic(&facts).map_err(|e| e.to_string())?;
    let value = sandbox.eval_expression(ast, facts)?;
    if value.is_unit() {
        return Ok(None);
    }
    let text = value
        .into_string()
        .map_err(|t| format!("target_expr gave {t}, not a period such as \"8 weeks\""))?;
    text.parse()
        .map(Some)
        .map_err(|e: crate::definitions::period::PeriodError| format!("target_expr gave {e}"))
}
