//! Helpers on [`WebhookRequest`]: the body as text, JSON or form fields; headers; query.

use serde_json::Value;

use crate::{AddonError, WebhookRequest};

impl WebhookRequest {
    /// The body as UTF-8 text, or an `invalid-input` error.
    pub fn body_text(&self) -> Result<&str, AddonError> {
        std::str::from_utf8(&self.body)
            .map_err(|e| AddonError::invalid_input(format!("body is not UTF-8: {e}")))
    }

    /// The body parsed as JSON, or an `invalid-input` error saying where it stopped parsing.
    ///
    /// The host already checks a manifest `format: json` body is valid JSON, so for most addons
    /// this cannot fail in production; the error path serves tests and `format: text` addons.
    pub fn json(&self) -> Result<Value, AddonError> {
        serde_json::from_slice(&self.body)
            .map_err(|e| AddonError::invalid_input(format!("body is not valid JSON: {e}")))
    }

    /// The body deserialized into `T` (a `#[derive(Deserialize)]` struct), or an
    /// `invalid-input` error saying what did not fit (`body does not match the expected shape:
    /// invalid type: string "two", expected u32`). Serde does not say where; when the author
    /// needs the location, [`crate::req_str`] and friends name the pointer.
    ///
    /// For addons that prefer typed payloads to [`mod@crate::json`] pointer look-ups; derive with
    /// `#[serde(crate = "opsconductor_addon_sdk::serde")]` to avoid a direct `serde` dependency.
    pub fn json_as<T: serde::de::DeserializeOwned>(&self) -> Result<T, AddonError> {
        let v = self.json()?;
        T::deserialize(&v).map_err(|e| {
            AddonError::invalid_input(format!("body does not match the expected shape: {e}"))
        })
    }

    /// The body decoded as `application/x-www-form-urlencoded` name/value pairs, in order.
    /// `+` is a space and `%XX` an escaped byte; malformed escapes are kept literally, as
    /// browsers do, rather than failing the whole request.
    pub fn form(&self) -> Result<Vec<(String, String)>, AddonError> {
        Ok(parse_form(self.body_text()?))
    }

    /// The first header named `name`, compared case-insensitively (the host lowercases names).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The first query parameter named `name`.
    pub fn query_param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

fn parse_form(body: &str) -> Vec<(String, String)> {
    body.split('&')
        .filter(|part| !part.is_empty())
        .map(|part| {
            let (k, v) = part.split_once('=').unwrap_or((part, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' => match (
                b.get(i + 1).and_then(|&c| hex(c)),
                b.get(i + 2).and_then(|&c| hex(c)),
            ) {
                (Some(hi), Some(lo)) => {
                    out.push(hi * 16 + lo);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use crate::{ErrorKind, testing};

    #[test]
    fn json_body_and_its_errors() {
        let req = testing::webhook("x", r#"{"a": 1}"#);
        assert_eq!(req.json().unwrap()["a"], 1);

        let err = testing::webhook("x", "{not json").json().unwrap_err();
        assert_eq!(err.kind, ErrorKind::InvalidInput);
        assert!(
            err.message.starts_with("body is not valid JSON"),
            "{}",
            err.message
        );

        let err = testing::webhook("x", vec![0xff, 0xfe])
            .body_text()
            .unwrap_err();
        assert!(
            err.message.starts_with("body is not UTF-8"),
            "{}",
            err.message
        );
    }

    #[test]
    fn typed_json_body() {
        #[derive(serde::Deserialize, Debug)]
        struct Payload {
            status: String,
            count: u32,
        }
        let p: Payload = testing::webhook("x", r#"{"status":"firing","count":2}"#)
            .json_as()
            .unwrap();
        assert_eq!((p.status.as_str(), p.count), ("firing", 2));

        let err = testing::webhook("x", r#"{"status":"firing","count":"two"}"#)
            .json_as::<Payload>()
            .unwrap_err();
        assert_eq!(err.kind, ErrorKind::InvalidInput);
        assert!(
            err.message
                .starts_with("body does not match the expected shape: invalid type"),
            "{}",
            err.message
        );
    }

    #[test]
    fn form_body_is_decoded() {
        let req = testing::webhook(
            "x",
            "device=core+sw&message=C%3A%5C+12%25+free&empty=&flag&bad=%zz%4",
        );
        assert_eq!(
            req.form().unwrap(),
            vec![
                ("device".to_owned(), "core sw".to_owned()),
                ("message".to_owned(), r"C:\ 12% free".to_owned()),
                ("empty".to_owned(), String::new()),
                ("flag".to_owned(), String::new()),
                ("bad".to_owned(), "%zz%4".to_owned()),
            ]
        );
    }

    #[test]
    fn headers_and_query() {
        let mut req = testing::webhook("x", "");
        req.query.push(("token".into(), "abc".into()));
        assert_eq!(req.header("Content-Type"), Some("application/json"));
        assert_eq!(req.header("x-missing"), None);
        assert_eq!(req.query_param("token"), Some("abc"));
        assert_eq!(req.query_param("TOKEN"), None);
    }
}
