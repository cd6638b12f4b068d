//! Message templates under `templates/` (minijinja). This module owns reading and checking
//! them; rendering for delivery builds on the same environment.

use std::path::Path;

use crate::problems::Problem;

/// Template files casewarden reads.
pub const EXTENSIONS: &[&str] = &["j2", "jinja", "txt", "html"];

/// Reads every template under `dir` as (name relative to `dir`, text).
pub fn read_dir(dir: &Path) -> Result<Vec<(String, String)>, Vec<Problem>> {
    let files = crate::files::read_tree(dir, EXTENSIONS).map_err(|p| vec![p])?;
    Ok(files
        .into_iter()
        .map(|(rel, _, text)| (rel, text))
        .collect())
}
