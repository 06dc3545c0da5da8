//! A real OpenID Connect provider for the single sign-on tests: panva's `oidc-provider` (the
//! certified Node.js implementation) run by `tests/oidc-provider/provider.mjs` under Node, on a
//! loopback port, with one client that must use PKCE and the people `ada` (groups `noc-admins`,
//! `staff`), `bob` (`noc`), `eve` (`marketing`) and `root` (`noc-admins`). Killed on drop.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

/// The client the provider knows.
pub const CLIENT_ID: &str = "opsconductor";
pub const CLIENT_SECRET: &str = "opsconductor-test-secret";

/// A running provider, killed on drop.
pub struct OidcProvider {
    pub issuer: String,
    child: Child,
}

impl OidcProvider {
    /// Starts the provider on `port`, its client allowed to redirect to `redirect_uri` only.
    pub fn start(port: u16, redirect_uri: &str) -> OidcProvider {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("oidc-provider");
        assert!(
            dir.join("node_modules/oidc-provider").is_dir(),
            "{} has no node_modules: scripts/test-peers.sh installs them (npm ci)",
            dir.display()
        );
        let mut child = Command::new("node")
            .arg("provider.mjs")
            .arg(port.to_string())
            .arg(redirect_uri)
            .current_dir(&dir)
            .stdout(Stdio::piped())
            // Its warnings (development keys, in-memory storage) are expected; errors show in
            // the test's failure through the pages it answers.
            .stderr(Stdio::null())
            .spawn()
            .expect("node runs (Node.js 20 or later)");
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        let issuer = lines
            .by_ref()
            .map_while(Result::ok)
            .find_map(|line| {
                line.strip_prefix("oidc-provider listening on ")
                    .map(str::to_owned)
            })
            .expect("the provider says where it listens");
        // Keep reading, so that it never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        OidcProvider { issuer, child }
    }
}

impl Drop for OidcProvider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
