//! Rebuilds the crate when what it embeds at compile time changes, since cargo does not notice
//! new files in a directory on its own: the migrations (`sqlx::migrate!` embeds `migrations/`)
//! and the dashboard's build output (`src/api/dashboard.rs`, embedded in release builds).

fn main() {
    println!("cargo:rerun-if-changed=../migrations");
    // Before the first dashboard build there is no `dist` to watch (a missing path would rerun
    // this every time): watch the folder it appears in instead.
    if std::path::Path::new("../dashboard/dist").exists() {
        println!("cargo:rerun-if-changed=../dashboard/dist");
    } else {
        println!("cargo:rerun-if-changed=../dashboard");
    }
}
