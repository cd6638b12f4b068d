//! The migrations are built into the binary by `sqlx::migrate!`, which cargo does not know reads
//! the `migrations/` directories: without this, adding a migration file would not rebuild the
//! crate (the build script sqlx's documentation recommends).

fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
