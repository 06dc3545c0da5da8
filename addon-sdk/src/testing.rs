//! Helpers for addon unit tests: build raw events, and read what the native host stand-ins saw.
//!
//! Addon tests call their parse methods directly, natively, with `cargo test`:
//!
//! ```
//! use opsconductor_addon_sdk::testing;
//! let req = testing::webhook("alertmanager", r#"{"alerts": []}"#);
//! assert_eq!(req.json().unwrap()["alerts"].as_array().map(Vec::len), Some(0));
//! ```

use crate::WebhookRequest;

/// A `POST` webhook request with a JSON content type, as the host would hand it over.
pub fn webhook(path: &str, body: impl Into<Vec<u8>>) -> WebhookRequest {
    WebhookRequest {
        method: "POST".to_owned(),
        path: path.to_owned(),
        headers: vec![("content-type".to_owned(), "application/json".to_owned())],
        query: Vec::new(),
        body: body.into(),
        // TEST-NET-1 (RFC 5737): never a real sender.
        source: "192.0.2.10:40000".to_owned(),
    }
}

/// Everything logged on this thread since the last call, oldest first (native builds only).
#[cfg(not(target_arch = "wasm32"))]
pub fn take_logs() -> Vec<(crate::LogLevel, String)> {
    crate::host::imp::LOGS.with(|logs| std::mem::take(&mut *logs.borrow_mut()))
}

/// Clears this thread's logs and state, for a test that needs a clean host (native builds only).
#[cfg(not(target_arch = "wasm32"))]
pub fn reset() {
    crate::host::imp::LOGS.with(|logs| logs.borrow_mut().clear());
    crate::host::imp::STATE.with(|state| state.borrow_mut().clear());
}
