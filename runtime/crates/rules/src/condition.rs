//! Conditions (docs/rules.md, "Conditions"): what `when`, `clears` and choices test.

use regex::Regex;
use serde_json::Value;

use crate::compile::{Compiler, RuleNames, boolean, err, kind, object, string, template_at};
use crate::pattern::regex;
use crate::template::{self, Path, Template};
use crate::text::{numbers_equal, to_number, to_text};
use crate::value::Scope;
use crate::{EventError, MAX_DEPTH, RulesError};

#[derive(Debug)]
pub(crate) enum Condition {
    All(Vec<Condition>),
    Any(Vec<Condition>),
    Not(Box<Condition>),
    /// Every test must hold for the subject's value (one is usual; `gte` with `lt` is a range).
    Test {
        subject: Subject,
        tests: Vec<Test>,
    },
}

#[derive(Debug)]
pub(crate) enum Subject {
    Path(Path),
    Value(Template),
}

#[derive(Debug)]
pub(crate) enum Test {
    Exists(bool),
    /// `equals` is `In` with one value.
    In {
        values: Vec<Value>,
        ignore_case: bool,
    },
    Matches(Regex),
    Compare(Relation, f64),
}

#[derive(Debug, Clone, Copy)]
pub(crate) enum Relation {
    Gt,
    Gte,
    Lt,
    Lte,
}

pub(crate) fn holds<'a>(condition: &'a Condition, scope: &Scope<'a>) -> Result<bool, EventError> {
    Ok(match condition {
        Condition::All(list) => {
            for c in list {
                if !holds(c, scope)? {
                    return Ok(false);
                }
            }
            true
        }
        Condition::Any(list) => {
            for c in list {
                if holds(c, scope)? {
                    return Ok(true);
                }
            }
            false
        }
        Condition::Not(c) => !holds(c, scope)?,
        Condition::Test { subject, tests } => {
            let value = match subject {
                Subject::Path(p) => scope.resolve(p),
                Subject::Value(t) => scope.template(t)?,
            };
            let value = value.as_deref().filter(|v| !v.is_null());
            tests.iter().all(|t| test(t, value))
        }
    })
}

fn test(test: &Test, value: Option<&Value>) -> bool {
    match test {
        Test::Exists(want) => value.is_some() == *want,
        Test::In {
            values,
            ignore_case,
        } => values.iter().any(|v| equals(value, v, *ignore_case)),
        Test::Matches(re) => value.is_some_and(|v| re.is_match(&to_text(v))),
        Test::Compare(relation, n) => {
            let Some(x) = value.and_then(to_number).and_then(|x| x.as_f64()) else {
                return false;
            };
            match relation {
                Relation::Gt => x > *n,
                Relation::Gte => x >= *n,
                Relation::Lt => x < *n,
                Relation::Lte => x <= *n,
            }
        }
    }
}

/// `equals`: text compared as text (a number or `true` read as its text), numbers as numbers
/// (numeric text included), `null` as missing, arrays and objects as JSON.
fn equals(actual: Option<&Value>, expected: &Value, ignore_case: bool) -> bool {
    let Some(actual) = actual else {
        return expected.is_null();
    };
    match expected {
        Value::Null => false,
        Value::String(e) => {
            let a = to_text(actual);
            if ignore_case {
                a.to_lowercase() == e.to_lowercase()
            } else {
                *a == **e
            }
        }
        Value::Number(e) => to_number(actual).is_some_and(|a| numbers_equal(&a, e)),
        Value::Bool(e) => match actual {
            Value::Bool(a) => a == e,
            Value::String(a) => a
                .trim()
                .eq_ignore_ascii_case(if *e { "true" } else { "false" }),
            _ => false,
        },
        _ => actual == expected,
    }
}

impl Compiler<'_> {
    pub(crate) fn condition(
        &self,
        v: &Value,
        path: &str,
        depth: usize,
        names: &mut RuleNames,
    ) -> Result<Condition, RulesError> {
        if depth > MAX_DEPTH {
            return Err(err(path, format!("nested deeper than {MAX_DEPTH} levels")));
        }
        let c = object(v, path, CONDITION_KEYS)?;
        if let Some(first) = c
            .keys()
            .find(|k| matches!(k.as_str(), "all" | "any" | "not"))
        {
            if let Some(other) = c.keys().find(|k| *k != first) {
                return Err(err(
                    path,
                    format!("`{first}` stands alone, but `{other}` is beside it"),
                ));
            }
            let at = format!("{path}.{first}");
            let list = |names: &mut RuleNames| -> Result<Vec<Condition>, RulesError> {
                let Value::Array(list) = &c[first] else {
                    return Err(err(
                        &at,
                        format!("expected a list of conditions, found {}", kind(&c[first])),
                    ));
                };
                list.iter()
                    .enumerate()
                    .map(|(i, c)| self.condition(c, &format!("{at}[{i}]"), depth + 1, names))
                    .collect()
            };
            return Ok(match first.as_str() {
                "all" => Condition::All(list(names)?),
                "any" => Condition::Any(list(names)?),
                _ => Condition::Not(Box::new(self.condition(
                    &c[first],
                    &at,
                    depth + 1,
                    names,
                )?)),
            });
        }

        let subject = match (c.get("path"), c.get("value")) {
            (Some(p), None) => {
                let at = format!("{path}.path");
                Subject::Path(template::parse_path(string(p, &at)?, names).map_err(|e| err(at, e))?)
            }
            (None, Some(v)) => Subject::Value(template_at(v, &format!("{path}.value"), names)?),
            (Some(_), Some(_)) => return Err(err(path, "takes `path` or `value`, not both")),
            (None, None) => {
                return Err(err(
                    path,
                    "needs `path` or `value` (or `all`, `any`, `not`)",
                ));
            }
        };
        let ignore_case = match c.get("ignore_case") {
            Some(v) => boolean(v, &format!("{path}.ignore_case"))?,
            None => false,
        };
        let mut tests = Vec::new();
        for (key, v) in c {
            let at = format!("{path}.{key}");
            let relation = |r| match v.as_f64() {
                Some(n) => Ok(Test::Compare(r, n)),
                None => Err(err(&at, format!("expected a number, found {}", kind(v)))),
            };
            tests.push(match key.as_str() {
                "exists" => Test::Exists(boolean(v, &at)?),
                "equals" => Test::In {
                    values: vec![v.clone()],
                    ignore_case,
                },
                "in" => match v {
                    Value::Array(values) => Test::In {
                        values: values.clone(),
                        ignore_case,
                    },
                    _ => return Err(err(at, format!("expected a list, found {}", kind(v)))),
                },
                "matches" => Test::Matches(regex(string(v, &at)?, &at)?),
                "gt" => relation(Relation::Gt)?,
                "gte" => relation(Relation::Gte)?,
                "lt" => relation(Relation::Lt)?,
                "lte" => relation(Relation::Lte)?,
                _ => continue,
            });
        }
        if tests.is_empty() {
            return Err(err(
                path,
                "needs a test: exists, equals, in, matches, gt, gte, lt or lte",
            ));
        }
        if c.contains_key("ignore_case") && !c.contains_key("equals") && !c.contains_key("in") {
            return Err(err(
                format!("{path}.ignore_case"),
                "applies only to `equals` and `in`",
            ));
        }
        Ok(Condition::Test { subject, tests })
    }
}

const CONDITION_KEYS: &[&str] = &[
    "all",
    "any",
    "not",
    "path",
    "value",
    "exists",
    "equals",
    "ignore_case",
    "in",
    "matches",
    "gt",
    "gte",
    "lt",
    "lte",
];

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn equality() {
        let cases = [
            (json!("firing"), json!("firing"), false, true),
            (json!("Firing"), json!("firing"), false, false),
            (json!("Firing"), json!("firing"), true, true),
            (json!(2), json!("2"), false, true),
            (json!("2"), json!(2), false, true),
            (json!("2.0"), json!(2), false, true),
            (json!("two"), json!(2), false, false),
            (json!(true), json!(true), false, true),
            (json!("true"), json!(true), false, true),
            (json!(true), json!("true"), false, true),
            (json!(1), json!(true), false, false),
            (json!([1, 2]), json!([1, 2]), false, true),
            (json!({"a": 1}), json!({"a": 2}), false, false),
        ];
        for (actual, expected, ignore_case, want) in cases {
            assert_eq!(
                equals(Some(&actual), &expected, ignore_case),
                want,
                "{actual} equals {expected} (ignore_case {ignore_case})"
            );
        }
        assert!(equals(None, &json!(null), false), "missing equals null");
        assert!(
            !equals(None, &json!(""), false),
            "missing is not empty text"
        );
        assert!(!equals(Some(&json!("")), &json!(null), false));
    }

    #[test]
    fn comparisons() {
        let gt = Test::Compare(Relation::Gt, 10.0);
        assert!(test(&gt, Some(&json!(11))));
        assert!(test(&gt, Some(&json!(" 10.5 "))));
        assert!(!test(&gt, Some(&json!(10))));
        assert!(!test(&gt, Some(&json!("eleven"))));
        assert!(!test(&gt, None));
        assert!(test(&Test::Compare(Relation::Gte, 10.0), Some(&json!(10))));
        assert!(test(&Test::Compare(Relation::Lt, 10.0), Some(&json!(-1))));
        assert!(test(
            &Test::Compare(Relation::Lte, 10.0),
            Some(&json!("10"))
        ));
    }
}
