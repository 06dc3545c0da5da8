//! Compiling a `parse` section: the JSON in, checked rules out. Every mistake is found here and
//! named by its place (`parse.rules[2].when.matches`), so that evaluation never meets one and
//! an author learns of it when the bundle is installed or tested, not when an event comes.

use std::collections::{BTreeSet, HashMap};

use serde_json::{Map as JsonMap, Value};

use crate::alert::AlertSpec;
use crate::condition::Condition;
use crate::pattern::{MatchSpec, grok_library};
use crate::template::{self, Names, Path, PathKind, Template, Var};
use crate::{EventErrorKind, MAX_DEPTH, MAX_RULES, RulesError};

#[derive(Debug)]
pub(crate) struct Compiled {
    pub rules: Vec<Rule>,
    pub maps: Vec<Map>,
}

/// One of `parse.maps`: keys lowercased, since they are compared ignoring case.
#[derive(Debug)]
pub(crate) struct Map {
    entries: HashMap<String, Value>,
    default: Option<Value>,
}

impl Map {
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.entries
            .get(&key.to_lowercase())
            .or(self.default.as_ref())
    }
}

/// Wherever a rule takes a value.
#[derive(Debug)]
pub(crate) enum ValueSpec {
    Template(Template),
    /// A number, `true` or `false`.
    Const(Value),
    /// `null`.
    Missing,
    Choice(Vec<Choice>),
}

#[derive(Debug)]
pub(crate) struct Choice {
    pub when: Option<Condition>,
    pub value: ValueSpec,
}

#[derive(Debug)]
pub(crate) struct Rule {
    /// `parse.rules[2] (`alerts`)`, for messages about the event.
    pub label: String,
    pub source: Source,
    /// The `let`s by slot (their keys' order), computed in `let_order`.
    pub lets: Vec<ValueSpec>,
    pub let_order: Vec<usize>,
    pub when: Option<Condition>,
    pub outcome: Outcome,
    pub last: bool,
}

/// Where a rule's items come from.
#[derive(Debug)]
pub(crate) enum Source {
    Event,
    ForEach { path: Path, required: Required },
    Match(MatchSpec),
}

/// What `for_each` with `required` insists on finding at its path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Required {
    /// Nothing: an absent path, or one that is neither an array nor an object, gives no items.
    No,
    /// `true`: an array or an object.
    Any,
    /// `"array"`: an array (an object is an error, not a list of entries).
    Array,
    /// `"object"`: an object.
    Object,
}

#[derive(Debug)]
pub(crate) enum Outcome {
    Alert(Box<AlertSpec>),
    Error {
        kind: EventErrorKind,
        message: Template,
    },
}

pub(crate) fn err(path: impl Into<String>, message: impl Into<String>) -> RulesError {
    RulesError {
        path: path.into(),
        message: message.into(),
    }
}

pub(crate) fn compile(parse: &Value) -> Result<Compiled, RulesError> {
    let section = object(parse, "parse", &["maps", "grok_patterns", "rules"])?;
    let (map_names, maps) = match section.get("maps") {
        Some(v) => compile_maps(v)?,
        None => Default::default(),
    };
    let grok = grok_library(section.get("grok_patterns"))?;
    let Some(rules) = section.get("rules") else {
        return Err(err("parse", "missing `rules`: the list of rules"));
    };
    let Value::Array(rules) = rules else {
        return Err(err(
            "parse.rules",
            format!("expected a list, found {}", kind(rules)),
        ));
    };
    if rules.len() > MAX_RULES {
        return Err(err(
            "parse.rules",
            format!("{} rules; at most {MAX_RULES} are allowed", rules.len()),
        ));
    }
    let compiler = Compiler {
        map_names: &map_names,
        grok: &grok,
    };
    let rules = rules
        .iter()
        .enumerate()
        .map(|(i, r)| compiler.rule(r, &format!("parse.rules[{i}]")))
        .collect::<Result<_, _>>()?;
    Ok(Compiled { rules, maps })
}

fn compile_maps(v: &Value) -> Result<(Vec<String>, Vec<Map>), RulesError> {
    let mut names = Vec::new();
    let mut maps = Vec::new();
    for (name, entries) in object(v, "parse.maps", &[])? {
        let path = format!("parse.maps.{name}");
        let mut map = Map {
            entries: HashMap::new(),
            default: None,
        };
        for (key, value) in object(entries, &path, &[])? {
            if value.is_array() || value.is_object() {
                return Err(err(
                    format!("{path}.{key}"),
                    format!(
                        "expected text, a number, true, false or null, found {}",
                        kind(value)
                    ),
                ));
            }
            if key == "*" {
                map.default = Some(value.clone());
            } else if map
                .entries
                .insert(key.to_lowercase(), value.clone())
                .is_some()
            {
                return Err(err(
                    format!("{path}.{key}"),
                    "another key is the same ignoring case (keys are compared ignoring case)",
                ));
            }
        }
        names.push(name.clone());
        maps.push(map);
    }
    Ok((names, maps))
}

/// What every rule is compiled against: the section's maps and grok library.
pub(crate) struct Compiler<'c> {
    map_names: &'c [String],
    pub grok: &'c grok::Grok,
}

/// The names a rule's templates may use: its `let`s (recording which are read, for their
/// order), the built-in variables and the maps.
pub(crate) struct RuleNames<'c> {
    maps: &'c [String],
    lets: &'c [String],
    used: BTreeSet<usize>,
    /// `match` runs before the `let`s, so its template cannot read them.
    lets_allowed: bool,
}

impl Names for RuleNames<'_> {
    fn var(&mut self, name: &str) -> Result<Var, String> {
        match name {
            "index" => return Ok(Var::Index),
            "key" => return Ok(Var::Key),
            "pointer" => return Ok(Var::Pointer),
            _ => {}
        }
        match self.lets.iter().position(|l| l == name) {
            Some(slot) if self.lets_allowed => {
                self.used.insert(slot);
                Ok(Var::Let(slot))
            }
            Some(_) => Err(format!(
                "`@{name}` cannot be read here: `let` is computed for each item `match` makes"
            )),
            None => Err(format!(
                "unknown variable `@{name}`: no `let` of this rule defines it"
            )),
        }
    }

    fn map(&self, name: &str) -> Result<usize, String> {
        self.maps.iter().position(|m| m == name).ok_or_else(|| {
            if self.maps.is_empty() {
                format!("unknown map `{name}`: parse.maps defines none")
            } else {
                format!(
                    "unknown map `{name}` (parse.maps has {})",
                    self.maps.join(", ")
                )
            }
        })
    }
}

const RULE_KEYS: &[&str] = &[
    "name", "when", "for_each", "match", "required", "let", "alert", "error", "last",
];

impl Compiler<'_> {
    fn rule(&self, v: &Value, path: &str) -> Result<Rule, RulesError> {
        let r = object(v, path, RULE_KEYS)?;
        let label = match r.get("name") {
            Some(name) => format!("{path} (`{}`)", string(name, &format!("{path}.name"))?),
            None => path.to_owned(),
        };
        let no_lets = JsonMap::new();
        let lets = match r.get("let") {
            Some(v) => object(v, &format!("{path}.let"), &[])?,
            None => &no_lets,
        };
        let let_names: Vec<String> = lets.keys().cloned().collect();
        for name in &let_names {
            let valid = name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
                && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
            if !valid {
                return Err(err(
                    format!("{path}.let.{name}"),
                    "a variable's name is a letter or `_`, then letters, digits and `_`",
                ));
            }
            if matches!(name.as_str(), "index" | "key" | "pointer") {
                return Err(err(
                    format!("{path}.let.{name}"),
                    format!("`@{name}` is a built-in variable"),
                ));
            }
        }
        let mut names = RuleNames {
            maps: self.map_names,
            lets: &let_names,
            used: BTreeSet::new(),
            lets_allowed: false,
        };

        let source = match (r.get("for_each"), r.get("match")) {
            (Some(_), Some(_)) => {
                return Err(err(
                    format!("{path}.match"),
                    "`for_each` and `match` cannot be combined: a rule's items come from one of them",
                ));
            }
            (Some(p), None) => {
                let at = format!("{path}.for_each");
                let p =
                    template::parse_path(string(p, &at)?, &mut names).map_err(|e| err(&at, e))?;
                if !matches!(p.kind, PathKind::Item(_) | PathKind::Root(_)) {
                    return Err(err(
                        at,
                        "takes a path into the event, not a variable or an OID",
                    ));
                }
                let required = match r.get("required") {
                    None | Some(Value::Bool(false)) => Required::No,
                    Some(Value::Bool(true)) => Required::Any,
                    Some(Value::String(s)) if s == "array" => Required::Array,
                    Some(Value::String(s)) if s == "object" => Required::Object,
                    Some(other) => {
                        return Err(err(
                            format!("{path}.required"),
                            format!(
                                "expected true, false, \"array\" or \"object\", found {}",
                                kind(other)
                            ),
                        ));
                    }
                };
                Source::ForEach { path: p, required }
            }
            (None, Some(m)) => {
                Source::Match(self.match_spec(m, &format!("{path}.match"), &mut names)?)
            }
            (None, None) => Source::Event,
        };
        if r.contains_key("required") && !matches!(source, Source::ForEach { .. }) {
            return Err(err(
                format!("{path}.required"),
                "applies only with `for_each`",
            ));
        }

        names.lets_allowed = true;
        let mut specs = Vec::new();
        let mut deps = Vec::new();
        for (name, v) in lets {
            names.used.clear();
            specs.push(self.value(v, &format!("{path}.let.{name}"), 0, &mut names)?);
            deps.push(std::mem::take(&mut names.used));
        }
        let let_order = let_order(&let_names, &deps, path)?;

        let when = match r.get("when") {
            Some(c) => Some(self.condition(c, &format!("{path}.when"), 0, &mut names)?),
            None => None,
        };
        let outcome = match (r.get("alert"), r.get("error")) {
            (Some(a), None) => Outcome::Alert(Box::new(self.alert(
                a,
                &format!("{path}.alert"),
                &mut names,
            )?)),
            (None, Some(e)) => self.error(e, &format!("{path}.error"), &mut names)?,
            (Some(_), Some(_)) => {
                return Err(err(path, "a rule has `alert` or `error`, not both"));
            }
            (None, None) => return Err(err(path, "a rule needs `alert` or `error`")),
        };
        let last = match r.get("last") {
            Some(v) => boolean(v, &format!("{path}.last"))?,
            None => false,
        };
        Ok(Rule {
            label,
            source,
            lets: specs,
            let_order,
            when,
            outcome,
            last,
        })
    }

    fn error(&self, v: &Value, path: &str, names: &mut RuleNames) -> Result<Outcome, RulesError> {
        let e = object(v, path, &["kind", "message"])?;
        let kind = match e
            .get("kind")
            .map(|k| string(k, &format!("{path}.kind")))
            .transpose()?
        {
            Some("invalid-input") => EventErrorKind::InvalidInput,
            Some("unsupported") => EventErrorKind::Unsupported,
            Some(other) => {
                return Err(err(
                    format!("{path}.kind"),
                    format!("expected `invalid-input` or `unsupported`, found `{other}`"),
                ));
            }
            None => {
                return Err(err(
                    path,
                    "missing `kind`: `invalid-input` or `unsupported`",
                ));
            }
        };
        let Some(message) = e.get("message") else {
            return Err(err(path, "missing `message`"));
        };
        let message = template_at(message, &format!("{path}.message"), names)?;
        Ok(Outcome::Error { kind, message })
    }

    pub(crate) fn value(
        &self,
        v: &Value,
        path: &str,
        depth: usize,
        names: &mut RuleNames,
    ) -> Result<ValueSpec, RulesError> {
        if depth > MAX_DEPTH {
            return Err(err(path, format!("nested deeper than {MAX_DEPTH} levels")));
        }
        Ok(match v {
            Value::String(_) => ValueSpec::Template(template_at(v, path, names)?),
            Value::Number(_) | Value::Bool(_) => ValueSpec::Const(v.clone()),
            Value::Null => ValueSpec::Missing,
            Value::Array(list) => {
                let mut choices = Vec::with_capacity(list.len());
                for (i, entry) in list.iter().enumerate() {
                    let at = format!("{path}[{i}]");
                    let c = object(entry, &at, &["when", "value"])?;
                    let when = match c.get("when") {
                        Some(w) => {
                            Some(self.condition(w, &format!("{at}.when"), depth + 1, names)?)
                        }
                        None => None,
                    };
                    let Some(value) = c.get("value") else {
                        return Err(err(at, "missing `value`"));
                    };
                    let value = self.value(value, &format!("{at}.value"), depth + 1, names)?;
                    choices.push(Choice { when, value });
                }
                ValueSpec::Choice(choices)
            }
            Value::Object(_) => {
                return Err(err(
                    path,
                    "expected a template, a number, true, false, null or a list of choices, found an object",
                ));
            }
        })
    }
}

/// The order to compute `let`s in. JSON objects do not keep their keys' order here (serde_json
/// without `preserve_order`, which would change every JSON object the runtime writes), so a
/// `let` is computed after the `let`s it reads, whatever order they were written in; lets
/// that read each other are a mistake.
fn let_order(
    names: &[String],
    deps: &[BTreeSet<usize>],
    path: &str,
) -> Result<Vec<usize>, RulesError> {
    // Kahn's algorithm; the lowest ready slot goes first, so that the order is the same on
    // every compile.
    let mut readers: Vec<Vec<usize>> = vec![Vec::new(); names.len()];
    for (reader, read) in deps.iter().enumerate() {
        for &slot in read {
            readers[slot].push(reader);
        }
    }
    let mut waiting: Vec<usize> = deps.iter().map(BTreeSet::len).collect();
    let mut ready: BTreeSet<usize> = (0..names.len()).filter(|&i| waiting[i] == 0).collect();
    let mut order = Vec::with_capacity(names.len());
    while let Some(next) = ready.pop_first() {
        order.push(next);
        for &reader in &readers[next] {
            waiting[reader] -= 1;
            if waiting[reader] == 0 {
                ready.insert(reader);
            }
        }
    }
    if order.len() == names.len() {
        return Ok(order);
    }
    let stuck: Vec<&String> = (0..names.len())
        .filter(|&i| waiting[i] > 0)
        .map(|i| &names[i])
        .collect();
    let listed: Vec<String> = stuck.iter().map(|n| format!("@{n}")).collect();
    Err(err(
        format!("{path}.let.{}", stuck[0]),
        format!(
            "these variables read each other, so none can be computed first: {}",
            listed.join(", ")
        ),
    ))
}

/// A template at `path`: it must be text.
pub(crate) fn template_at(
    v: &Value,
    path: &str,
    names: &mut dyn Names,
) -> Result<Template, RulesError> {
    let text = string(v, path)?;
    template::parse_template(text, names).map_err(|e| err(path, e))
}

pub(crate) fn object<'v>(
    v: &'v Value,
    path: &str,
    keys: &[&str],
) -> Result<&'v JsonMap<String, Value>, RulesError> {
    let Value::Object(map) = v else {
        return Err(err(path, format!("expected an object, found {}", kind(v))));
    };
    if !keys.is_empty()
        && let Some(unknown) = map.keys().find(|k| !keys.contains(&k.as_str()))
    {
        return Err(err(
            format!("{path}.{unknown}"),
            format!(
                "unknown key `{unknown}` (expected one of: {})",
                keys.join(", ")
            ),
        ));
    }
    Ok(map)
}

pub(crate) fn string<'v>(v: &'v Value, path: &str) -> Result<&'v str, RulesError> {
    v.as_str()
        .ok_or_else(|| err(path, format!("expected text, found {}", kind(v))))
}

pub(crate) fn boolean(v: &Value, path: &str) -> Result<bool, RulesError> {
    v.as_bool()
        .ok_or_else(|| err(path, format!("expected true or false, found {}", kind(v))))
}

pub(crate) fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "true/false",
        Value::Number(_) => "a number",
        Value::String(_) => "text",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}
