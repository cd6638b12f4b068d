//! Retry delays shared by everything that retries on its own clock (notifications, webhook
//! batches): exponential from a base, capped, with ±20% jitter derived from the item and the
//! attempt, so retries of many items spread out but a test can predict each one.

use sha2::{Digest, Sha256};

/// Seconds to wait before attempt `attempts + 1` of the item `key`: `base` doubled per attempt
/// after the first, at most `max`, then jittered; never under a second.
pub fn seconds(base: i64, max: i64, key: &str, attempts: i64) -> i64 {
    let exp = u32::try_from(attempts.clamp(1, 30) - 1).unwrap_or(0);
    let delay = base.max(1).saturating_mul(1_i64 << exp).min(max.max(1));
    let hash = Sha256::digest(format!("{key}:{attempts}").as_bytes());
    let jitter = i64::from(hash[0]) * 40 / 255 - 20; // -20..=20 percent
    (delay + delay * jitter / 100).max(1)
}

#[cfg(test)]
mod tests {
    #[test]
    fn delays_double_up_to_the_cap_within_a_fifth_either_way() {
        for attempts in 1..=12 {
            let expected = (5_i64 << (attempts - 1)).min(300);
            let got = super::seconds(5, 300, "row-7", attempts);
            assert!(
                (expected * 4 / 5..=expected * 6 / 5).contains(&got),
                "attempt {attempts}: {got} s, expected about {expected} s"
            );
        }
        assert_eq!(super::seconds(0, 0, "x", 1), 1);
    }
}
