//! Rebuilds the runtime when the dashboard's build output changes, so that a release binary
//! embeds the dashboard it was built after (`src/api/dashboard.rs`).

fn main() {
    let dist = std::path::Path::new("../dashboard/dist");
    // Before the first dashboard build there is no `dist` to watch (a missing path would rerun
    // this every time): watch the folder it appears in instead.
    if dist.exists() {
        println!("cargo:rerun-if-changed=../dashboard/dist");
    } else {
        println!("cargo:rerun-if-changed=../dashboard");
    }
}
