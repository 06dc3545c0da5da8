//! A test addon that misbehaves on request, so the sandbox's limits can be tested end to end.
//!
//! The webhook body `{"do": "<action>", "key": "<optional identity>"}` picks the behaviour:
//!
//! | `do`      | what happens                                                          |
//! |-----------|-----------------------------------------------------------------------|
//! | `ok`      | one alert `chaosOk` on 192.0.2.99 (identity `key` when given)         |
//! | `panic`   | panics with `chaos: deliberate panic` (the host should log it)        |
//! | `spin`    | loops forever: only the CPU deadline stops it                         |
//! | `alloc`   | allocates 1 MiB chunks forever, touching every page: the memory cap   |
//! | `state`   | increments the state key `count` and returns it in field `count`      |
//! | `log`     | logs once at each level, then answers like `ok`                       |
//! | `error`   | returns an `internal` error `chaos: deliberate error`                 |
//! | `escape`  | tries the filesystem, environment, arguments and a TCP connect to 127.0.0.1:`port`, and reports what worked as fields |
//! | `sleep`   | sleeps 60 s in a WASI clock wait: no guest CPU, so only the wall-clock timeout stops it |
//! | `flood`   | `n` alerts like `ok`, identities `0` … `n-1`: the cap on alerts per event |
//!
//! Anything else is `invalid-input`.

use std::hint::black_box;

use opsconductor_addon_sdk::prelude::*;

#[derive(Default)]
struct Chaos;

register_addon!(Chaos);

/// Chunk size for `alloc`: big enough to reach a 32 MiB cap in a few dozen steps, small enough
/// that the failing allocation is clearly the cap and not one absurd request.
const CHUNK: usize = 1 << 20;
/// WebAssembly page size; writing one byte per page makes every page really used.
const PAGE: usize = 64 * 1024;

impl Addon for Chaos {
    fn parse_webhook(&self, req: &WebhookRequest) -> Result<Vec<Alert>> {
        let body = req.json()?;
        let ok = || {
            let alert = Alert::new("chaosOk", "chaos: ok").device_ip("192.0.2.99");
            match ptr_text(&body, "/key") {
                Some(key) => alert.identity("key", key),
                None => alert,
            }
        };
        match req_str(&body, "/do")? {
            "ok" => Ok(vec![ok()]),
            "panic" => panic!("chaos: deliberate panic"),
            "spin" => spin(),
            "alloc" => hoard(),
            "state" => {
                let count = host::state_get("count")
                    .and_then(|v| String::from_utf8(v).ok())
                    .and_then(|s| s.parse::<u64>().ok())
                    .unwrap_or(0)
                    + 1;
                host::state_set("count", count.to_string().as_bytes())
                    .map_err(|e| AddonError::internal(format!("state-set failed: {e}")))?;
                Ok(vec![ok().field("count", count.to_string())])
            }
            "log" => {
                host::trace("chaos: trace");
                host::debug("chaos: debug");
                host::info("chaos: info");
                host::warn("chaos: warn");
                host::error("chaos: error");
                Ok(vec![ok()])
            }
            "error" => Err(AddonError::internal("chaos: deliberate error")),
            "escape" => {
                let port = ptr_text(&body, "/port").unwrap_or_else(|| "1".into());
                let tcp = format!("127.0.0.1:{port}")
                    .parse::<std::net::SocketAddr>()
                    .map(|addr| std::net::TcpStream::connect(addr).is_ok())
                    .unwrap_or(false);
                Ok(vec![
                    ok().field(
                        "file_read",
                        std::fs::read("/etc/passwd").is_ok().to_string(),
                    )
                    .field("dir_listed", std::fs::read_dir("/").is_ok().to_string())
                    .field("env_vars", std::env::vars().count().to_string())
                    .field("args", std::env::args().count().to_string())
                    .field("tcp_connect", tcp.to_string()),
                ])
            }
            "flood" => {
                let n = body.pointer("/n").and_then(|n| n.as_u64()).unwrap_or(1);
                Ok((0..n)
                    .map(|i| ok().identity("key", i.to_string()))
                    .collect())
            }
            "sleep" => {
                // Blocks in the host (wasi:clocks subscribe + poll), where the epoch deadline
                // does not run: this is what the wall-clock timeout exists for.
                std::thread::sleep(std::time::Duration::from_secs(60));
                Ok(vec![ok()])
            }
            other => Err(AddonError::invalid_input(format!(
                "unknown action `{other}` at /do"
            ))),
        }
    }
}

/// Burns CPU forever. `black_box` keeps the optimiser from proving the loop does nothing.
fn spin() -> ! {
    let mut n: u64 = 0;
    loop {
        n = black_box(n.wrapping_add(1));
    }
}

/// Grows memory until the host's cap makes an allocation fail (which aborts the instance).
fn hoard() -> ! {
    let mut hoard: Vec<Vec<u8>> = Vec::new();
    loop {
        let mut chunk = vec![0u8; CHUNK];
        for i in (0..CHUNK).step_by(PAGE) {
            chunk[i] = 1;
        }
        hoard.push(black_box(chunk));
        black_box(&hoard);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opsconductor_addon_sdk::{ErrorKind, testing};

    fn run(body: &str) -> Result<Vec<Alert>> {
        Chaos.parse_webhook(&testing::webhook("chaos", body))
    }

    #[test]
    fn ok_uses_the_key_as_identity() {
        let alerts = run(r#"{"do":"ok","key":"a"}"#).unwrap();
        assert_eq!(
            alerts,
            vec![
                Alert::new("chaosOk", "chaos: ok")
                    .device_ip("192.0.2.99")
                    .identity("key", "a")
            ]
        );
        assert!(run(r#"{"do":"ok"}"#).unwrap()[0].identity.is_empty());
    }

    #[test]
    fn state_counts_up() {
        testing::reset();
        for want in ["1", "2", "3"] {
            let alerts = run(r#"{"do":"state"}"#).unwrap();
            assert_eq!(
                alerts[0].fields,
                vec![("count".to_owned(), want.to_owned())]
            );
        }
    }

    #[test]
    fn log_logs_at_every_level() {
        testing::reset();
        run(r#"{"do":"log"}"#).unwrap();
        assert_eq!(testing::take_logs().len(), 5);
    }

    #[test]
    fn errors() {
        let err = run(r#"{"do":"error"}"#).unwrap_err();
        assert_eq!(
            (err.kind, err.message.as_str()),
            (ErrorKind::Internal, "chaos: deliberate error")
        );
        let err = run(r#"{"do":"dance"}"#).unwrap_err();
        assert_eq!(err.kind, ErrorKind::InvalidInput);
        assert_eq!(run("{}").unwrap_err().message, "missing string at /do");
    }

    #[test]
    #[should_panic(expected = "chaos: deliberate panic")]
    fn panic_panics() {
        let _ = run(r#"{"do":"panic"}"#);
    }
}
