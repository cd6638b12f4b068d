//! Housing pack files: where they are written, writing a pack's pair of files under a free name,
//! and checking later that a file recorded for a case is still there and unchanged.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::advice::pack;

/// Where packs are written (`[packs]` in casewarden.toml).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct PackSettings {
    /// Directory for pack files, one sub-directory per case.
    pub dir: PathBuf,
    /// `plan`: render and record packs as the pass would, but write no files.
    #[serde(skip)]
    pub dry_run: bool,
}

impl Default for PackSettings {
    fn default() -> Self {
        PackSettings {
            dir: PathBuf::from("packs"),
            dry_run: false,
        }
    }
}

/// Names tried for one pack version before the attempt fails.
const MAX_NAME_TRIES: u32 = 20;

/// A pack's written files: path, URI, media type, body.
pub(super) type Written<'a> = Vec<(PathBuf, String, &'static str, &'a String)>;

/// Writes a pack's files under `dir` as `stem`, or the next free name (`stem-2`, `stem-3`…):
/// a name already taken (a file of someone else's, or one left by an attempt that died before it
/// committed) is never written over. Gives the reason when no pair could be written.
pub(super) fn write_free<'a>(
    dir: &Path,
    stem: &str,
    document: &'a pack::Document,
    dry_run: bool,
) -> Result<Written<'a>, String> {
    let mut failure = String::new();
    for n in 1..=MAX_NAME_TRIES {
        let stem = match n {
            1 => stem.to_string(),
            n => format!("{stem}-{n}"),
        };
        match write_pair(&dir.join(stem), document, dry_run) {
            Ok(made) => return Ok(made),
            Err((path, e)) => {
                failure = format!("writing {}: {e}", path.display());
                if e.kind() != std::io::ErrorKind::AlreadyExists {
                    break;
                }
            }
        }
    }
    Err(failure)
}

/// Writes a pack's HTML and text files under `stem`, or neither: if one cannot be written, the
/// other made by this call is removed again. Gives the path that failed with its error.
fn write_pair<'a>(
    stem: &Path,
    document: &'a pack::Document,
    dry_run: bool,
) -> Result<Written<'a>, (PathBuf, std::io::Error)> {
    let mut files: Written<'a> = Vec::new();
    for (ext, media_type, body) in [
        ("html", "text/html", &document.html),
        ("txt", "text/plain", &document.text),
    ] {
        let path = stem.with_extension(ext);
        match write(&path, body, dry_run) {
            Ok(uri) => files.push((path, uri, media_type, body)),
            Err(e) => {
                if !dry_run {
                    for (made, ..) in &files {
                        let _ = std::fs::remove_file(made);
                    }
                }
                return Err((path, e));
            }
        }
    }
    Ok(files)
}

/// Writes a pack file whole and gives its file:// URI (a dry run only gives the URI). The
/// directory is made 0700 and the file 0600 whatever the umask: packs hold personal data. The
/// body goes to a temporary file that is then hard-linked to its final name, which fails if
/// anything is already there: casewarden never overwrites a file, whoever made it, so a pack's
/// recorded SHA-256 always describes the file it was made as.
fn write(path: &Path, body: &str, dry_run: bool) -> std::io::Result<String> {
    use std::io::{Error, ErrorKind, Write};
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};

    let absolute = std::path::absolute(path)?;
    if dry_run {
        return Ok(format!("file://{}", absolute.display()));
    }
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    if !std::fs::symlink_metadata(dir)?.is_dir() {
        return Err(Error::new(
            ErrorKind::AlreadyExists,
            format!("{} is not a directory", dir.display()),
        ));
    }
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let tmp = dir.join(format!(".{name}.partial"));
    match std::fs::remove_file(&tmp) {
        Err(e) if e.kind() != ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    let written = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .and_then(|mut f| {
            f.write_all(body.as_bytes())?;
            f.sync_all()
        })
        .and_then(|()| std::fs::hard_link(&tmp, path));
    let _ = std::fs::remove_file(&tmp);
    match written {
        Err(e) if e.kind() == ErrorKind::AlreadyExists => Err(Error::new(
            ErrorKind::AlreadyExists,
            "a file is already there that casewarden did not make for this case and version; \
             it is left as it is",
        )),
        Err(e) => Err(e),
        Ok(()) => Ok(format!("file://{}", absolute.display())),
    }
}

/// Whether a file casewarden made still holds what it recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum FileState {
    Intact,
    /// Its content no longer has the recorded SHA-256: never to be served or sent.
    Changed,
    Missing,
    /// It cannot be read to check it: not to be served or sent either.
    Unreadable,
}

impl FileState {
    pub fn describe(self) -> &'static str {
        match self {
            FileState::Intact => "intact",
            FileState::Changed => "changed since it was made: not to be served or sent",
            FileState::Missing => "missing",
            FileState::Unreadable => "cannot be read to check it: not to be served or sent",
        }
    }
}

/// Checks a `file://` attachment against its recorded size and SHA-256.
pub fn verify(uri: &str, size: Option<i64>, sha256: &str) -> FileState {
    match read_intact(uri, size, sha256) {
        Ok(_) => FileState::Intact,
        Err(state) => state,
    }
}

/// A `file://` attachment's content, read once and checked against its recorded size and
/// SHA-256, so what is served is what was checked; otherwise what is wrong with it.
pub fn read_intact(uri: &str, size: Option<i64>, sha256: &str) -> Result<Vec<u8>, FileState> {
    let Some(path) = uri.strip_prefix("file://") else {
        return Err(FileState::Missing);
    };
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(FileState::Missing),
        Err(_) => return Err(FileState::Unreadable),
    };
    if !meta.is_file() || size.is_some_and(|s| u64::try_from(s).ok() != Some(meta.len())) {
        return Err(FileState::Changed);
    }
    match std::fs::read(path) {
        Ok(bytes) if hex::encode(Sha256::digest(&bytes)).eq_ignore_ascii_case(sha256) => Ok(bytes),
        Ok(_) => Err(FileState::Changed),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(FileState::Missing),
        Err(_) => Err(FileState::Unreadable),
    }
}
