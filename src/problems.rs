//! Problems found in rule authors' files, each with file, line and column, printed like a
//! compiler's diagnostics so editors and people can jump to them.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    pub file: PathBuf,
    pub line: usize,
    pub column: usize,
    pub message: String,
    /// How to fix it, where there is something useful to say.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub help: Option<String>,
}

impl Problem {
    pub fn new(file: &Path, (line, column): (usize, usize), message: impl Into<String>) -> Self {
        Problem {
            file: file.to_path_buf(),
            line,
            column,
            message: message.into(),
            help: None,
        }
    }

    pub fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: error: {}",
            self.file.display(),
            self.line,
            self.column,
            self.message
        )?;
        if let Some(help) = &self.help {
            write!(f, "\n    help: {help}")?;
        }
        Ok(())
    }
}

/// A file's text, to turn byte offsets into 1-based line and column numbers.
pub struct Source<'a> {
    pub path: &'a Path,
    pub text: &'a str,
}

impl Source<'_> {
    pub fn position(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let before = &self.text[..offset];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        (line, before[line_start..].chars().count() + 1)
    }

    /// Where a position (line, column) inside a TOML string's content lies in the file, given
    /// the offset of the string's opening quote. Handles '…', "…", and the triple-quoted forms
    /// (whose content starts after a newline that directly follows the quotes).
    pub fn inside_string(&self, quote: usize, (line, col): (usize, usize)) -> (usize, usize) {
        let rest = &self.text[quote.min(self.text.len())..];
        let mut start = quote
            + if rest.starts_with("'''") || rest.starts_with("\"\"\"") {
                3
            } else {
                1
            };
        if self.text[start.min(self.text.len())..].starts_with('\n') && start > quote + 1 {
            start += 1;
        }
        let (l, c) = self.position(start);
        if line <= 1 {
            (l, c + col.saturating_sub(1))
        } else {
            (l + line - 1, col)
        }
    }

    pub fn at(&self, offset: usize, message: impl Into<String>) -> Problem {
        Problem::new(self.path, self.position(offset), message)
    }
}

/// Several problems, printed one per paragraph.
#[derive(Debug, Clone, thiserror::Error)]
pub struct Problems(pub Vec<Problem>);

impl fmt::Display for Problems {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{p}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_become_one_based_lines_and_columns() {
        let src = Source {
            path: Path::new("a.toml"),
            text: "ab\ncdé\nf",
        };
        assert_eq!(src.position(0), (1, 1));
        assert_eq!(src.position(3), (2, 1));
        assert_eq!(src.position(7), (2, 4));
        assert_eq!(src.position(8), (3, 1));
        let p = src.at(4, "bad").help("fix it");
        assert_eq!(p.to_string(), "a.toml:2:2: error: bad\n    help: fix it");
    }
}
