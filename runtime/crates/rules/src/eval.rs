//! Running compiled rules on one event (docs/rules.md, "Rules"): every rule in order, the items
//! it takes (the event, `for_each` or `match`), for each item its `let`s, then `when`, then the
//! alert or the error.

use serde_json::Value;

use crate::compile::{Compiled, Map, Outcome, Required, Rule, Source, kind};
use crate::pattern::matches;
use crate::text::{escape_pointer, to_text};
use crate::value::Scope;
use crate::{EventError, EventErrorKind, RuleAlert, condition};

fn invalid(message: String) -> EventError {
    EventError {
        kind: EventErrorKind::InvalidInput,
        message,
    }
}

pub(crate) fn evaluate(compiled: &Compiled, event: &Value) -> Result<Vec<RuleAlert>, EventError> {
    if !event.is_object() {
        return Err(invalid(format!(
            "the event is {}, not an object",
            kind(event)
        )));
    }
    let mut alerts = Vec::new();
    for rule in &compiled.rules {
        let applied = run(rule, &compiled.maps, event, &mut alerts)?;
        if applied && rule.last {
            break;
        }
    }
    Ok(alerts)
}

/// Runs one rule on all its items; whether it applied to any.
fn run(
    rule: &Rule,
    maps: &[Map],
    event: &Value,
    out: &mut Vec<RuleAlert>,
) -> Result<bool, EventError> {
    let lets = rule.lets.len();
    let base = Scope::event(maps, event, lets);
    let mut applied = false;
    match &rule.source {
        Source::Event => applied = apply(rule, base, out)?,
        Source::ForEach { path, required } => {
            let target = base.resolve(path);
            let pointer = base.pointer_of_path(path);
            let shown = base.shown_pointer(&pointer);
            let wanted = match required {
                Required::No => None,
                Required::Any => Some("an array or an object"),
                Required::Array => Some("array"),
                Required::Object => Some("object"),
            };
            match (target.as_deref(), required) {
                (None, Required::Object) => {
                    return Err(invalid(format!("missing object at {shown}")));
                }
                (None, Required::Any | Required::Array) => {
                    return Err(invalid(format!("missing array at {shown}")));
                }
                (Some(Value::Object(_)), Required::Array)
                | (Some(Value::Array(_)), Required::Object) => {
                    return Err(invalid(format!(
                        "expected {} at {shown}, found {}",
                        wanted.unwrap_or_default(),
                        kind(target.as_deref().unwrap_or(&Value::Null))
                    )));
                }
                _ => {}
            }
            match target.as_deref() {
                Some(Value::Array(list)) => {
                    for (i, item) in list.iter().enumerate() {
                        let scope = Scope {
                            item,
                            pointer: Some(format!("{pointer}/{i}")),
                            index: Some(i),
                            ..Scope::event(maps, event, lets)
                        };
                        applied |= apply(rule, scope, out)?;
                    }
                }
                Some(Value::Object(entries)) => {
                    for (i, (key, item)) in entries.iter().enumerate() {
                        let scope = Scope {
                            item,
                            pointer: Some(format!("{pointer}/{}", escape_pointer(key))),
                            index: Some(i),
                            key: Some(key),
                            ..Scope::event(maps, event, lets)
                        };
                        applied |= apply(rule, scope, out)?;
                    }
                }
                Some(other) if *required != Required::No => {
                    return Err(invalid(format!(
                        "expected {} at {shown}, found {}",
                        wanted.unwrap_or_default(),
                        kind(other)
                    )));
                }
                _ => {}
            }
        }
        Source::Match(spec) => {
            let Some(value) = base.template(&spec.value)? else {
                return Ok(false);
            };
            // A match item is made of captures, not a place in the event: it has no pointer.
            for (i, item) in matches(spec, &to_text(&value)).iter().enumerate() {
                let scope = Scope {
                    item,
                    pointer: None,
                    index: Some(i),
                    ..Scope::event(maps, event, lets)
                };
                applied |= apply(rule, scope, out)?;
            }
        }
    }
    Ok(applied)
}

/// The rule on one item: whether `when` let it apply.
fn apply<'a>(
    rule: &'a Rule,
    mut scope: Scope<'a>,
    out: &mut Vec<RuleAlert>,
) -> Result<bool, EventError> {
    for &slot in &rule.let_order {
        let Some(spec) = rule.lets.get(slot) else {
            continue;
        };
        let value = scope.value(spec)?;
        if let Some(var) = scope.vars.get_mut(slot) {
            *var = value;
        }
    }
    if let Some(when) = &rule.when
        && !condition::holds(when, &scope)?
    {
        return Ok(false);
    }
    match &rule.outcome {
        Outcome::Alert(spec) => out.push(spec.build(&scope, &rule.label)?),
        Outcome::Error { kind, message } => {
            let message = scope
                .template(message)?
                .map(|v| to_text(&v).into_owned())
                .unwrap_or_default();
            return Err(EventError {
                kind: *kind,
                message,
            });
        }
    }
    Ok(true)
}
