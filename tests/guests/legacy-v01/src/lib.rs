//! A webhook addon built against `opsconductor:addon@0.1.0`, the foundation's WIT, with raw
//! `wit-bindgen` (the SDK now targets 0.2.0). Any webhook becomes one alert `legacyPing` whose
//! identity is the body's text, so a test can tell that a 0.1.0 component still installs, is
//! instantiated with the 0.1.0 bindings and runs.

wit_bindgen::generate!({
    path: "../../../wit/v0.1.0",
    world: "addon",
});

use exports::opsconductor::addon::handler::Guest;
use opsconductor::addon::types::{AddonError, Alert, ErrorKind, RawEvent};

struct Legacy;

impl Guest for Legacy {
    fn parse(event: RawEvent) -> Result<Vec<Alert>, AddonError> {
        let RawEvent::Webhook(request) = event else {
            return Err(AddonError {
                kind: ErrorKind::NotImplemented,
                message: "legacy-v01 handles webhooks only".into(),
            });
        };
        let key = String::from_utf8_lossy(&request.body).trim().to_owned();
        Ok(vec![Alert {
            alert_type: "legacyPing".into(),
            device_ip: Some("192.0.2.1".into()),
            device_name: None,
            title: "ping from a WIT 0.1.0 addon".into(),
            message: format!("host now: {}", opsconductor::addon::host::now()),
            severity: None,
            clears: false,
            identity: vec![("key".into(), key)],
            fields: Vec::new(),
            occurred_at: None,
        }])
    }
}

export!(Legacy);
