//! The range check every component's settings share, so each settings struct can check itself
//! without depending on the settings aggregate that holds it.

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
