//! Helpers for declarative poll addons: what the host fetched, found by the fetch's `name` in
//! the manifest; SNMP table columns by row index; the target's config with errors that name the
//! key; and [`Alert::target`] for the polled device.
//!
//! A fetch the host could not complete (timeout, refused, authentication failure) arrives as an
//! `Err` outcome. The host raises and clears the "target unreachable" alert itself, so the
//! typed accessors ([`PollResult::snmp`], [`PollResult::http`], [`PollResult::ssh`]) answer
//! `Ok(None)` for it: an addon usually reports nothing about data it did not get, neither a
//! raise nor a clear. [`PollResult::fetched`] still gives the error text to an addon that has
//! something better to say.

use std::collections::HashMap;

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::{
    AddonError, Alert, Fetched, FetchedData, HttpResponse, PollResult, SnmpValue, SshOutput,
    Target, Varbind, host_part, oid_suffix,
};

impl PollResult {
    /// The fetch named `name` in the manifest's `poll.fetch`, as the host reported it.
    pub fn fetched(&self, name: &str) -> Option<&Fetched> {
        self.fetched.iter().find(|f| f.name == name)
    }

    /// The data of fetch `name`: `Ok(None)` when the host could not fetch it, and an
    /// `invalid-input` error when the poll result has no fetch of that name.
    pub fn data(&self, name: &str) -> Result<Option<&FetchedData>, AddonError> {
        let fetched = self.fetched(name).ok_or_else(|| {
            AddonError::invalid_input(format!("the poll result has no fetch `{name}`"))
        })?;
        Ok(fetched.outcome.as_ref().ok())
    }

    /// The varbinds of the SNMP fetch `name` (see [`PollResult::data`]); an `invalid-input`
    /// error when it is HTTP or SSH data.
    pub fn snmp(&self, name: &str) -> Result<Option<&[Varbind]>, AddonError> {
        match self.data(name)? {
            None => Ok(None),
            Some(FetchedData::Snmp(varbinds)) => Ok(Some(varbinds)),
            Some(other) => Err(wrong_kind(name, "snmp", other)),
        }
    }

    /// The response of the HTTP fetch `name` (see [`PollResult::data`]).
    pub fn http(&self, name: &str) -> Result<Option<&HttpResponse>, AddonError> {
        match self.data(name)? {
            None => Ok(None),
            Some(FetchedData::Http(response)) => Ok(Some(response)),
            Some(other) => Err(wrong_kind(name, "http", other)),
        }
    }

    /// The output of the SSH fetch `name` (see [`PollResult::data`]).
    pub fn ssh(&self, name: &str) -> Result<Option<&SshOutput>, AddonError> {
        match self.data(name)? {
            None => Ok(None),
            Some(FetchedData::Ssh(output)) => Ok(Some(output)),
            Some(other) => Err(wrong_kind(name, "ssh", other)),
        }
    }

    /// The column under `prefix` of the SNMP fetch `name`, empty when that fetch is absent,
    /// failed or not SNMP: for optional columns (ifName, ifAlias) that not every agent has.
    pub fn column(&self, name: &str, prefix: &str) -> Column<'_> {
        match self.snmp(name) {
            Ok(Some(varbinds)) => Column::new(varbinds, prefix),
            _ => Column::default(),
        }
    }

    /// The target's config (see [`TargetConfig`]).
    pub fn config(&self) -> Result<TargetConfig, AddonError> {
        TargetConfig::parse(&self.target.config)
    }
}

fn wrong_kind(name: &str, wanted: &str, got: &FetchedData) -> AddonError {
    let got = match got {
        FetchedData::Snmp(_) => "snmp",
        FetchedData::Http(_) => "http",
        FetchedData::Ssh(_) => "ssh",
    };
    AddonError::invalid_input(format!("fetch `{name}` is {got} data, expected {wanted}"))
}

/// One column of an SNMP table from a walk (or GET): values by row index, the part of each OID
/// after the column's, in the order the agent returned them (MIB order for a walk).
///
/// The exceptions `noSuchObject`, `noSuchInstance` and `endOfMibView` are left out: they say a
/// row has no value.
///
/// ```
/// use opsconductor_addon_sdk::{SnmpValue, Varbind, poll::Column};
/// let walk = vec![
///     Varbind { oid: "1.3.6.1.2.1.2.2.1.8.1".into(), value: SnmpValue::Integer(1) },
///     Varbind { oid: "1.3.6.1.2.1.2.2.1.8.10".into(), value: SnmpValue::Integer(2) },
/// ];
/// let oper = Column::new(&walk, "1.3.6.1.2.1.2.2.1.8");
/// assert_eq!(oper.int("10"), Some(2));
/// assert_eq!(oper.indexes().collect::<Vec<_>>(), ["1", "10"]);
/// ```
#[derive(Debug, Clone, Default)]
pub struct Column<'v> {
    rows: Vec<(&'v str, &'v SnmpValue)>,
    by_index: HashMap<&'v str, usize>,
}

impl<'v> Column<'v> {
    pub fn new(varbinds: &'v [Varbind], prefix: &str) -> Column<'v> {
        let mut column = Column::default();
        for vb in varbinds {
            let Some(index) = oid_suffix(&vb.oid, prefix).filter(|i| !i.is_empty()) else {
                continue;
            };
            if matches!(
                vb.value,
                SnmpValue::NoSuchObject | SnmpValue::NoSuchInstance | SnmpValue::EndOfMibView
            ) {
                continue;
            }
            // The first value of an index wins, as in the agent's own order.
            if !column.by_index.contains_key(index) {
                column.by_index.insert(index, column.rows.len());
                column.rows.push((index, &vb.value));
            }
        }
        column
    }

    /// The value at row `index`.
    pub fn get(&self, index: &str) -> Option<&'v SnmpValue> {
        self.by_index.get(index).map(|&i| self.rows[i].1)
    }

    /// The value at row `index` as text (see [`SnmpValue::text`]), `None` when absent or blank.
    pub fn text(&self, index: &str) -> Option<String> {
        let text = self.get(index)?.text();
        (!text.trim().is_empty()).then(|| text.trim().to_owned())
    }

    /// The value at row `index` as a number (see [`SnmpValue::as_i64`]).
    pub fn int(&self, index: &str) -> Option<i64> {
        self.get(index)?.as_i64()
    }

    /// The rows in the order received.
    pub fn iter(&self) -> impl Iterator<Item = (&'v str, &'v SnmpValue)> + '_ {
        self.rows.iter().copied()
    }

    /// The row indexes in the order received.
    pub fn indexes(&self) -> impl Iterator<Item = &'v str> + '_ {
        self.rows.iter().map(|(i, _)| *i)
    }

    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }
}

/// A target's config: the JSON object an operator set on the target (never credentials), with
/// look-ups whose errors name the key, so that a bad config is reported as
/// `invalid-input: target config `thresholds`: invalid type: string "x", expected a sequence`.
///
/// A `null` value counts as absent, like a missing key.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TargetConfig {
    map: Map<String, Value>,
}

impl TargetConfig {
    /// Parses config text; blank text is an empty config, anything but an object an error.
    pub fn parse(text: &str) -> Result<TargetConfig, AddonError> {
        if text.trim().is_empty() {
            return Ok(TargetConfig::default());
        }
        match serde_json::from_str(text) {
            Ok(Value::Object(map)) => Ok(TargetConfig { map }),
            Ok(_) => Err(AddonError::invalid_input(
                "target config is not a JSON object",
            )),
            Err(e) => Err(AddonError::invalid_input(format!(
                "target config is not valid JSON: {e}"
            ))),
        }
    }

    /// The raw value at `key`, `None` when absent or null.
    pub fn value(&self, key: &str) -> Option<&Value> {
        self.map.get(key).filter(|v| !v.is_null())
    }

    /// The value at `key` as `T` (a string, number, list, or a `Deserialize` struct), `None`
    /// when absent, or an `invalid-input` error naming the key when it does not fit.
    pub fn get<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, AddonError> {
        self.value(key)
            .map(|v| T::deserialize(v).map_err(|e| AddonError::bad_config(key, e)))
            .transpose()
    }

    /// Like [`TargetConfig::get`], with `default` when absent.
    pub fn get_or<T: DeserializeOwned>(&self, key: &str, default: T) -> Result<T, AddonError> {
        Ok(self.get(key)?.unwrap_or(default))
    }

    /// Like [`TargetConfig::get_or`], and then the value must pass `valid`, or the error is
    /// [`AddonError::bad_config`] with `message`:
    ///
    /// ```
    /// use opsconductor_addon_sdk::poll::TargetConfig;
    /// let c = TargetConfig::parse(r#"{"load_max": -1}"#).unwrap();
    /// let err = c.get_checked("load_max", 8.0, |v: &f64| *v >= 0.0, "must be a number from 0");
    /// assert_eq!(err.unwrap_err().message, "target config `load_max`: must be a number from 0");
    /// assert_eq!(c.get_checked("other", 8.0, |v: &f64| *v >= 0.0, "").unwrap(), 8.0);
    /// ```
    pub fn get_checked<T: DeserializeOwned>(
        &self,
        key: &str,
        default: T,
        valid: impl FnOnce(&T) -> bool,
        message: &str,
    ) -> Result<T, AddonError> {
        let value = self.get_or(key, default)?;
        match valid(&value) {
            true => Ok(value),
            false => Err(AddonError::bad_config(key, message)),
        }
    }

    /// Like [`TargetConfig::get`], or an `invalid-input` error when absent.
    pub fn req<T: DeserializeOwned>(&self, key: &str) -> Result<T, AddonError> {
        self.get(key)?
            .ok_or_else(|| AddonError::invalid_input(format!("target config `{key}` is required")))
    }

    /// The regular expression at `key`, or an error naming the key when it does not compile.
    pub fn regex(&self, key: &str) -> Result<Option<crate::Regex>, AddonError> {
        let Some(pattern) = self.get::<String>(key)? else {
            return Ok(None);
        };
        crate::Regex::new(&pattern)
            .map(Some)
            .map_err(|e| AddonError::bad_config(key, e))
    }

    /// The grok pattern at `key` (feature `grok`), or an error naming the key when it does not
    /// compile.
    #[cfg(feature = "grok")]
    pub fn grok(&self, key: &str) -> Result<Option<crate::grok::Grok>, AddonError> {
        let Some(pattern) = self.get::<String>(key)? else {
            return Ok(None);
        };
        crate::grok::Grok::new(&pattern)
            .map(Some)
            .map_err(|e| AddonError::bad_config(key, e.message))
    }
}

impl Target {
    /// How to name the target in titles and messages: its name, or its address when the name is
    /// blank.
    pub fn label(&self) -> &str {
        match self.name.trim() {
            "" => self.address.trim(),
            name => name,
        }
    }
}

impl Alert {
    /// Sets the device to the polled target: `device-ip` from its address when that is an IP
    /// address (a port, scheme or path stripped, see [`host_part`]), and `device-name` its name,
    /// or else the address as a name.
    pub fn target(mut self, target: &Target) -> Alert {
        let host = host_part(&target.address);
        if let Some(ip) = host.and_then(|h| h.parse::<std::net::IpAddr>().ok()) {
            self = self.device_ip(ip.to_string());
        }
        let name = Some(target.name.trim()).filter(|n| !n.is_empty());
        match name.or(host.filter(|_| self.device_ip.is_none())) {
            Some(name) => self.device_name(name),
            None => self,
        }
    }
}

impl HttpResponse {
    /// Whether the status is 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The first header named `name`, compared case-insensitively.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body parsed as JSON, or an `invalid-input` error saying where it stopped parsing.
    pub fn json(&self) -> Result<Value, AddonError> {
        serde_json::from_slice(&self.body)
            .map_err(|e| AddonError::invalid_input(format!("body is not valid JSON: {e}")))
    }
}

impl SshOutput {
    /// Standard output as text; invalid UTF-8 is replaced, not refused.
    pub fn stdout_text(&self) -> std::borrow::Cow<'_, str> {
        String::from_utf8_lossy(&self.stdout)
    }

    /// Standard error as text; invalid UTF-8 is replaced, not refused.
    pub fn stderr_text(&self) -> std::borrow::Cow<'_, str> {
        String::from_utf8_lossy(&self.stderr)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ErrorKind, testing};

    const POLL: &str = r#"{
        "target": {"id": "7", "name": "core-sw-1", "address": "192.0.2.10:161",
                   "config": {"exclude": "^Null", "max": 3, "bad": "(", "nothing": null}},
        "started_at": 1767225600000,
        "fetched": [
            {"name": "oper", "snmp": [
                {"oid": "1.3.6.1.2.1.2.2.1.8.2", "type": "integer", "value": 2},
                {"oid": "1.3.6.1.2.1.2.2.1.8.10", "type": "integer", "value": 1},
                {"oid": "1.3.6.1.2.1.2.2.1.8.11", "type": "no-such-instance"},
                {"oid": "1.3.6.1.2.1.2.2.1.80.1", "type": "integer", "value": 9}
            ]},
            {"name": "health", "http": {"status": 200, "headers": {"Content-Type": "application/json"},
                                        "json": {"status": "ok"}}},
            {"name": "df", "ssh": {"command": "df -P", "stdout": "x\n"}},
            {"name": "gone", "error": "unreachable: timed out"}
        ]}"#;

    #[test]
    fn fetches_by_name_and_kind() {
        let poll = testing::poll_json(POLL);
        assert_eq!(poll.snmp("oper").unwrap().map(<[_]>::len), Some(4));
        assert_eq!(poll.http("health").unwrap().map(|r| r.status), Some(200));
        assert_eq!(
            poll.ssh("df")
                .unwrap()
                .map(|o| o.stdout_text().into_owned()),
            Some("x\n".to_owned())
        );
        assert_eq!(poll.snmp("gone").unwrap(), None);
        assert_eq!(
            poll.fetched("gone").map(|f| f.outcome.clone()),
            Some(Err("unreachable: timed out".to_owned()))
        );
        let cases = [
            (
                poll.snmp("nope").unwrap_err(),
                "the poll result has no fetch `nope`",
            ),
            (
                poll.ssh("health").unwrap_err(),
                "fetch `health` is http data, expected ssh",
            ),
            (
                poll.http("oper").unwrap_err(),
                "fetch `oper` is snmp data, expected http",
            ),
        ];
        for (err, message) in cases {
            assert_eq!(
                (err.kind, err.message.as_str()),
                (ErrorKind::InvalidInput, message)
            );
        }
    }

    #[test]
    fn columns_by_index_in_walk_order() {
        let poll = testing::poll_json(POLL);
        let oper = poll.column("oper", "1.3.6.1.2.1.2.2.1.8");
        assert_eq!(
            oper.indexes().collect::<Vec<_>>(),
            ["2", "10"],
            "exceptions left out"
        );
        assert_eq!(oper.int("2"), Some(2));
        assert_eq!(oper.get("11"), None);
        assert_eq!(oper.text("10").as_deref(), Some("1"));
        assert_eq!(oper.len(), 2);
        assert!(poll.column("gone", "1.3").is_empty());
        assert!(poll.column("health", "1.3").is_empty());
        assert!(poll.column("nope", "1.3").is_empty());
    }

    #[test]
    fn config_lookups_name_the_key() {
        let config = testing::poll_json(POLL).config().unwrap();
        assert_eq!(config.get::<f64>("max").unwrap(), Some(3.0));
        assert_eq!(config.get::<String>("nothing").unwrap(), None);
        assert_eq!(config.get_or("missing", 5u32).unwrap(), 5);
        assert!(config.regex("exclude").unwrap().unwrap().is_match("Null0"));
        let cases = [
            (
                config.get::<String>("max").unwrap_err(),
                "target config `max`: invalid type",
            ),
            (
                config.req::<String>("path").unwrap_err(),
                "target config `path` is required",
            ),
            (
                config.regex("bad").unwrap_err(),
                "target config `bad`: regex parse error",
            ),
            (
                TargetConfig::parse("[]").unwrap_err(),
                "target config is not a JSON object",
            ),
            (
                TargetConfig::parse("{").unwrap_err(),
                "target config is not valid JSON",
            ),
        ];
        for (err, prefix) in cases {
            assert_eq!(err.kind, ErrorKind::InvalidInput);
            assert!(err.message.starts_with(prefix), "{}", err.message);
        }
        assert_eq!(TargetConfig::parse(" ").unwrap(), TargetConfig::default());
    }

    #[test]
    fn alerts_name_the_target() {
        let target = |address: &str, name: &str| Target {
            id: "1".into(),
            name: name.into(),
            address: address.into(),
            config: "{}".into(),
        };
        let device = |t: &Target| {
            let a = Alert::new("t", "").target(t);
            (a.device_ip, a.device_name)
        };
        let some = |s: &str| Some(s.to_owned());
        assert_eq!(
            device(&target("192.0.2.10:161", "sw1")),
            (some("192.0.2.10"), some("sw1"))
        );
        assert_eq!(
            device(&target("[2001:db8::1]:22", " ")),
            (some("2001:db8::1"), None)
        );
        assert_eq!(
            device(&target("https://web-1.example.net/", "web")),
            (None, some("web"))
        );
        assert_eq!(target("192.0.2.10:161", " sw1 ").label(), "sw1");
        assert_eq!(target("192.0.2.10:161", "").label(), "192.0.2.10:161");
        assert_eq!(
            device(&target("web-1.example.net", "")),
            (None, some("web-1.example.net"))
        );
    }

    #[test]
    fn http_response_helpers() {
        let poll = testing::poll_json(POLL);
        let r = poll.http("health").unwrap().unwrap();
        assert!(r.is_success());
        assert_eq!(r.header("content-type"), Some("application/json"));
        assert_eq!(r.json().unwrap()["status"], "ok");
    }
}
