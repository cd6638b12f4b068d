//! Notification delivery: rendering outbox rows from templates, sending them through a transport
//! (a directory of `.eml` files, or SMTP), and the worker that claims due rows, sends them once,
//! and retries what failed for a reason that may pass.

pub mod deliver;
pub mod render;
pub mod settings;
pub mod transport;

pub use render::{Rendered, Renderer};
pub use settings::MailSettings;
pub use transport::{Mailer, SendError};
