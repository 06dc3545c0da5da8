//! The `alert` of a rule (docs/rules.md, "The alert"): compiling it, and making a
//! [`RuleAlert`] of it for one item, with the device defaults for traps and polls.

use serde_json::Value;

use crate::compile::{Compiler, RuleNames, ValueSpec, err, object, string};
use crate::condition::{self, Condition};
use crate::template::{self, Path};
use crate::text::{self, Device, host_part, parse_ip, time_millis, to_text};
use crate::value::Scope;
use crate::{EventError, RuleAlert, RulesError};

#[derive(Debug)]
pub(crate) struct AlertSpec {
    alert_type: ValueSpec,
    device: Option<ValueSpec>,
    device_ip: Option<ValueSpec>,
    device_name: Option<ValueSpec>,
    title: Option<ValueSpec>,
    message: Option<ValueSpec>,
    severity: Option<ValueSpec>,
    clears: Clears,
    identity: Vec<(String, ValueSpec)>,
    identity_from: Vec<FromObject>,
    fields: Vec<(String, ValueSpec)>,
    fields_from: Vec<FromObject>,
    occurred_at: Option<ValueSpec>,
}

#[derive(Debug)]
enum Clears {
    Always(bool),
    When(Condition),
}

/// `{"object": PATH, "except": [...], "prefix": "..."}`: every key of an object.
#[derive(Debug)]
struct FromObject {
    object: Path,
    except: Vec<String>,
    prefix: String,
}

const ALERT_KEYS: &[&str] = &[
    "type",
    "device",
    "device_ip",
    "device_name",
    "title",
    "message",
    "severity",
    "clears",
    "identity",
    "identity_from",
    "fields",
    "fields_from",
    "occurred_at",
];

impl Compiler<'_> {
    pub(crate) fn alert(
        &self,
        v: &Value,
        path: &str,
        names: &mut RuleNames,
    ) -> Result<AlertSpec, RulesError> {
        let a = object(v, path, ALERT_KEYS)?;
        let mut optional = |key: &str| -> Result<Option<ValueSpec>, RulesError> {
            a.get(key)
                .map(|v| self.value(v, &format!("{path}.{key}"), 0, names))
                .transpose()
        };
        let Some(alert_type) = optional("type")? else {
            return Err(err(path, "the alert needs a `type`"));
        };
        let spec = AlertSpec {
            alert_type,
            device: optional("device")?,
            device_ip: optional("device_ip")?,
            device_name: optional("device_name")?,
            title: optional("title")?,
            message: optional("message")?,
            severity: optional("severity")?,
            occurred_at: optional("occurred_at")?,
            clears: Clears::Always(false),
            identity: Vec::new(),
            identity_from: Vec::new(),
            fields: Vec::new(),
            fields_from: Vec::new(),
        };
        let clears = match a.get("clears") {
            None => Clears::Always(false),
            Some(Value::Bool(b)) => Clears::Always(*b),
            Some(c @ Value::Object(_)) => {
                Clears::When(self.condition(c, &format!("{path}.clears"), 0, names)?)
            }
            Some(_) => {
                return Err(err(
                    format!("{path}.clears"),
                    "expected a condition, true or false",
                ));
            }
        };
        Ok(AlertSpec {
            clears,
            identity: self.pairs(a.get("identity"), &format!("{path}.identity"), names)?,
            identity_from: from_objects(
                a.get("identity_from"),
                &format!("{path}.identity_from"),
                names,
            )?,
            fields: self.pairs(a.get("fields"), &format!("{path}.fields"), names)?,
            fields_from: from_objects(a.get("fields_from"), &format!("{path}.fields_from"), names)?,
            ..spec
        })
    }

    fn pairs(
        &self,
        v: Option<&Value>,
        path: &str,
        names: &mut RuleNames,
    ) -> Result<Vec<(String, ValueSpec)>, RulesError> {
        let Some(v) = v else {
            return Ok(Vec::new());
        };
        object(v, path, &[])?
            .iter()
            .map(|(name, v)| {
                Ok((
                    name.clone(),
                    self.value(v, &format!("{path}.{name}"), 0, names)?,
                ))
            })
            .collect()
    }
}

/// One object or a list of them.
fn from_objects(
    v: Option<&Value>,
    path: &str,
    names: &mut RuleNames,
) -> Result<Vec<FromObject>, RulesError> {
    match v {
        None => Ok(Vec::new()),
        Some(Value::Array(list)) => list
            .iter()
            .enumerate()
            .map(|(i, v)| from_object(v, &format!("{path}[{i}]"), names))
            .collect(),
        Some(v) => Ok(vec![from_object(v, path, names)?]),
    }
}

fn from_object(v: &Value, path: &str, names: &mut RuleNames) -> Result<FromObject, RulesError> {
    let o = object(v, path, &["object", "except", "prefix"])?;
    let Some(object) = o.get("object") else {
        return Err(err(path, "missing `object`: the path to the object"));
    };
    let at = format!("{path}.object");
    let object = template::parse_path(string(object, &at)?, names).map_err(|e| err(at, e))?;
    let except = match o.get("except") {
        None => Vec::new(),
        Some(Value::Array(list)) => list
            .iter()
            .enumerate()
            .map(|(i, k)| string(k, &format!("{path}.except[{i}]")).map(str::to_owned))
            .collect::<Result<_, _>>()?,
        Some(_) => return Err(err(format!("{path}.except"), "expected a list of keys")),
    };
    let prefix = match o.get("prefix") {
        Some(p) => string(p, &format!("{path}.prefix"))?.to_owned(),
        None => String::new(),
    };
    Ok(FromObject {
        object,
        except,
        prefix,
    })
}

impl FromObject {
    /// Whether `key` is left out: named in `except`, or starting with an entry's text before
    /// its closing `*` (`"__*"` leaves out Grafana's internal `__name__`-style keys).
    fn excepts(&self, key: &str) -> bool {
        self.except.iter().any(|e| match e.strip_suffix('*') {
            Some(prefix) => key.starts_with(prefix),
            None => e == key,
        })
    }
}

fn invalid(message: String) -> EventError {
    EventError {
        kind: crate::EventErrorKind::InvalidInput,
        message,
    }
}

impl AlertSpec {
    /// The alert for one item. `label` names the rule in messages about the event.
    pub(crate) fn build<'a>(
        &'a self,
        scope: &Scope<'a>,
        label: &str,
    ) -> Result<RuleAlert, EventError> {
        let text = |spec: &'a Option<ValueSpec>| -> Result<Option<String>, EventError> {
            match spec {
                Some(spec) => scope.text(spec),
                None => Ok(None),
            }
        };
        let alert_type = scope.text(&self.alert_type)?.unwrap_or_default();
        if alert_type.trim().is_empty() {
            return Err(invalid(format!("{label}: the alert's type is empty")));
        }

        let (mut device_ip, mut device_name) = (None, None);
        match text(&self.device)?.as_deref().and_then(text::device) {
            Some(Device::Ip(ip)) => device_ip = Some(ip),
            Some(Device::Name(name)) => device_name = Some(name),
            None => {}
        }
        if let Some(ip) = text(&self.device_ip)?.filter(|t| !t.trim().is_empty()) {
            let Some(ip) = parse_ip(&ip) else {
                return Err(invalid(format!(
                    "{label}: device_ip `{ip}` is not an IP address"
                )));
            };
            device_ip = Some(ip);
        }
        if let Some(name) = text(&self.device_name)? {
            let name = name.trim();
            if !name.is_empty() {
                device_name = Some(name.to_owned());
            }
        }
        if device_ip.is_none() && device_name.is_none() {
            (device_ip, device_name) = default_device(scope.event).ok_or_else(|| {
                invalid(format!(
                    "{label}: the alert has no device: set `device`, `device_ip` or `device_name` \
                     (only a trap or a poll has a device of its own)"
                ))
            })?;
        }

        let title = text(&self.title)?
            .filter(|t| !t.is_empty())
            .unwrap_or_else(|| alert_type.clone());
        let clears = match &self.clears {
            Clears::Always(b) => *b,
            Clears::When(c) => condition::holds(c, scope)?,
        };
        let occurred_at = match &self.occurred_at {
            Some(spec) => scope.value(spec)?.and_then(|v| time_millis(&v)),
            None => None,
        };
        Ok(RuleAlert {
            title,
            message: text(&self.message)?.unwrap_or_default(),
            severity: text(&self.severity)?
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty()),
            clears,
            identity: pairs(scope, &self.identity_from, &self.identity)?,
            fields: pairs(scope, &self.fields_from, &self.fields)?,
            occurred_at,
            alert_type,
            device_ip,
            device_name,
        })
    }
}

/// The `_from` objects' keys, then the named values, which replace a key of the same name;
/// missing and empty values and null keys are left out (as the SDK's `strs` and `field_opt`
/// leave them: a blank field tells an operator nothing).
fn pairs<'a>(
    scope: &Scope<'a>,
    from: &'a [FromObject],
    named: &'a [(String, ValueSpec)],
) -> Result<Vec<(String, String)>, EventError> {
    let mut out: Vec<(String, String)> = Vec::new();
    let mut put = |name: String, value: String| match out.iter_mut().find(|(n, _)| *n == name) {
        Some(existing) => existing.1 = value,
        None => out.push((name, value)),
    };
    for f in from {
        if let Some(Value::Object(map)) = scope.resolve(&f.object).as_deref() {
            for (key, value) in map {
                if value.is_null() || f.excepts(key) {
                    continue;
                }
                let text = to_text(value);
                if !text.is_empty() {
                    put(format!("{}{key}", f.prefix), text.into_owned());
                }
            }
        }
    }
    for (name, spec) in named {
        if let Some(value) = scope.text(spec)?.filter(|v| !v.is_empty()) {
            put(name.clone(), value);
        }
    }
    Ok(out)
}

/// The device of an alert that names none, as the SDK gives it: a trap's agent address; a
/// poll's target, as `Alert::target` sets it (the address's host as `device_ip` when it is an
/// IP address, and the target's name, or else the host, as `device_name`).
fn default_device(event: &Value) -> Option<(Option<String>, Option<String>)> {
    fn text_at(v: Option<&Value>) -> Option<&str> {
        v.and_then(Value::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty())
    }
    match event.get("kind").and_then(Value::as_str) {
        Some("trap") => match text::device(text_at(event.get("agent_address"))?)? {
            Device::Ip(ip) => Some((Some(ip), None)),
            Device::Name(name) => Some((None, Some(name))),
        },
        Some("poll") => {
            let target = event.get("target")?;
            let host = text_at(target.get("address"))
                .and_then(host_part)
                .or_else(|| text_at(target.get("host")));
            let ip = host
                .and_then(|h| h.parse::<std::net::IpAddr>().ok())
                .map(|ip| ip.to_string());
            let name = text_at(target.get("name")).or(host.filter(|_| ip.is_none()));
            (ip.is_some() || name.is_some()).then(|| (ip, name.map(str::to_owned)))
        }
        _ => None,
    }
}
