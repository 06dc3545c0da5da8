//! A real Prometheus server for the metrics tests: Debian's `prometheus` started as a child
//! process on a free loopback port, scraping one target every second with a bearer token, its
//! storage in a temporary directory; killed on drop.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

pub const PROMETHEUS: &str = "/usr/bin/prometheus";

/// A running Prometheus, killed on drop.
pub struct Prometheus {
    dir: tempfile::TempDir,
    port: u16,
    child: Child,
}

impl Prometheus {
    /// Starts Prometheus scraping `http://{target}{path}` as job `opsconductor`, sending
    /// `Authorization: Bearer {token}`.
    pub fn start(target: &str, path: &str, token: &str) -> Prometheus {
        assert!(
            Path::new(PROMETHEUS).exists(),
            "{PROMETHEUS} is missing: apt-get install prometheus (scripts/test-peers.sh installs it)"
        );
        let dir = tempfile::tempdir().expect("temp dir");
        let token_file = dir.path().join("token");
        std::fs::write(&token_file, token).unwrap();
        let config = dir.path().join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n\
                 scrape_configs:\n  - job_name: opsconductor\n    metrics_path: {path}\n    \
                 authorization:\n      type: Bearer\n      credentials_file: {token}\n    \
                 static_configs:\n      - targets: ['{target}']\n",
                token = token_file.display(),
            ),
        )
        .unwrap();
        let port = crate::sshd::free_port();
        let child = Command::new(PROMETHEUS)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.path().join("prometheus.log")).unwrap())
            .spawn()
            .expect("prometheus starts");
        let prometheus = Prometheus { dir, port, child };
        // Prometheus listens before its storage is open and answers its API with a plain-text
        // 503 until then: wait for `/-/ready`, not for the port.
        let deadline = Instant::now() + Duration::from_secs(30);
        while !prometheus.ready() {
            assert!(
                Instant::now() < deadline,
                "prometheus on {port} was not ready within 30 s:\n{}",
                prometheus.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        prometheus
    }

    /// Whether `GET /-/ready` answers 200.
    fn ready(&self) -> bool {
        let Ok(mut stream) = TcpStream::connect(("127.0.0.1", self.port)) else {
            return false;
        };
        let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
        let request = format!(
            "GET /-/ready HTTP/1.0\r\nHost: 127.0.0.1:{}\r\n\r\n",
            self.port
        );
        let mut status = [0u8; 12];
        stream.write_all(request.as_bytes()).is_ok()
            && stream.read_exact(&mut status).is_ok()
            && status.ends_with(b" 200")
    }

    /// The series of an instant query; panics when Prometheus refuses the query.
    pub async fn query_all(&self, expr: &str) -> Vec<Value> {
        let answer: Value = reqwest::Client::new()
            .get(format!("http://127.0.0.1:{}/api/v1/query", self.port))
            .query(&[("query", expr)])
            .send()
            .await
            .expect("prometheus answers")
            .json()
            .await
            .expect("prometheus answers JSON");
        assert_eq!(answer["status"], "success", "query `{expr}`: {answer}");
        answer["data"]["result"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// The value of an instant query that yields one sample, `None` while it yields none.
    pub async fn query(&self, expr: &str) -> Option<f64> {
        let result = self.query_all(expr).await;
        assert!(
            result.len() <= 1,
            "query `{expr}` has several series: {result:?}"
        );
        result.first()?["value"][1].as_str()?.parse().ok()
    }

    /// The target's scrape state as Prometheus reports it (`health`, `lastError`), for failure
    /// messages.
    pub async fn targets(&self) -> Value {
        reqwest::Client::new()
            .get(format!("http://127.0.0.1:{}/api/v1/targets", self.port))
            .send()
            .await
            .expect("prometheus answers")
            .json()
            .await
            .expect("prometheus answers JSON")
    }

    /// What Prometheus logged, for failure messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("prometheus.log")).unwrap_or_default()
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
