//! Reading the `rules/` and `templates/` trees: every file with a wanted extension, in a stable
//! order, or a problem naming the directory or file that could not be read.

use std::path::{Path, PathBuf};

use crate::problems::Problem;

/// Every file under `dir` with one of `extensions`, as (relative path with `/`, path, text),
/// sorted by relative path.
pub fn read_tree(
    dir: &Path,
    extensions: &[&str],
) -> Result<Vec<(String, PathBuf, String)>, Problem> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let entries = std::fs::read_dir(&d).map_err(|e| {
            Problem::new(&d, (1, 1), format!("cannot read directory: {e}")).help(
                "point --rules/--templates (or rules.dir/templates.dir) at an existing directory",
            )
        })?;
        for entry in entries {
            let path = entry
                .map_err(|e| Problem::new(&d, (1, 1), e.to_string()))?
                .path();
            if path.is_dir() {
                stack.push(path);
            } else if path
                .extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| extensions.contains(&e))
            {
                let text = std::fs::read_to_string(&path)
                    .map_err(|e| Problem::new(&path, (1, 1), format!("cannot read file: {e}")))?;
                let rel = path
                    .strip_prefix(dir)
                    .unwrap_or(&path)
                    .to_string_lossy()
                    .replace('\\', "/");
                out.push((rel, path, text));
            }
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}
