//! Webhooks: the events each subscription wants, pushed to its receiver, signed the Standard
//! Webhooks way ([`sign`]). This part holds the subscriptions' settings and the signing.

pub mod settings;
pub mod sign;

pub use settings::{WebhookSettings, check_all};
