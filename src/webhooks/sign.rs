//! Signing the Standard Webhooks way (standardwebhooks.com): the secret is `whsec_` and the
//! base64 of the key; each request carries `webhook-signature: v1,<base64 HMAC-SHA256 of
//! "{webhook-id}.{webhook-timestamp}.{body}">`, so a receiver with the secret can tell the
//! request is ours, unchanged, and recent. Pure: no clock, no I/O.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The prefix of a Standard Webhooks secret.
pub const PREFIX: &str = "whsec_";

/// Shortest and longest key the standard allows, in bytes.
const KEY_BYTES: std::ops::RangeInclusive<usize> = 24..=64;

/// A signing key, never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Key(Vec<u8>);

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Key(***)")
    }
}

impl Key {
    /// Reads a `whsec_<base64>` secret (surrounding whitespace ignored). The error never quotes
    /// the text, which may be most of a real secret.
    pub fn parse(secret: &str) -> Result<Key, String> {
        let secret = secret.trim();
        let Some(encoded) = secret.strip_prefix(PREFIX) else {
            return Err(format!(
                "is not a Standard Webhooks secret: it must start with {PREFIX} (make one with `casewarden webhooks secret`)"
            ));
        };
        let key = STANDARD
            .decode(encoded)
            .map_err(|_| format!("is not {PREFIX} followed by base64"))?;
        if !KEY_BYTES.contains(&key.len()) {
            return Err(format!(
                "holds a key of {} bytes; use {} to {} (`casewarden webhooks secret` makes one of 32)",
                key.len(),
                KEY_BYTES.start(),
                KEY_BYTES.end()
            ));
        }
        Ok(Key(key))
    }
}

/// A fresh secret of 32 random bytes, as `whsec_<base64>`.
pub fn new_secret() -> Result<String, getrandom::Error> {
    let mut key = [0u8; 32];
    getrandom::fill(&mut key)?;
    Ok(format!("{PREFIX}{}", STANDARD.encode(key)))
}

/// The `webhook-signature` value for one attempt.
pub fn signature(key: &Key, id: &str, timestamp: i64, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(&key.0).expect("HMAC takes a key of any length");
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example of the Standard Webhooks specification and its reference libraries.
    #[test]
    fn the_standards_own_example_signs_to_its_published_signature() {
        let key = Key::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        assert_eq!(
            signature(
                &key,
                "msg_p5jXN8AQM9LWM0D4loKWxJek",
                1614265330,
                br#"{"test": 2432232314}"#
            ),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }

    #[test]
    fn a_secret_must_be_whsec_and_base64_of_24_to_64_bytes_and_is_never_quoted() {
        let fresh = new_secret().unwrap();
        assert!(fresh.starts_with("whsec_"), "{fresh}");
        assert!(Key::parse(&format!("  {fresh}\n")).is_ok());
        assert_ne!(fresh, new_secret().unwrap(), "each secret is new");
        let err = Key::parse("s3cret-but-not-standard").unwrap_err();
        assert!(err.contains("must start with whsec_"), "{err}");
        assert!(!err.contains("s3cret"), "{err}");
        let err = Key::parse("whsec_not base64!").unwrap_err();
        assert_eq!(err, "is not whsec_ followed by base64");
        let short = format!("whsec_{}", STANDARD.encode([7u8; 16]));
        let err = Key::parse(&short).unwrap_err();
        assert!(
            err.starts_with("holds a key of 16 bytes; use 24 to 64"),
            "{err}"
        );
        assert_eq!(format!("{:?}", Key::parse(&fresh).unwrap()), "Key(***)");
    }

    #[test]
    fn the_signature_covers_the_id_the_timestamp_and_every_byte_of_the_body() {
        let key = Key::parse(&new_secret().unwrap()).unwrap();
        let base = signature(&key, "msg_1", 1700000000, b"[1]");
        assert_ne!(base, signature(&key, "msg_2", 1700000000, b"[1]"));
        assert_ne!(base, signature(&key, "msg_1", 1700000001, b"[1]"));
        assert_ne!(base, signature(&key, "msg_1", 1700000000, b"[2]"));
        assert_eq!(base, signature(&key, "msg_1", 1700000000, b"[1]"));
    }
}
