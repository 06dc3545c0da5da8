//! The browser tests' harness: Debian's chromium, headless, driven over WebDriver by
//! chromedriver on a loopback port, against the console a [`crate::TestRuntime`] serves.
//!
//! Every wait is for a condition in the page (an element, a text, a script's answer), polled
//! by the WebDriver client; [`PATIENCE`] only bounds a test that would otherwise hang.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

/// How long any one condition may take before the test fails: far more than anything needs
/// on a loaded two-core machine, so a failure means the condition never came.
pub const PATIENCE: Duration = Duration::from_secs(60);

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// Where screenshots go: `target/browser-screenshots/<name>.png`.
pub fn screenshot_dir() -> PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/browser-screenshots")
}

/// A chromedriver process, stopped when dropped. One serves any number of browsers.
pub struct Driver {
    child: Child,
    url: String,
}

impl Driver {
    /// Starts chromedriver on a free loopback port and waits until it answers.
    pub async fn start() -> Driver {
        for path in [CHROMIUM, CHROMEDRIVER] {
            assert!(
                std::path::Path::new(path).exists(),
                "{path} is missing: the browser tests need Debian's chromium and chromium-driver \
                 (`just test-peers` installs them: apt-get install chromium chromium-driver)"
            );
        }
        let port = {
            let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            probe.local_addr().unwrap().port()
        };
        let child = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .arg("--allowed-ips=127.0.0.1")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("{CHROMEDRIVER} does not start: {e}"));
        let driver = Driver {
            child,
            url: format!("http://127.0.0.1:{port}"),
        };
        let deadline = Instant::now() + PATIENCE;
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            assert!(Instant::now() < deadline, "chromedriver never listened");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        driver
    }

    /// A new browser (its own profile: its own storage, as a second person would have) whose
    /// pages resolve against `base` (`http://127.0.0.1:port`), `width`×`height` pixels.
    pub async fn browser(&self, base: &str, width: u32, height: u32) -> Browser {
        let profile = tempfile::tempdir().unwrap();
        let args = [
            "--headless=new".to_owned(),
            // Root in a container has no user namespaces for the sandbox.
            "--no-sandbox".to_owned(),
            "--disable-gpu".to_owned(),
            "--disable-dev-shm-usage".to_owned(),
            "--no-first-run".to_owned(),
            // Without these chromium keeps dialling Google's hosts, which this network refuses.
            "--disable-background-networking".to_owned(),
            "--disable-component-update".to_owned(),
            "--disable-sync".to_owned(),
            "--disable-default-apps".to_owned(),
            "--hide-scrollbars".to_owned(),
            format!("--window-size={width},{height}"),
            format!("--user-data-dir={}", profile.path().display()),
        ];
        let mut capabilities = serde_json::Map::new();
        capabilities.insert("browserName".into(), json!("chrome"));
        capabilities.insert(
            "goog:chromeOptions".into(),
            json!({"binary": CHROMIUM, "args": args}),
        );
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        let client = ClientBuilder::new(connector)
            .capabilities(capabilities)
            .connect(&self.url)
            .await
            .unwrap_or_else(|e| panic!("chromium does not start under chromedriver: {e}"));
        Browser {
            client,
            base: base.trim_end_matches('/').to_owned(),
            _profile: profile,
        }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `[data-testid="id"]`: the hooks the console gives its tests.
pub fn testid(id: &str) -> String {
    format!("[data-testid=\"{id}\"]")
}

/// One browser window on the console.
pub struct Browser {
    pub client: Client,
    base: String,
    _profile: tempfile::TempDir,
}

impl Browser {
    /// Loads `path` of the console.
    pub async fn open(&self, path: &str) {
        self.client
            .goto(&format!("{}{path}", self.base))
            .await
            .unwrap_or_else(|e| panic!("cannot open {path}: {e}"));
    }

    /// The first element matching a CSS selector, once there is one.
    pub async fn css(&self, selector: &str) -> Element {
        self.client
            .wait()
            .at_most(PATIENCE)
            .for_element(Locator::Css(selector))
            .await
            .unwrap_or_else(|e| panic!("`{selector}` never appeared: {e}"))
    }

    /// The element with `data-testid` `id`, once there is one.
    pub async fn el(&self, id: &str) -> Element {
        self.css(&testid(id)).await
    }

    /// How many elements match `selector` now.
    pub async fn count(&self, selector: &str) -> usize {
        self.client
            .find_all(Locator::Css(selector))
            .await
            .map_or(0, |all| all.len())
    }

    pub async fn click(&self, id: &str) {
        self.el(id)
            .await
            .click()
            .await
            .unwrap_or_else(|e| panic!("cannot click `{id}`: {e}"));
    }

    /// Replaces the text of the input `id` with `text`.
    pub async fn fill(&self, id: &str, text: &str) {
        let input = self.el(id).await;
        input.clear().await.unwrap();
        input
            .send_keys(text)
            .await
            .unwrap_or_else(|e| panic!("cannot type into `{id}`: {e}"));
    }

    pub async fn text(&self, id: &str) -> String {
        self.el(id).await.text().await.unwrap()
    }

    /// Runs `script` (a function body; `arguments` holds `args`) and returns its answer.
    pub async fn eval(&self, script: &str, args: Vec<Value>) -> Value {
        self.client
            .execute(script, args)
            .await
            .unwrap_or_else(|e| panic!("script failed: {e}\n{script}"))
    }

    /// Waits until `script` (a function body returning a truthy value when the condition
    /// holds) does, checking every 50 ms; fails naming `what` after [`PATIENCE`].
    pub async fn until(&self, what: &str, script: &str, args: Vec<Value>) -> Value {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let value = self.eval(script, args.clone()).await;
            let truthy = !matches!(value, Value::Null | Value::Bool(false))
                && value != json!(0)
                && value != json!("");
            if truthy {
                return value;
            }
            if Instant::now() > deadline {
                self.screenshot(&format!("failed-{}", what.replace(' ', "-")))
                    .await;
                panic!("timed out waiting for {what} (last answer {value})");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until the text of `id` is `expected`.
    pub async fn until_text(&self, id: &str, expected: &str) {
        self.until(
            &format!("`{id}` to read `{expected}`"),
            "const e = document.querySelector(arguments[0]); \
             return e !== null && e.textContent.trim() === arguments[1];",
            vec![json!(testid(id)), json!(expected)],
        )
        .await;
    }

    /// Waits until nothing matches `selector`.
    pub async fn until_gone(&self, what: &str, selector: &str) {
        self.until(
            what,
            "return document.querySelector(arguments[0]) === null;",
            vec![json!(selector)],
        )
        .await;
    }

    /// Saves what the window shows as `target/browser-screenshots/<name>.png`.
    pub async fn screenshot(&self, name: &str) {
        let png = match self.client.screenshot().await {
            Ok(png) => png,
            Err(e) => {
                eprintln!("screenshot {name}: {e}");
                return;
            }
        };
        let dir = screenshot_dir();
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("{name}.png")), png).unwrap();
    }

    /// Signs in on the sign-in page and waits for the console.
    pub async fn sign_in(&self, username: &str, password: &str) {
        self.open("/login").await;
        self.fill("login-username", username).await;
        self.fill("login-password", password).await;
        self.click("sign-in").await;
        self.until(
            "the console after signing in",
            "const e = document.querySelector(arguments[0]); \
             return e !== null && e.dataset.state === 'live';",
            vec![json!(testid("live-indicator"))],
        )
        .await;
    }

    /// What the page's Content-Security-Policy refused (the console records violations).
    pub async fn csp_violations(&self) -> Vec<String> {
        let v = self
            .eval(
                "return (window.__ocPerf || {}).cspViolations || [];",
                vec![],
            )
            .await;
        serde_json::from_value(v).unwrap_or_default()
    }

    pub async fn close(self) {
        let _ = self.client.close().await;
    }
}
