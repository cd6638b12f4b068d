//! `casewarden demo`.

use std::path::Path;

use crate::settings::Settings;

pub async fn run(_settings: &Settings, _dir: &Path) -> anyhow::Result<()> {
    anyhow::bail!("demo is being written")
}
