//! Message templates under `templates/` (minijinja). This module owns reading and checking
//! them; rendering for delivery builds on the same environment.

use std::path::Path;

use minijinja::Environment;

use crate::problems::{Problem, Source};

/// Template files casewarden reads.
pub const EXTENSIONS: &[&str] = &["j2", "jinja", "txt", "html"];

/// Parses every template under `dir`. Returns (relative name, text) for each, or every syntax
/// error with its line and column.
pub fn check_dir(dir: &Path) -> Result<Vec<(String, String)>, Vec<Problem>> {
    let files = crate::rules::read_tree(dir, EXTENSIONS).map_err(|p| vec![p])?;
    let mut env = Environment::new();
    env.set_auto_escape_callback(minijinja::default_auto_escape_callback);
    let mut problems = Vec::new();
    for (rel, path, text) in &files {
        if let Err(e) = env.template_from_named_str(rel, text) {
            let src = Source { path, text };
            let (line, column) = match (e.range(), e.line()) {
                (Some(r), _) => src.position(r.start),
                (None, Some(line)) => (line, 1),
                (None, None) => (1, 1),
            };
            let detail = e
                .detail()
                .map(str::to_string)
                .unwrap_or_else(|| e.kind().to_string());
            problems.push(Problem::new(
                path,
                (line, column),
                format!("template syntax: {detail}"),
            ));
        }
    }
    if problems.is_empty() {
        Ok(files
            .into_iter()
            .map(|(rel, _, text)| (rel, text))
            .collect())
    } else {
        Err(problems)
    }
}
