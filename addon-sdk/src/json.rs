//! JSON-pointer look-ups (RFC 6901) whose errors name the pointer.
//!
//! `ptr_*` functions are for optional values and return `Option`; `req_*` functions are for
//! values the addon cannot do without and return an `invalid-input` [`AddonError`] that says
//! which pointer was missing or of the wrong type, e.g.
//! `missing string at /alerts/0/labels/alertname`.
//!
//! Blank strings count as absent everywhere: vendors send `""` for unset fields (Grafana's
//! `dashboardURL`, PRTG placeholders with no value), and an alert is better without them.

use serde_json::{Map, Value};

use crate::AddonError;

/// The non-blank string at `pointer`, trimmed.
pub fn ptr_str<'a>(v: &'a Value, pointer: &str) -> Option<&'a str> {
    v.pointer(pointer)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

/// The scalar at `pointer` as text: a non-blank string (trimmed), a number or a boolean.
/// For identifiers that some senders quote and others do not (`"sensorid": 2045`).
pub fn ptr_text(v: &Value, pointer: &str) -> Option<String> {
    v.pointer(pointer).and_then(scalar_text)
}

/// The array at `pointer`.
pub fn ptr_array<'a>(v: &'a Value, pointer: &str) -> Option<&'a [Value]> {
    v.pointer(pointer)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
}

/// The object at `pointer`.
pub fn ptr_object<'a>(v: &'a Value, pointer: &str) -> Option<&'a Map<String, Value>> {
    v.pointer(pointer).and_then(Value::as_object)
}

/// The members of the object at `pointer` as `(name, text)` pairs sorted by name, for label and
/// annotation maps. Scalars become text as in [`ptr_text`]; nested arrays and objects become
/// their JSON text; blank strings and nulls are left out. Empty when there is no object.
pub fn ptr_pairs(v: &Value, pointer: &str) -> Vec<(String, String)> {
    let Some(map) = ptr_object(v, pointer) else {
        return Vec::new();
    };
    let mut pairs: Vec<(String, String)> = map
        .iter()
        .filter_map(|(k, v)| {
            let text = match v {
                Value::Array(_) | Value::Object(_) => Some(v.to_string()),
                _ => scalar_text(v),
            };
            text.map(|t| (k.clone(), t))
        })
        .collect();
    // serde_json's map order depends on its features; identity must not.
    pairs.sort();
    pairs
}

/// The non-blank string at `pointer`, or an `invalid-input` error naming it.
pub fn req_str<'a>(v: &'a Value, pointer: &str) -> Result<&'a str, AddonError> {
    ptr_str(v, pointer).ok_or_else(|| missing(v, pointer, "string"))
}

/// The scalar at `pointer` as text (see [`ptr_text`]), or an `invalid-input` error naming it.
pub fn req_text(v: &Value, pointer: &str) -> Result<String, AddonError> {
    ptr_text(v, pointer).ok_or_else(|| missing(v, pointer, "string or number"))
}

/// The array at `pointer`, or an `invalid-input` error naming it.
pub fn req_array<'a>(v: &'a Value, pointer: &str) -> Result<&'a [Value], AddonError> {
    ptr_array(v, pointer).ok_or_else(|| missing(v, pointer, "array"))
}

/// A number at `pointer`, or a string holding one (some APIs quote their numbers:
/// `"depth": "12"`). Booleans, blanks and text that is not a number are `None`.
pub fn ptr_f64(v: &Value, pointer: &str) -> Option<f64> {
    match v.pointer(pointer)? {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// The elements of the array at `pointer` as [`Node`]s, or an `invalid-input` error naming it:
/// the way to walk `alerts[]` so that every error inside an element names the element.
///
/// ```
/// use opsconductor_addon_sdk::{json, json::req_items};
/// let body = json!({"alerts": [{"labels": {"alertname": "HighCpu"}}, {"labels": {}}]});
/// let alerts = req_items(&body, "/alerts").unwrap();
/// assert_eq!(alerts[0].str("labels/alertname"), Some("HighCpu"));
/// assert_eq!(alerts[1].req_str("labels/alertname").unwrap_err().message,
///            "missing string at /alerts/1/labels/alertname");
/// ```
pub fn req_items<'v>(v: &'v Value, pointer: &str) -> Result<Vec<Node<'v>>, AddonError> {
    let len = req_array(v, pointer)?.len();
    Ok((0..len)
        .map(|i| Node::at(v, format!("{pointer}/{i}")))
        .collect())
}

/// A place in a JSON document: the document and a pointer into it. Its look-ups take a path
/// relative to that place (`labels/alertname`, or `""` for the place itself) and behave like
/// the `ptr_*`/`req_*` functions, whose errors name the whole pointer from the document's root
/// (`missing string at /alerts/3/labels/alertname`).
#[derive(Debug, Clone, PartialEq)]
pub struct Node<'v> {
    root: &'v Value,
    pointer: String,
}

impl<'v> Node<'v> {
    /// The document itself.
    pub fn root(root: &'v Value) -> Node<'v> {
        Node::at(root, String::new())
    }

    /// The place `pointer` in `root` (`""` is the root, else it starts with `/`).
    pub fn at(root: &'v Value, pointer: impl Into<String>) -> Node<'v> {
        Node {
            root,
            pointer: pointer.into(),
        }
    }

    /// This place's pointer from the document's root.
    pub fn pointer(&self) -> &str {
        &self.pointer
    }

    /// The absolute pointer of `path` below this place.
    pub fn pointer_to(&self, path: &str) -> String {
        match path.trim_start_matches('/') {
            "" => self.pointer.clone(),
            rel => format!("{}/{rel}", self.pointer),
        }
    }

    /// The place `path` below this one.
    pub fn child(&self, path: &str) -> Node<'v> {
        Node::at(self.root, self.pointer_to(path))
    }

    /// The value at `path`, if any.
    pub fn value(&self, path: &str) -> Option<&'v Value> {
        self.root.pointer(&self.pointer_to(path))
    }

    /// [`ptr_str`] at `path`.
    pub fn str(&self, path: &str) -> Option<&'v str> {
        ptr_str(self.root, &self.pointer_to(path))
    }

    /// [`ptr_text`] at `path`.
    pub fn text(&self, path: &str) -> Option<String> {
        ptr_text(self.root, &self.pointer_to(path))
    }

    /// [`ptr_f64`] at `path`.
    pub fn f64(&self, path: &str) -> Option<f64> {
        ptr_f64(self.root, &self.pointer_to(path))
    }

    /// `(path, string)` for each of `paths` that holds a non-blank string, in the order given:
    /// members kept as alert fields under their own names (`.fields(e.strs(&["startsAt"]))`).
    pub fn strs<'p>(&self, paths: &[&'p str]) -> Vec<(&'p str, &'v str)> {
        paths
            .iter()
            .filter_map(|p| Some((*p, self.str(p)?)))
            .collect()
    }

    /// [`ptr_pairs`] at `path`.
    pub fn pairs(&self, path: &str) -> Vec<(String, String)> {
        ptr_pairs(self.root, &self.pointer_to(path))
    }

    /// [`ptr_pairs`] at `path`, each name prefixed with `<prefix>.` (`annotations.summary`), to
    /// keep an object's members apart from same-named fields.
    pub fn prefixed_pairs(&self, path: &str, prefix: &str) -> Vec<(String, String)> {
        let mut pairs = self.pairs(path);
        for (name, _) in &mut pairs {
            name.insert_str(0, &format!("{prefix}."));
        }
        pairs
    }

    /// [`req_str`] at `path`.
    pub fn req_str(&self, path: &str) -> Result<&'v str, AddonError> {
        req_str(self.root, &self.pointer_to(path))
    }

    /// [`req_text`] at `path`.
    pub fn req_text(&self, path: &str) -> Result<String, AddonError> {
        req_text(self.root, &self.pointer_to(path))
    }

    /// [`req_items`] at `path`.
    pub fn req_items(&self, path: &str) -> Result<Vec<Node<'v>>, AddonError> {
        req_items(self.root, &self.pointer_to(path))
    }
}

fn scalar_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => {
            let s = s.trim();
            (!s.is_empty()).then(|| s.to_owned())
        }
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Null | Value::Array(_) | Value::Object(_) => None,
    }
}

fn missing(v: &Value, pointer: &str, wanted: &str) -> AddonError {
    let found = match v.pointer(pointer) {
        None => return AddonError::invalid_input(format!("missing {wanted} at {pointer}")),
        Some(Value::Null) => "null",
        Some(Value::Bool(_)) => "a boolean",
        Some(Value::Number(_)) => "a number",
        Some(Value::String(_)) => "an empty string",
        Some(Value::Array(_)) => "an array",
        Some(Value::Object(_)) => "an object",
    };
    AddonError::invalid_input(format!("expected {wanted} at {pointer}, found {found}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;
    use serde_json::json;

    fn doc() -> Value {
        json!({
            "labels": {"alertname": "HighCpu", "instance": " 10.0.0.1:9100 ", "empty": "", "n": 3},
            "alerts": [{"id": 7}],
            "blank": "  ",
            "flag": true,
            "nested": {"a": [1, 2], "b": null}
        })
    }

    #[test]
    fn optional_lookups() {
        let v = doc();
        assert_eq!(ptr_str(&v, "/labels/alertname"), Some("HighCpu"));
        assert_eq!(ptr_str(&v, "/labels/instance"), Some("10.0.0.1:9100"));
        assert_eq!(ptr_str(&v, "/labels/empty"), None);
        assert_eq!(ptr_str(&v, "/blank"), None);
        assert_eq!(ptr_str(&v, "/labels/n"), None);
        assert_eq!(ptr_str(&v, "/nope"), None);
        assert_eq!(ptr_text(&v, "/labels/n").as_deref(), Some("3"));
        assert_eq!(ptr_text(&v, "/flag").as_deref(), Some("true"));
        assert_eq!(ptr_text(&v, "/alerts/0/id").as_deref(), Some("7"));
        assert_eq!(ptr_array(&v, "/alerts").map(<[Value]>::len), Some(1));
        assert!(ptr_object(&v, "/labels").is_some());
        assert!(ptr_object(&v, "/alerts").is_none());
    }

    #[test]
    fn pairs_are_sorted_and_skip_blanks() {
        let v = doc();
        assert_eq!(
            ptr_pairs(&v, "/labels"),
            vec![
                ("alertname".to_owned(), "HighCpu".to_owned()),
                ("instance".to_owned(), "10.0.0.1:9100".to_owned()),
                ("n".to_owned(), "3".to_owned()),
            ]
        );
        assert_eq!(
            ptr_pairs(&v, "/nested"),
            vec![("a".to_owned(), "[1,2]".to_owned())]
        );
        assert!(ptr_pairs(&v, "/missing").is_empty());
    }

    #[test]
    fn numbers_and_quoted_numbers() {
        let v = json!({"n": 3.5, "q": " 12 ", "t": "twelve", "b": true});
        assert_eq!(ptr_f64(&v, "/n"), Some(3.5));
        assert_eq!(ptr_f64(&v, "/q"), Some(12.0));
        assert_eq!(ptr_f64(&v, "/t"), None);
        assert_eq!(ptr_f64(&v, "/b"), None);
        assert_eq!(ptr_f64(&v, "/missing"), None);
    }

    #[test]
    fn nodes_look_up_relative_paths_and_name_absolute_ones() {
        let v = doc();
        let root = Node::root(&v);
        assert_eq!(root.str("labels/alertname"), Some("HighCpu"));
        assert_eq!(root.str("/labels/alertname"), Some("HighCpu"));
        let labels = root.child("labels");
        assert_eq!(labels.pointer(), "/labels");
        assert_eq!(labels.text("n").as_deref(), Some("3"));
        assert_eq!(labels.value(""), v.pointer("/labels"));
        assert_eq!(
            labels.strs(&["instance", "empty", "n", "alertname"]),
            vec![("instance", "10.0.0.1:9100"), ("alertname", "HighCpu")]
        );
        assert_eq!(
            root.prefixed_pairs("nested", "nested"),
            vec![("nested.a".to_owned(), "[1,2]".to_owned())]
        );
        let items = root.req_items("alerts").unwrap();
        assert_eq!(items.len(), 1);
        assert_eq!(items[0].pointer(), "/alerts/0");
        assert_eq!(items[0].req_text("id").unwrap(), "7");
        assert_eq!(items[0].f64("id"), Some(7.0));
        assert_eq!(
            items[0].req_str("name").unwrap_err().message,
            "missing string at /alerts/0/name"
        );
        assert_eq!(
            root.req_items("labels").unwrap_err().message,
            "expected array at /labels, found an object"
        );
    }

    #[test]
    fn required_lookups_name_the_pointer() {
        let v = doc();
        assert_eq!(req_str(&v, "/labels/alertname").unwrap(), "HighCpu");
        let cases = [
            (
                req_str(&v, "/labels/job").unwrap_err(),
                "missing string at /labels/job",
            ),
            (
                req_str(&v, "/labels/n").unwrap_err(),
                "expected string at /labels/n, found a number",
            ),
            (
                req_str(&v, "/labels/empty").unwrap_err(),
                "expected string at /labels/empty, found an empty string",
            ),
            (
                req_array(&v, "/labels").unwrap_err(),
                "expected array at /labels, found an object",
            ),
            (
                req_text(&v, "/nested/b").unwrap_err(),
                "expected string or number at /nested/b, found null",
            ),
        ];
        for (err, message) in cases {
            assert_eq!(err.kind, ErrorKind::InvalidInput);
            assert_eq!(err.message, message);
        }
    }
}
