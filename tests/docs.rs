//! The documentation against the binary: the shipped example configuration starts the daemon
//! under the documented layout.

#[path = "common/mod.rs"]
mod common;

#[path = "docs/install.rs"]
mod install;
