//! `match` (docs/rules.md, "Rules"): a regular expression or a grok pattern run over a value,
//! each match an item made of its named captures. Compiling them, the section's own grok
//! patterns, and the matching itself.

use serde_json::{Map as JsonMap, Value};

use crate::compile::{Compiler, RuleNames, boolean, err, object, string, template_at};
use crate::template::Template;
use crate::{REGEX_SIZE_LIMIT, RulesError};

#[derive(Debug)]
pub(crate) struct MatchSpec {
    pub value: Template,
    pub pattern: Pattern,
    pub lines: bool,
}

#[derive(Debug)]
pub(crate) enum Pattern {
    Regex(regex::Regex),
    Grok(grok::Pattern),
}

/// The standard grok patterns and the section's own, each checked on its own so that a broken
/// one is named where it is defined even when no rule uses it.
pub(crate) fn grok_library(extra: Option<&Value>) -> Result<grok::Grok, RulesError> {
    let mut library = grok::Grok::with_default_patterns();
    let Some(extra) = extra else {
        return Ok(library);
    };
    let extra = object(extra, "parse.grok_patterns", &[])?;
    for (name, definition) in extra {
        let path = format!("parse.grok_patterns.{name}");
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            return Err(err(
                path,
                "a grok pattern's name is letters, digits and `_`",
            ));
        }
        library.add_pattern(name.as_str(), string(definition, &path)?);
    }
    for name in extra.keys() {
        library
            .compile(&format!("%{{{name}}}"), true)
            .map_err(|e| err(format!("parse.grok_patterns.{name}"), grok_message(&e)))?;
    }
    Ok(library)
}

impl Compiler<'_> {
    pub(crate) fn match_spec(
        &self,
        v: &Value,
        path: &str,
        names: &mut RuleNames,
    ) -> Result<MatchSpec, RulesError> {
        let m = object(v, path, &["value", "regex", "grok", "lines"])?;
        let Some(value) = m.get("value") else {
            return Err(err(path, "missing `value`: the template to match"));
        };
        let value = template_at(value, &format!("{path}.value"), names)?;
        let pattern = match (m.get("regex"), m.get("grok")) {
            (Some(r), None) => {
                let at = format!("{path}.regex");
                Pattern::Regex(regex(string(r, &at)?, &at)?)
            }
            (None, Some(g)) => {
                let at = format!("{path}.grok");
                let pattern = self
                    .grok
                    .compile(string(g, &at)?, true)
                    .map_err(|e| err(&at, grok_message(&e)))?;
                Pattern::Grok(pattern)
            }
            (Some(_), Some(_)) => return Err(err(path, "takes `regex` or `grok`, not both")),
            (None, None) => return Err(err(path, "needs `regex` or `grok`")),
        };
        let lines = match m.get("lines") {
            Some(v) => boolean(v, &format!("{path}.lines"))?,
            None => false,
        };
        Ok(MatchSpec {
            value,
            pattern,
            lines,
        })
    }
}

pub(crate) fn regex(pattern: &str, path: &str) -> Result<regex::Regex, RulesError> {
    regex::RegexBuilder::new(pattern)
        .size_limit(REGEX_SIZE_LIMIT)
        .build()
        .map_err(|e| err(path, regex_message(&e)))
}

fn regex_message(e: &regex::Error) -> String {
    match e {
        // The library's message spans lines, with a caret under the pattern; in a message that
        // already names the place, its last line says what is wrong.
        regex::Error::Syntax(text) => {
            let detail = text
                .lines()
                .rev()
                .find_map(|l| l.strip_prefix("error: "))
                .unwrap_or(text);
            format!("regex parse error: {detail}")
        }
        regex::Error::CompiledTooBig(limit) => {
            format!("regex too big: it compiles to more than {limit} bytes")
        }
        other => other.to_string(),
    }
}

fn grok_message(e: &grok::Error) -> String {
    match e {
        grok::Error::DefinitionNotFound(name) => format!(
            "grok pattern `%{{{name}}}` is not defined (neither a standard pattern nor one of parse.grok_patterns)"
        ),
        grok::Error::RecursionTooDeep => {
            "grok patterns include each other too deeply (does one include itself?)".to_owned()
        }
        grok::Error::CompiledPatternIsEmpty(_) => "the grok pattern is empty".to_owned(),
        // The engine's text carries the whole expanded regex on later lines.
        grok::Error::RegexCompilationFailed(detail) => {
            let first = detail.lines().next().unwrap_or_default();
            let first = first
                .strip_prefix("Regex compilation failed: ")
                .unwrap_or(first);
            format!(
                "the grok pattern is not a valid regular expression: {}",
                first.trim_end_matches(':')
            )
        }
        other => format!("grok pattern: {other}"),
    }
}

/// Every match of the pattern in the text (or in each line), as an object of its named
/// captures. A regex finds every match; grok finds the first in the text or in each line, the
/// only kind of search the `grok` crate offers.
pub(crate) fn matches(spec: &MatchSpec, text: &str) -> Vec<Value> {
    let inputs: Vec<&str> = if spec.lines {
        text.lines().collect()
    } else {
        vec![text]
    };
    let mut items = Vec::new();
    for input in inputs {
        match &spec.pattern {
            Pattern::Regex(re) => {
                for captures in re.captures_iter(input) {
                    let item: JsonMap<String, Value> = re
                        .capture_names()
                        .flatten()
                        .filter_map(|name| {
                            let text = captures.name(name)?.as_str();
                            Some((name.to_owned(), Value::String(text.to_owned())))
                        })
                        .collect();
                    items.push(Value::Object(item));
                }
            }
            Pattern::Grok(pattern) => {
                if let Some(found) = pattern.match_against(input) {
                    let item: JsonMap<String, Value> = found
                        .iter()
                        .map(|(name, text)| (name.to_owned(), Value::String(text.to_owned())))
                        .collect();
                    items.push(Value::Object(item));
                }
            }
        }
    }
    items
}
