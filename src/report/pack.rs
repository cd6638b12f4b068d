//! A housing pack's file as the engine recorded it: found through the case's pack record, never
//! through a name a caller gives, and handed out only while it still has the SHA-256 it was made
//! with.

use crate::db::{Db, rows, sql};
use crate::engine::pack_files::{FileState, read_intact};

/// Which of a pack's two files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PackFormat {
    Html,
    Text,
}

impl PackFormat {
    /// The name's extension: `html` or `txt`.
    pub fn parse(name: &str) -> Option<PackFormat> {
        match name {
            "html" => Some(PackFormat::Html),
            "txt" => Some(PackFormat::Text),
            _ => None,
        }
    }

    pub fn extension(self) -> &'static str {
        match self {
            PackFormat::Html => "html",
            PackFormat::Text => "txt",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PackFileError {
    #[error("no case {0:?}")]
    UnknownCase(String),
    #[error("case {case_ref} has no housing pack v{version}")]
    NotMade { case_ref: String, version: i64 },
    #[error("the {} file of housing pack v{version} of case {case_ref} is {}", .format.extension(), .state.describe())]
    NotIntact {
        case_ref: String,
        version: i64,
        format: PackFormat,
        state: FileState,
    },
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

/// The content of one file of a case's pack.
pub async fn pack_file(
    db: &Db,
    case_ref: &str,
    version: i64,
    format: PackFormat,
) -> Result<Vec<u8>, PackFileError> {
    let Some(case) = rows::case_by_ref(db, case_ref).await? else {
        return Err(PackFileError::UnknownCase(case_ref.to_string()));
    };
    let query = match format {
        PackFormat::Html => sql(
            "SELECT a.uri, a.size, a.sha256 FROM packs p JOIN attachments a ON a.id = p.html_attachment_id \
             WHERE p.case_id = $1 AND p.version = $2",
        ),
        PackFormat::Text => sql(
            "SELECT a.uri, a.size, a.sha256 FROM packs p JOIN attachments a ON a.id = p.text_attachment_id \
             WHERE p.case_id = $1 AND p.version = $2",
        ),
    };
    let file: Option<(String, Option<i64>, Option<String>)> =
        query.bind(case.id).bind(version).fetch_optional(db).await?;
    let Some((uri, size, sha256)) = file else {
        return Err(PackFileError::NotMade {
            case_ref: case.case_ref,
            version,
        });
    };
    // A pack file without a recorded checksum cannot be shown to be the one that was made.
    let sha256 = sha256.unwrap_or_default();
    let read = tokio::task::spawn_blocking(move || read_intact(&uri, size, &sha256))
        .await
        .unwrap_or(Err(FileState::Unreadable));
    read.map_err(|state| PackFileError::NotIntact {
        case_ref: case.case_ref,
        version,
        format,
        state,
    })
}
