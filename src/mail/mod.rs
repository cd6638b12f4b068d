//! Notification delivery: rendering outbox rows from templates, sending them through a transport
//! (a directory of `.eml` files, or SMTP), and the worker that claims due rows, sends them once,
//! and retries what failed for a reason that may pass, for up to `give_up_after_hours`.

pub mod deliver;
pub mod message;
pub mod reads;
pub mod render;
pub mod settings;
pub mod smtp;
pub mod status;
pub mod transport;

pub use render::{Rendered, Renderer};
pub use settings::MailSettings;
pub use transport::{Mailer, SendError};
