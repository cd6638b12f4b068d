//! What an operator relies on, tried on the real binary: systemd's notifications and watchdog
//! (through a notify socket of the test's own), `casewarden status` and `config`, and a backup
//! taken while a pass runs, restored, and carried on from without firing anything twice.

#[path = "fault/child.rs"]
#[allow(dead_code)]
mod child;
#[path = "common/mod.rs"]
mod common;
#[path = "common/pg.rs"]
mod pg;
#[path = "fault/workload.rs"]
#[allow(dead_code)]
mod workload;

#[path = "ops/support.rs"]
mod support;

#[path = "ops/backup.rs"]
mod backup;
#[path = "ops/status.rs"]
mod status;
#[path = "ops/watchdog.rs"]
mod watchdog;
