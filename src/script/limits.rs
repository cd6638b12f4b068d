//! Limits on what one evaluation may do, as `[rules.limits]` in the settings sets them.

use serde::Deserialize;

/// Limits on what one evaluation may do. Defaults suit allocation and escalation rules with
/// hundreds of officers.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    pub max_operations: u64,
    pub max_call_depth: usize,
    pub max_expression_depth: usize,
    pub max_string_size: usize,
    pub max_array_size: usize,
    pub max_map_size: usize,
    /// Wall-clock deadline per evaluation, in milliseconds.
    pub deadline_ms: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_operations: 1_000_000,
            max_call_depth: 32,
            max_expression_depth: 64,
            max_string_size: 64 * 1024,
            max_array_size: 100_000,
            max_map_size: 10_000,
            deadline_ms: 1_000,
        }
    }
}

impl Limits {
    /// Every limit must be in its documented range: zero would lift a limit or fail every
    /// evaluation, and a huge one would let a runaway rule hold a pass for ever.
    pub fn check(&self) -> Result<(), String> {
        let fields: [(&str, u64, u64, u64); 7] = [
            ("max_operations", self.max_operations, 1, 1_000_000_000),
            ("max_call_depth", self.max_call_depth as u64, 1, 256),
            (
                "max_expression_depth",
                self.max_expression_depth as u64,
                1,
                1_024,
            ),
            (
                "max_string_size",
                self.max_string_size as u64,
                1,
                16 * 1024 * 1024,
            ),
            ("max_array_size", self.max_array_size as u64, 1, 10_000_000),
            ("max_map_size", self.max_map_size as u64, 1, 10_000_000),
            ("deadline_ms", self.deadline_ms, 1, 60_000),
        ];
        for (name, value, min, max) in fields {
            if value == 0 {
                return Err(format!("rules.limits.{name} must be greater than 0"));
            }
            if !(min..=max).contains(&value) {
                return Err(format!(
                    "rules.limits.{name} = {value} is out of range: use {min} to {max}"
                ));
            }
        }
        Ok(())
    }
}
