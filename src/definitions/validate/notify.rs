//! Checking `notify_personal` and `sensitive`: officers' notifications may carry only the
//! personal fields a definition names, each one that exists for its cases, and a sensitive
//! definition names none.

use super::*;

impl Compiler<'_> {
    /// The personal fields the definition lets officers' notifications carry, and whether it is
    /// sensitive.
    pub(super) fn notify_personal(&mut self, f: &DefinitionFile) -> (Vec<String>, bool) {
        let sensitive = f.sensitive.as_ref().is_some_and(|s| *s.get_ref());
        let fields =
            super::super::personal_fields(f.personal_attributes.iter().map(|a| a.get_ref()));
        let mut out: Vec<String> = Vec::new();
        for field in &f.notify_personal {
            let name = field.get_ref();
            if sensitive {
                self.err(
                    field,
                    format!("notify_personal allows {name:?}, but the definition is sensitive: its notifications never carry personal data"),
                    "take it out of notify_personal, or drop sensitive = true if the workflow is not sensitive",
                );
            } else if !fields.contains(name) {
                self.err(
                    field,
                    format!("notify_personal names {name:?}, which is not a personal field of this definition's cases"),
                    format!(
                        "personal fields: {} (an attribute must be listed in personal_attributes first)",
                        fields.iter().cloned().collect::<Vec<_>>().join(", ")
                    ),
                );
            } else if out.contains(name) {
                self.err(field, format!("notify_personal names {name:?} twice"), "");
            } else {
                out.push(name.clone());
            }
        }
        (out, sensitive)
    }
}
