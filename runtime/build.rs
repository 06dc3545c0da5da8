//! Rebuilds the crate when a migration is added: `sqlx::migrate!` embeds `migrations/` at
//! compile time, and cargo does not notice new files in a directory on its own.

fn main() {
    println!("cargo:rerun-if-changed=../migrations");
}
