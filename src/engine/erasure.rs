//! Erasure through a running engine (the API's `POST /v1/contacts/{ref}/erasure`): the rule set
//! in force, and the engine's own pack directory and, when mail goes to files, its mail
//! directory (see `privacy::erase`).

use chrono::{DateTime, Utc};

use super::pass::Engine;
use crate::privacy::{self, EraseError, Erasure, FilePlaces};

impl Engine {
    /// Erases `contact`'s personal data everywhere this engine's casewarden holds it.
    pub async fn erase_contact(
        &self,
        contact: &str,
        (reason, force): (&str, bool),
        (now, actor): (DateTime<Utc>, &str),
    ) -> Result<Erasure, EraseError> {
        let rules = self.rules();
        let mail = self
            .mail
            .as_ref()
            .filter(|(mailer, _)| mailer.writes_files())
            .map(|(_, settings)| settings.dir.as_path());
        let places = FilePlaces {
            packs: &self.packs.0.dir,
            mail,
        };
        privacy::erase_contact(
            &self.db,
            &rules,
            contact,
            (reason, force),
            places,
            (now, actor),
        )
        .await
    }
}
