//! Evaluating values against one item: paths, templates, filters and choices. A value is
//! `Option<Cow<Value>>`: `None` is missing (JSON null reads as missing too), and what is read
//! from the event is borrowed rather than copied, since rules mostly pass values along.

use std::borrow::Cow;

use serde_json::Value;

use crate::compile::{Map, ValueSpec};
use crate::condition;
use crate::template::{
    Alternative, Arc, Expr, Filter, Operand, Part, Path, PathKind, Seg, Template, Var,
};
use crate::text::{escape_pointer, host_part, time_millis, to_number, to_text, truncate};
use crate::{EventError, EventErrorKind};

pub(crate) type Val<'a> = Option<Cow<'a, Value>>;

/// Where a value is computed: the event, the current item and the rule's variables.
pub(crate) struct Scope<'a> {
    pub maps: &'a [Map],
    pub event: &'a Value,
    pub item: &'a Value,
    /// The item's JSON pointer in the event; `None` for a `match` item, which is not in it.
    pub pointer: Option<String>,
    pub index: Option<usize>,
    pub key: Option<&'a str>,
    /// The `let`s by slot, filled in dependency order.
    pub vars: Vec<Val<'a>>,
}

/// Present for `??`, `prefix` and `suffix`: there, not null and not empty text.
fn present(v: &Val<'_>) -> bool {
    v.as_deref().is_some_and(nonempty)
}

fn nonempty(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::String(s) => !s.is_empty(),
        _ => true,
    }
}

fn text_value(s: String) -> Val<'static> {
    Some(Cow::Owned(Value::String(s)))
}

impl<'a> Scope<'a> {
    /// The scope of the event itself, before any `for_each` or `match`.
    pub fn event(maps: &'a [Map], event: &'a Value, lets: usize) -> Scope<'a> {
        Scope {
            maps,
            event,
            item: event,
            pointer: Some(String::new()),
            index: None,
            key: None,
            vars: vec![None; lets],
        }
    }

    pub fn value(&self, spec: &'a ValueSpec) -> Result<Val<'a>, EventError> {
        match spec {
            ValueSpec::Template(t) => self.template(t),
            ValueSpec::Const(v) => Ok(Some(Cow::Borrowed(v))),
            ValueSpec::Missing => Ok(None),
            ValueSpec::Choice(choices) => {
                for choice in choices {
                    let holds = match &choice.when {
                        Some(c) => condition::holds(c, self)?,
                        None => true,
                    };
                    if holds {
                        return self.value(&choice.value);
                    }
                }
                Ok(None)
            }
        }
    }

    /// A value as text; `None` when it is missing.
    pub fn text(&self, spec: &'a ValueSpec) -> Result<Option<String>, EventError> {
        Ok(self.value(spec)?.map(|v| to_text(&v).into_owned()))
    }

    pub fn template(&self, template: &'a Template) -> Result<Val<'a>, EventError> {
        match template {
            Template::Single(expr) => self.expr(expr),
            Template::Mixed(parts) => {
                let mut out = String::new();
                for part in parts {
                    match part {
                        Part::Text(t) => out.push_str(t),
                        Part::Expr(e) => {
                            if let Some(v) = self.expr(e)? {
                                out.push_str(&to_text(&v));
                            }
                        }
                    }
                }
                Ok(text_value(out))
            }
        }
    }

    /// The first alternative that is present; when none is, what the last one gave (so that
    /// `{a ?? ''}` is empty text rather than missing).
    fn expr(&self, expr: &'a Expr) -> Result<Val<'a>, EventError> {
        let mut last = None;
        for alternative in &expr.alternatives {
            let v = self.alternative(alternative)?;
            if present(&v) {
                return Ok(v);
            }
            last = v;
        }
        Ok(last)
    }

    fn alternative(&self, alternative: &'a Alternative) -> Result<Val<'a>, EventError> {
        let mut v = match &alternative.operand {
            Operand::Path(p) => self.resolve(p),
            Operand::Literal(s) => Some(Cow::Borrowed(s)),
        };
        for filter in &alternative.filters {
            v = self.filter(filter, v, &alternative.operand)?;
            // Filters that parse (`json`) may give null, which is missing like any other.
            if matches!(v.as_deref(), Some(Value::Null)) {
                v = None;
            }
        }
        Ok(v)
    }
}

impl<'a> Scope<'a> {
    /// What a path reads; `None` when it is absent or null.
    pub fn resolve(&self, path: &Path) -> Val<'a> {
        let v = match &path.kind {
            PathKind::Item(segs) => walk(Cow::Borrowed(self.item), segs),
            PathKind::Root(segs) => walk(Cow::Borrowed(self.event), segs),
            PathKind::Var(var, segs) => walk(self.var(*var)?, segs),
            PathKind::Oid { arcs, index } => self.oid(arcs, *index),
        };
        v.filter(|v| !v.is_null())
    }

    fn var(&self, var: Var) -> Val<'a> {
        match var {
            Var::Let(slot) => self.vars.get(slot).cloned().flatten(),
            Var::Index => self.index.map(|i| Cow::Owned(Value::from(i))),
            Var::Key => self.key.map(|k| Cow::Owned(Value::String(k.to_owned()))),
            Var::Pointer => self
                .pointer
                .as_deref()
                .map(|p| Cow::Owned(Value::String(self.shown_pointer(p)))),
        }
    }

    /// The first varbind at or under the OID: its value, or the rest of its OID (the table
    /// index). The varbinds are the item's when it has them (a fetched SNMP result), else the
    /// event's (a trap). Prefixes match whole arcs: `1.3.6.1.2.1.2.2.1.1` is a prefix of
    /// `1.3.6.1.2.1.2.2.1.1.3`, not of `1.3.6.1.2.1.2.2.1.10.3`.
    fn oid(&self, arcs: &[Arc], index: bool) -> Val<'a> {
        let mut prefix = String::new();
        for arc in arcs {
            if !prefix.is_empty() {
                prefix.push('.');
            }
            match arc {
                Arc::Number(n) => prefix.push_str(n),
                Arc::Var(var) => {
                    // A variable may stand for several arcs (`3.1`), but only for arcs.
                    let v = self.var(*var)?;
                    let text = to_text(&v);
                    let text = text.trim();
                    let arcs_only = text
                        .split('.')
                        .all(|a| !a.is_empty() && a.bytes().all(|b| b.is_ascii_digit()));
                    if !arcs_only {
                        return None;
                    }
                    prefix.push_str(text);
                }
            }
        }
        let varbinds = match self.item.get("varbinds") {
            Some(Value::Array(list)) => list,
            _ => self.event.get("varbinds")?.as_array()?,
        };
        for vb in varbinds {
            let Some(oid) = vb.get("oid").and_then(Value::as_str) else {
                continue;
            };
            let oid = oid.strip_prefix('.').unwrap_or(oid);
            let rest = match oid.strip_prefix(prefix.as_str()) {
                Some("") => "",
                Some(rest) if rest.starts_with('.') => &rest[1..],
                _ => continue,
            };
            if index {
                return text_value(rest.to_owned());
            }
            return vb
                .get("value")
                .filter(|v| !v.is_null())
                .or_else(|| vb.get("text"))
                .map(Cow::Borrowed);
        }
        None
    }

    fn filter(
        &self,
        filter: &Filter,
        v: Val<'a>,
        operand: &Operand,
    ) -> Result<Val<'a>, EventError> {
        match filter {
            Filter::Required if v.is_none() => {
                return Err(EventError {
                    kind: EventErrorKind::InvalidInput,
                    message: format!(
                        "missing value at {}",
                        self.shown_pointer(&self.pointer_of(operand))
                    ),
                });
            }
            Filter::Default(text) if !present(&v) => return Ok(text_value(text.clone())),
            _ => {}
        }
        let Some(v) = v else {
            return Ok(None);
        };
        Ok(match filter {
            Filter::Host => {
                host_part(&to_text(&v)).map(|h| Cow::Owned(Value::String(h.to_owned())))
            }
            Filter::Lower => text_value(to_text(&v).to_lowercase()),
            Filter::Upper => text_value(to_text(&v).to_uppercase()),
            Filter::Trim => text_value(to_text(&v).trim().to_owned()),
            Filter::Map(i) => self
                .maps
                .get(*i)
                .and_then(|map| map.get(&to_text(&v)))
                .map(Cow::Borrowed),
            Filter::Truncate(n) => text_value(truncate(&to_text(&v), *n)),
            Filter::Prefix(p) if nonempty(&v) => text_value(format!("{p}{}", to_text(&v))),
            Filter::Suffix(s) if nonempty(&v) => text_value(format!("{}{s}", to_text(&v))),
            Filter::Number => to_number(&v).map(|n| Cow::Owned(Value::Number(n))),
            Filter::Text if v.is_string() => Some(v),
            Filter::Text => text_value(to_text(&v).into_owned()),
            // Only text is parsed: anything else already is JSON.
            Filter::Json => match &*v {
                Value::String(s) => serde_json::from_str(s).ok().map(Cow::Owned),
                _ => Some(v),
            },
            Filter::Time => time_millis(&v).map(|ms| Cow::Owned(Value::from(ms))),
            Filter::Prefix(_) | Filter::Suffix(_) | Filter::Default(_) | Filter::Required => {
                Some(v)
            }
        })
    }

    /// Where a missing value was looked for, for `required`: the JSON pointer in the event
    /// when the path has one, else the path as written.
    fn pointer_of(&self, operand: &Operand) -> String {
        match operand {
            Operand::Path(p) => self.pointer_of_path(p),
            Operand::Literal(v) => format!("'{}'", to_text(v)),
        }
    }

    /// A pointer as an operator or a sender reads it: for a webhook, a place in the body
    /// (`/alerts/1`, what the sender sent and what compiled addons name) rather than in the
    /// event document (`/body/alerts/1`); unchanged for other events.
    pub fn shown_pointer(&self, pointer: &str) -> String {
        let in_body = pointer
            .strip_prefix("/body")
            .filter(|rest| rest.is_empty() || rest.starts_with('/'));
        match in_body {
            Some(rest) if self.event.get("kind").and_then(Value::as_str) == Some("webhook") => {
                rest.to_owned()
            }
            _ => pointer.to_owned(),
        }
    }

    pub fn pointer_of_path(&self, path: &Path) -> String {
        match (&path.kind, &self.pointer) {
            (PathKind::Item(segs), Some(base)) => join(base, segs),
            (PathKind::Root(segs), _) => join("", segs),
            _ => path.text.clone(),
        }
    }
}

/// A pointer extended by keys.
pub(crate) fn join(base: &str, segs: &[Seg]) -> String {
    let mut out = base.to_owned();
    for seg in segs {
        out.push('/');
        out.push_str(&escape_pointer(&seg.key));
    }
    out
}

fn walk<'a>(start: Cow<'a, Value>, segs: &[Seg]) -> Val<'a> {
    match start {
        Cow::Borrowed(mut v) => {
            for seg in segs {
                v = step(v, seg)?;
            }
            Some(Cow::Borrowed(v))
        }
        Cow::Owned(v) if segs.is_empty() => Some(Cow::Owned(v)),
        Cow::Owned(v) => {
            let mut at = &v;
            for seg in segs {
                at = step(at, seg)?;
            }
            Some(Cow::Owned(at.clone()))
        }
    }
}

fn step<'v>(v: &'v Value, seg: &Seg) -> Option<&'v Value> {
    match v {
        Value::Object(map) => map.get(&seg.key),
        Value::Array(list) => list.get(seg.index?),
        _ => None,
    }
}
