//! The checks every component's settings share, so each settings struct can check itself
//! without depending on the settings aggregate that holds it.

use serde::{Deserialize, Deserializer};

/// Refuses `value` outside `min..=max`, naming the setting and the range.
pub fn in_range(name: &str, value: i64, min: i64, max: i64) -> Result<(), String> {
    if (min..=max).contains(&value) {
        Ok(())
    } else {
        Err(format!(
            "{name} = {value} is out of range: use {min} to {max}"
        ))
    }
}

/// Reads a setting that takes one of a few words, such as `mail.transport`. A derived enum would
/// refuse a wrong word as "enum TransportKind does not have variant constructor …", naming a Rust
/// type; this names the word and the choices, as an unknown key is named (the configuration
/// reader adds "for key `mail.transport`").
pub fn one_of<'de, D, T>(deserializer: D, choices: &[(&str, T)]) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Copy,
{
    let word = String::deserialize(deserializer)?;
    if let Some((_, value)) = choices.iter().find(|(w, _)| *w == word) {
        return Ok(*value);
    }
    let names: Vec<String> = choices.iter().map(|(w, _)| format!("`{w}`")).collect();
    let expected = match names.as_slice() {
        [one] => one.clone(),
        [init @ .., last] => format!("{} or {last}", init.join(", ")),
        [] => "nothing".to_string(),
    };
    Err(serde::de::Error::custom(format!(
        "unknown value {}, expected {expected}",
        crate::text::quote(&word)
    )))
}
