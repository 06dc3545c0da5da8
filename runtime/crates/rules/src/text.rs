//! Plain functions over values and text: rendering a value as text, numbers in text, devices,
//! times and JSON pointer escaping. Hosts, RFC 3339 and truncation come from
//! `opsconductor-text`, which the SDK uses too: a rule names devices, reads times and cuts text
//! exactly as the compiled addon it replaces does.

use std::borrow::Cow;
use std::net::IpAddr;

use serde_json::{Number, Value};

pub(crate) use opsconductor_text::{host_part, rfc3339_millis, truncate};

/// A value as text: strings as they are, numbers as JSON text (an integral float without
/// `.0`), `true`/`false`, and JSON for arrays and objects. Null reads as empty text, though
/// evaluation never hands a null here (a null is a missing value).
pub(crate) fn to_text(value: &Value) -> Cow<'_, str> {
    match value {
        Value::String(s) => Cow::Borrowed(s),
        Value::Number(n) => Cow::Owned(number_text(n)),
        Value::Bool(b) => Cow::Borrowed(if *b { "true" } else { "false" }),
        Value::Null => Cow::Borrowed(""),
        other => Cow::Owned(other.to_string()),
    }
}

/// Floats that hold an integer print as one (`2`, not `2.0`), so that `3` read from text with
/// `number` and `3` sent as an integer look the same in a title or an identity.
fn number_text(n: &Number) -> String {
    match n.as_f64() {
        // 2^53: beyond it a float no longer holds every integer, so it prints as it is.
        Some(f) if n.is_f64() && f.fract() == 0.0 && f.abs() < 9_007_199_254_740_992.0 => {
            // The bound above makes the cast exact.
            format!("{}", f as i64)
        }
        _ => n.to_string(),
    }
}

/// A number, or text that holds one (surrounding blanks allowed): what `number`, `gt` and
/// friends accept. Integers stay integers.
pub(crate) fn to_number(value: &Value) -> Option<Number> {
    match value {
        Value::Number(n) => Some(n.clone()),
        Value::String(s) => {
            let s = s.trim();
            if let Ok(i) = s.parse::<i64>() {
                Some(Number::from(i))
            } else if let Ok(u) = s.parse::<u64>() {
                Some(Number::from(u))
            } else {
                // `f64::from_str` also takes `inf` and `NaN`, which are not numbers to a rule.
                s.parse::<f64>().ok().and_then(Number::from_f64)
            }
        }
        _ => None,
    }
}

/// Numeric equality that stays exact for integers beyond 2^53 (64-bit counters).
pub(crate) fn numbers_equal(a: &Number, b: &Number) -> bool {
    fn int(n: &Number) -> Option<i128> {
        n.as_i64()
            .map(i128::from)
            .or_else(|| n.as_u64().map(i128::from))
    }
    match (int(a), int(b)) {
        (Some(x), Some(y)) => x == y,
        _ => a.as_f64() == b.as_f64(),
    }
}

/// An RFC 3339 time or Unix milliseconds (a number or integer text), as milliseconds.
pub(crate) fn time_millis(value: &Value) -> Option<i64> {
    match value {
        Value::Number(n) => n.as_i64().or_else(|| {
            n.as_f64()
                .filter(|f| f.fract() == 0.0 && f.abs() < 9e15)
                .map(|f| f as i64)
        }),
        Value::String(s) => s.trim().parse::<i64>().ok().or_else(|| rfc3339_millis(s)),
        _ => None,
    }
}

/// A device as a host names it: an IP address (brackets stripped, in canonical form, the form
/// the host stores) or else a name. `None` for blank text.
pub(crate) enum Device {
    Ip(String),
    Name(String),
}

pub(crate) fn device(host: &str) -> Option<Device> {
    let h = host.trim();
    if h.is_empty() {
        return None;
    }
    Some(match parse_ip(h) {
        Some(ip) => Device::Ip(ip),
        None => Device::Name(h.to_owned()),
    })
}

/// An IP address, brackets allowed, in canonical form.
pub(crate) fn parse_ip(text: &str) -> Option<String> {
    let t = text.trim();
    let t = t
        .strip_prefix('[')
        .and_then(|r| r.strip_suffix(']'))
        .unwrap_or(t);
    t.parse::<IpAddr>().ok().map(|ip| ip.to_string())
}

/// One reference token of a JSON pointer (RFC 6901): `~` → `~0`, `/` → `~1`.
pub(crate) fn escape_pointer(key: &str) -> Cow<'_, str> {
    if key.contains(['~', '/']) {
        Cow::Owned(key.replace('~', "~0").replace('/', "~1"))
    } else {
        Cow::Borrowed(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn values_as_text() {
        let cases = [
            (json!("a b"), "a b"),
            (json!(3), "3"),
            (json!(-3), "-3"),
            (json!(2.0), "2"),
            (json!(2.5), "2.5"),
            (json!(true), "true"),
            (json!(false), "false"),
            (json!([1, "x"]), r#"[1,"x"]"#),
            (json!({"a": 1}), r#"{"a":1}"#),
        ];
        for (value, want) in cases {
            assert_eq!(to_text(&value), want, "{value}");
        }
    }

    #[test]
    fn numbers_in_text() {
        assert_eq!(to_number(&json!(" 42 ")), Some(Number::from(42)));
        assert_eq!(
            to_number(&json!("18446744073709551615")),
            Some(Number::from(u64::MAX))
        );
        assert_eq!(to_number(&json!("2.5")).and_then(|n| n.as_f64()), Some(2.5));
        for not in [
            json!("inf"),
            json!("NaN"),
            json!("12 apples"),
            json!(""),
            json!(true),
        ] {
            assert_eq!(to_number(&not), None, "{not}");
        }
        assert!(numbers_equal(
            &Number::from(3),
            &Number::from_f64(3.0).unwrap()
        ));
        assert!(!numbers_equal(
            &Number::from(9_007_199_254_740_993_u64),
            &Number::from(9_007_199_254_740_992_u64)
        ));
    }

    #[test]
    fn times() {
        let cases = [
            (json!("1970-01-01T00:00:00Z"), Some(0)),
            (json!("2024-03-01T10:00:00.5Z"), Some(1_709_287_200_500)),
            (json!("2024-03-01T12:00:00+02:00"), Some(1_709_287_200_000)),
            (json!("0001-01-01T00:00:00Z"), None),
            (json!("2024-02-30T10:00:00Z"), None),
            (json!(1_709_287_200_000_i64), Some(1_709_287_200_000)),
            (json!("1709287200000"), Some(1_709_287_200_000)),
            (json!(1.5), None),
            (json!("yesterday"), None),
        ];
        for (value, want) in cases {
            assert_eq!(time_millis(&value), want, "{value}");
        }
    }

    #[test]
    fn pointers_and_addresses() {
        assert_eq!(
            escape_pointer("app.kubernetes.io/name"),
            "app.kubernetes.io~1name"
        );
        assert_eq!(escape_pointer("a~b"), "a~0b");
        assert_eq!(
            parse_ip(" [2001:0db8::0001] ").as_deref(),
            Some("2001:db8::1")
        );
        assert_eq!(parse_ip("core-sw-01"), None);
    }
}
