//! The console's filter language: what the dashboard's filter bar, its URLs, the facet counts
//! and "act on everything this filter matches" all read.
//!
//! `severity=critical device=~"10.20.*" addon!=prtg "link down"` — terms separated by spaces,
//! all of which must match, in the matcher syntax operators know from Alertmanager, karma and
//! Grafana:
//!
//! - `name=value` and `name!=value` compare exactly; `name=~re` and `name!~re` match a regular
//!   expression anchored at both ends (as Alertmanager does), case-sensitive unless it starts
//!   with `(?i)`; `severity>=major` (and `>`, `<=`, `<`) compare severities, most severe
//!   highest.
//! - Values are bare (`critical`, `10.20.0.1`) or double-quoted (`"a b"`, with `\"` and `\\`).
//! - Names are the alert's attributes — `severity`, `status`, `acknowledged` (`true`/`false`),
//!   `acknowledged_by`, `addon`, `type` (or `alert_type`), `category`, `device` (IP or name),
//!   `device_ip`, `device_name`, `title`, `message`, `id` — and any other name, or
//!   `fields.<name>`, is that alert field. What an alert lacks reads as `""`.
//! - A term without an operator is free text, found (ignoring case) in the title, message,
//!   addon, type, category, device or any field value.
//!
//! The dashboard evaluates the same language in TypeScript (`dashboard/src/filter.ts`) to
//! filter in the browser; `filter/cases.json` holds the cases both implementations must pass,
//! so that a bulk action acts on exactly the alerts the operator saw. Pure: no I/O.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::fmt;

use regex::{Regex, RegexBuilder};

use crate::alert::{AlertStatus, Severity, StoredAlert};

/// Longest filter accepted, in bytes: a URL's worth, far more than anyone types.
pub const MAX_FILTER_LEN: usize = 2048;
/// Most terms in one filter.
pub const MAX_TERMS: usize = 32;
/// Compiled size limit of one regular expression (the `regex` crate's own measure), so that a
/// pathological pattern is refused rather than evaluated against every open alert.
const REGEX_SIZE_LIMIT: usize = 1 << 20;

/// A filter that does not parse; the message names the term and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct FilterError(String);

impl FilterError {
    fn in_term(term: &str, message: impl fmt::Display) -> FilterError {
        FilterError(format!("`{term}`: {message}"))
    }
}

/// A parsed filter; [`Filter::matches`] evaluates it. The empty filter matches every alert.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    terms: Vec<Term>,
}

#[derive(Debug, Clone)]
enum Term {
    /// Free text, lowercased.
    Text(String),
    Matcher {
        target: Target,
        test: Test,
    },
}

/// What a matcher reads from an alert.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Target {
    Severity,
    Status,
    Acknowledged,
    AcknowledgedBy,
    Addon,
    AlertType,
    Category,
    /// The device's IP or name: matches when either does (`!=`, `!~`: when neither does).
    Device,
    DeviceIp,
    DeviceName,
    Title,
    Message,
    Id,
    Field(String),
}

#[derive(Debug, Clone)]
enum Test {
    Equal(String, bool),
    Regex(Regex, bool),
    /// At least as severe as (`>=`, `inclusive`), or more severe than (`>`); or, with
    /// `at_most`, the other way round.
    Severity {
        than: Severity,
        at_most: bool,
        inclusive: bool,
    },
}

const OPERATORS: [&str; 8] = ["!=", "!~", "=~", ">=", "<=", "=", ">", "<"];

fn is_operator_char(c: char) -> bool {
    matches!(c, '=' | '!' | '~' | '<' | '>')
}

impl Filter {
    /// Parses `text`.
    pub fn parse(text: &str) -> Result<Filter, FilterError> {
        if text.len() > MAX_FILTER_LEN {
            return Err(FilterError(format!(
                "the filter is longer than {MAX_FILTER_LEN} bytes"
            )));
        }
        let mut terms = Vec::new();
        let mut rest = text.trim_start();
        while !rest.is_empty() {
            let (term, after) = parse_term(rest)?;
            terms.push(term);
            if terms.len() > MAX_TERMS {
                return Err(FilterError(format!(
                    "the filter has more than {MAX_TERMS} terms"
                )));
            }
            rest = after.trim_start();
        }
        Ok(Filter { terms })
    }

    /// Whether the filter has no terms (and so matches everything).
    pub fn is_empty(&self) -> bool {
        self.terms.is_empty()
    }

    pub fn matches(&self, alert: &StoredAlert) -> bool {
        self.terms.iter().all(|term| term.matches(alert))
    }
}

/// Reads one term from the start of `input` (which starts with no whitespace); returns it and
/// what follows it.
fn parse_term(input: &str) -> Result<(Term, &str), FilterError> {
    let term_text = |end: usize| &input[..end];
    if let Some(quoted) = input.strip_prefix('"') {
        let (phrase, after) = quoted_value(quoted).map_err(|m| {
            FilterError::in_term(input.split_whitespace().next().unwrap_or(input), m)
        })?;
        let consumed = input.len() - after.len();
        expect_separator(after, term_text(consumed))?;
        return Ok((Term::Text(phrase.to_lowercase()), after));
    }
    let run_end = input
        .find(|c: char| c.is_whitespace() || c == '"' || is_operator_char(c))
        .unwrap_or(input.len());
    let name = &input[..run_end];
    let after_run = &input[run_end..];
    let Some(next) = after_run.chars().next() else {
        return Ok((Term::Text(name.to_lowercase()), after_run));
    };
    if next.is_whitespace() {
        return Ok((Term::Text(name.to_lowercase()), after_run));
    }
    let whole = input.split_whitespace().next().unwrap_or(input);
    if next == '"' {
        return Err(FilterError::in_term(
            whole,
            "unexpected quote; put the whole phrase in quotes, or write name=\"value\"",
        ));
    }
    let operator = OPERATORS
        .into_iter()
        .find(|op| after_run.starts_with(op))
        .ok_or_else(|| {
            FilterError::in_term(
                whole,
                format!(
                    "unknown operator `{next}` (use one of: {})",
                    OPERATORS.join(" ")
                ),
            )
        })?;
    if name.is_empty() {
        return Err(FilterError::in_term(
            whole,
            format!("missing name before `{operator}`"),
        ));
    }
    if !is_name(name) {
        return Err(FilterError::in_term(
            whole,
            format!("`{name}` is not a name (letters, digits, `_`, `.` and `-`)"),
        ));
    }
    let value_text = &after_run[operator.len()..];
    let (value, after) = if let Some(quoted) = value_text.strip_prefix('"') {
        let (value, after) = quoted_value(quoted).map_err(|m| FilterError::in_term(whole, m))?;
        let consumed = input.len() - after.len();
        expect_separator(after, term_text(consumed))?;
        (value, after)
    } else {
        let end = value_text
            .find(|c: char| c.is_whitespace() || c == '"')
            .unwrap_or(value_text.len());
        let bare = &value_text[..end];
        if bare.is_empty() {
            return Err(FilterError::in_term(
                whole,
                format!("missing value after `{operator}`"),
            ));
        }
        if bare.starts_with(is_operator_char) {
            return Err(FilterError::in_term(
                whole,
                format!("a value cannot start with `{}`; quote it", &bare[..1]),
            ));
        }
        let after = &value_text[end..];
        if after.starts_with('"') {
            return Err(FilterError::in_term(
                whole,
                "unexpected quote; quote the whole value",
            ));
        }
        (bare.to_owned(), after)
    };
    let term_text = term_text(input.len() - after.len());
    let matcher = matcher(name, operator, value).map_err(|m| FilterError::in_term(term_text, m))?;
    Ok((matcher, after))
}

fn is_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

/// A quoted value's text, starting after its opening quote: the unescaped value and what
/// follows the closing quote.
fn quoted_value(input: &str) -> Result<(String, &str), String> {
    let mut value = String::new();
    let mut chars = input.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Ok((value, &input[i + 1..])),
            '\\' => match chars.next() {
                Some((_, escaped)) => value.push(escaped),
                None => break,
            },
            c => value.push(c),
        }
    }
    Err("unterminated quote".to_owned())
}

fn expect_separator(after: &str, term: &str) -> Result<(), FilterError> {
    match after.chars().next() {
        None => Ok(()),
        Some(c) if c.is_whitespace() => Ok(()),
        Some(_) => Err(FilterError::in_term(
            term,
            "expected a space after the closing quote",
        )),
    }
}

fn matcher(name: &str, operator: &str, value: String) -> Result<Term, String> {
    let target = match name {
        "severity" => Target::Severity,
        "status" => Target::Status,
        "acknowledged" => Target::Acknowledged,
        "acknowledged_by" => Target::AcknowledgedBy,
        "addon" => Target::Addon,
        "type" | "alert_type" => Target::AlertType,
        "category" => Target::Category,
        "device" => Target::Device,
        "device_ip" => Target::DeviceIp,
        "device_name" => Target::DeviceName,
        "title" => Target::Title,
        "message" => Target::Message,
        "id" => Target::Id,
        other => Target::Field(other.strip_prefix("fields.").unwrap_or(other).to_owned()),
    };
    let test = match operator {
        "=" | "!=" => {
            check_value(&target, &value)?;
            Test::Equal(value, operator == "=")
        }
        "=~" | "!~" => Test::Regex(compile(&value)?, operator == "=~"),
        _ => {
            if target != Target::Severity {
                return Err(format!(
                    "`{operator}` compares severities: it applies to only `severity`"
                ));
            }
            let than = parse_severity(&value)?;
            Test::Severity {
                than,
                at_most: operator.starts_with('<'),
                inclusive: operator.ends_with('='),
            }
        }
    };
    Ok(Term::Matcher { target, test })
}

fn parse_severity(value: &str) -> Result<Severity, String> {
    value.parse::<Severity>().map_err(|e| e.to_string())
}

/// Refuses an exact value the attribute can never have, which is a typo rather than a filter.
fn check_value(target: &Target, value: &str) -> Result<(), String> {
    match target {
        Target::Severity => parse_severity(value).map(|_| ()),
        Target::Status => value
            .parse::<AlertStatus>()
            .map(|_| ())
            .map_err(|e| e.to_string()),
        Target::Acknowledged if value != "true" && value != "false" => Err(format!(
            "`acknowledged` is `true` or `false`, not `{value}`"
        )),
        Target::Id if value.parse::<i64>().is_err() => {
            Err(format!("`id` is a number, not `{value}`"))
        }
        _ => Ok(()),
    }
}

fn compile(pattern: &str) -> Result<Regex, String> {
    RegexBuilder::new(&format!("^(?:{pattern})$"))
        .size_limit(REGEX_SIZE_LIMIT)
        .build()
        .map_err(|e| format!("not a valid regular expression: {e}"))
}

impl Term {
    fn matches(&self, alert: &StoredAlert) -> bool {
        match self {
            Term::Text(needle) => text_matches(alert, needle),
            Term::Matcher { target, test } => {
                if let Test::Severity {
                    than,
                    at_most,
                    inclusive,
                } = test
                {
                    // `Severity`'s order is most severe first: `Critical < Info`.
                    return match (at_most, inclusive) {
                        (false, true) => alert.severity <= *than,
                        (false, false) => alert.severity < *than,
                        (true, true) => alert.severity >= *than,
                        (true, false) => alert.severity > *than,
                    };
                }
                let values = target_values(target, alert);
                let mut values = values.iter().flatten();
                let (hit, positive) = match test {
                    Test::Equal(expected, positive) => {
                        (values.any(|v| v == expected.as_str()), *positive)
                    }
                    Test::Regex(re, positive) => (values.any(|v| re.is_match(v)), *positive),
                    Test::Severity { .. } => unreachable!("handled above"),
                };
                hit == positive
            }
        }
    }
}

/// The value(s) `target` reads from `alert`: one, or for `device` its IP and its name.
fn target_values<'a>(target: &Target, alert: &'a StoredAlert) -> [Option<Cow<'a, str>>; 2] {
    let one = |v: &'a str| [Some(Cow::Borrowed(v)), None];
    let or_empty = |v: Option<&'a str>| one(v.unwrap_or(""));
    match target {
        Target::Severity => one(alert.severity.as_str()),
        Target::Status => one(alert.status.as_str()),
        Target::Acknowledged => one(if alert.status == AlertStatus::Acknowledged {
            "true"
        } else {
            "false"
        }),
        Target::AcknowledgedBy => or_empty(alert.acknowledged_by.as_deref()),
        Target::Addon => one(&alert.addon_id),
        Target::AlertType => one(&alert.alert_type),
        Target::Category => one(&alert.category),
        Target::Device => match (alert.device_ip.as_deref(), alert.device_name.as_deref()) {
            (None, None) => one(""),
            (ip, name) => [ip.map(Cow::Borrowed), name.map(Cow::Borrowed)],
        },
        Target::DeviceIp => or_empty(alert.device_ip.as_deref()),
        Target::DeviceName => or_empty(alert.device_name.as_deref()),
        Target::Title => one(&alert.title),
        Target::Message => one(&alert.message),
        Target::Id => [Some(Cow::Owned(alert.id.to_string())), None],
        Target::Field(name) => or_empty(alert.fields.get(name).map(String::as_str)),
    }
}

fn text_matches(alert: &StoredAlert, needle: &str) -> bool {
    let has = |s: &str| s.to_lowercase().contains(needle);
    has(&alert.title)
        || has(&alert.message)
        || has(&alert.addon_id)
        || has(&alert.alert_type)
        || has(&alert.category)
        || alert.device_ip.as_deref().is_some_and(has)
        || alert.device_name.as_deref().is_some_and(has)
        || alert.fields.values().any(|v| has(v))
}

/// Values counted per facet; the rarest beyond these are summed in [`Facet::other`], so that a
/// facet over 100,000 devices stays a small answer.
pub const MAX_FACET_VALUES: usize = 100;

/// The facets a console shows, in the order it shows them.
pub const FACETS: [&str; 7] = [
    "severity",
    "status",
    "addon",
    "device",
    "category",
    "alert_type",
    "acknowledged",
];

/// How many alerts have each value of one attribute.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
pub struct Facet {
    pub values: BTreeMap<String, u64>,
    /// Alerts whose value is not among `values` (there were more than [`MAX_FACET_VALUES`]).
    pub other: u64,
}

/// Facet counts over the alerts a filter matches.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
pub struct Facets {
    /// Alerts the filter matches.
    pub total: u64,
    pub facets: BTreeMap<&'static str, Facet>,
}

/// Counts, in one pass, the values of every facet among the `alerts` that `filter` matches.
/// `device` counts the device's name, else its IP, else `""`.
pub fn facets<'a>(alerts: impl IntoIterator<Item = &'a StoredAlert>, filter: &Filter) -> Facets {
    let mut counts: [HashMap<&'a str, u64>; FACETS.len()] = Default::default();
    let mut total = 0;
    for alert in alerts.into_iter().filter(|a| filter.matches(a)) {
        total += 1;
        let values: [&'a str; FACETS.len()] = [
            alert.severity.as_str(),
            alert.status.as_str(),
            &alert.addon_id,
            alert
                .device_name
                .as_deref()
                .or(alert.device_ip.as_deref())
                .unwrap_or(""),
            &alert.category,
            &alert.alert_type,
            if alert.status == AlertStatus::Acknowledged {
                "true"
            } else {
                "false"
            },
        ];
        for (count, value) in counts.iter_mut().zip(values) {
            *count.entry(value).or_default() += 1;
        }
    }
    let facets = FACETS
        .into_iter()
        .zip(counts)
        .map(|(name, count)| {
            let mut by_count: Vec<(&str, u64)> = count.into_iter().collect();
            by_count.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
            let other = by_count.iter().skip(MAX_FACET_VALUES).map(|(_, n)| n).sum();
            by_count.truncate(MAX_FACET_VALUES);
            let values = by_count
                .into_iter()
                .map(|(v, n)| (v.to_owned(), n))
                .collect();
            (name, Facet { values, other })
        })
        .collect();
    Facets { total, facets }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use chrono::DateTime;
    use serde_json::Value;

    use super::*;

    /// An alert of `filter/cases.json`: the attributes the language reads, the rest defaulted.
    fn alert(case: &Value) -> StoredAlert {
        let text = |key: &str| case[key].as_str().unwrap_or_default().to_owned();
        let maybe = |key: &str| case[key].as_str().map(str::to_owned);
        StoredAlert {
            id: case["id"].as_i64().unwrap(),
            addon_id: text("addon_id"),
            fingerprint: String::new(),
            alert_type: text("alert_type"),
            device_ip: maybe("device_ip"),
            device_name: maybe("device_name"),
            severity: text("severity").parse().unwrap(),
            category: text("category"),
            title: text("title"),
            message: text("message"),
            status: text("status").parse().unwrap(),
            fields: serde_json::from_value::<BTreeMap<String, String>>(case["fields"].clone())
                .unwrap(),
            occurrence_count: case["occurrence_count"].as_i64().unwrap_or(1),
            occurred_at: DateTime::UNIX_EPOCH,
            first_seen_at: DateTime::UNIX_EPOCH,
            last_seen_at: DateTime::UNIX_EPOCH,
            acknowledged_at: None,
            acknowledged_by: maybe("acknowledged_by"),
            resolved_at: None,
            resolved_by: None,
        }
    }

    /// The cases the dashboard's TypeScript implementation passes too.
    #[test]
    fn the_shared_cases_hold() {
        let cases: Value = serde_json::from_str(include_str!("filter/cases.json")).unwrap();
        let alerts: Vec<(String, StoredAlert)> = cases["alerts"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(key, a)| (key.clone(), alert(a)))
            .collect();
        let mut failures = Vec::new();
        for case in cases["cases"].as_array().unwrap() {
            let text = case["filter"].as_str().unwrap();
            match (
                Filter::parse(text),
                case.get("error").and_then(Value::as_str),
            ) {
                (Ok(filter), None) => {
                    let got: BTreeSet<&str> = alerts
                        .iter()
                        .filter(|(_, a)| filter.matches(a))
                        .map(|(key, _)| key.as_str())
                        .collect();
                    let want: BTreeSet<&str> = case["matches"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|k| k.as_str().unwrap())
                        .collect();
                    if got != want {
                        failures.push(format!("{text:?}: matched {got:?}, expected {want:?}"));
                    }
                }
                (Ok(_), Some(error)) => failures.push(format!(
                    "{text:?}: parsed, expected an error with {error:?}"
                )),
                (Err(e), None) => failures.push(format!("{text:?}: {e}")),
                (Err(e), Some(error)) => {
                    if !e.to_string().contains(error) {
                        failures.push(format!("{text:?}: error {e:?} lacks {error:?}"));
                    }
                }
            }
        }
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }

    fn case_alerts() -> Vec<StoredAlert> {
        let cases: Value = serde_json::from_str(include_str!("filter/cases.json")).unwrap();
        cases["alerts"]
            .as_object()
            .unwrap()
            .values()
            .map(alert)
            .collect()
    }

    #[test]
    fn facets_count_what_the_filter_matches() {
        let alerts = case_alerts();
        let all = facets(&alerts, &Filter::default());
        assert_eq!(all.total, 5);
        assert_eq!(all.facets.len(), FACETS.len());
        let severity = &all.facets["severity"];
        assert_eq!(severity.values.values().sum::<u64>(), 5);
        assert_eq!(severity.values["critical"], 1);
        assert_eq!(all.facets["acknowledged"].values["true"], 1);
        assert_eq!(all.facets["acknowledged"].values["false"], 4);
        // Name first, else IP, else nothing.
        let device = &all.facets["device"].values;
        assert_eq!(device["core-sw-1"], 1);
        assert_eq!(device["192.0.2.5"], 1);
        assert_eq!(device[""], 1);

        let network = facets(&alerts, &Filter::parse("category=network").unwrap());
        assert_eq!(network.total, 2);
        assert_eq!(network.facets["addon"].values["snmp-interface"], 2);
        assert_eq!(network.facets["status"].values.len(), 2);
    }

    #[test]
    fn a_facet_keeps_its_commonest_values_and_sums_the_rest() {
        let template = case_alerts().remove(0);
        let alerts: Vec<StoredAlert> = (0..MAX_FACET_VALUES + 20)
            .flat_map(|i| {
                // Device 0 three times, device 1 twice, every other once.
                let copies = if i == 0 {
                    3
                } else if i == 1 {
                    2
                } else {
                    1
                };
                let mut a = template.clone();
                a.device_name = Some(format!("dev-{i:03}"));
                std::iter::repeat_n(a, copies)
            })
            .collect();
        let f = facets(&alerts, &Filter::default());
        let device = &f.facets["device"];
        assert_eq!(device.values.len(), MAX_FACET_VALUES);
        assert_eq!(device.values["dev-000"], 3);
        assert_eq!(device.values["dev-001"], 2);
        assert_eq!(device.values.values().sum::<u64>() + device.other, f.total);
        assert_eq!(device.other, 20);
    }

    #[test]
    fn errors_name_the_term() {
        let e = Filter::parse("addon=prtg severity=crit")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("`severity=crit`: unknown severity"), "{e}");
        let e = Filter::parse("a=\"x\"y").unwrap_err().to_string();
        assert!(e.contains("`a=\"x\"`"), "{e}");
    }

    #[test]
    fn limits_are_enforced() {
        let long = "x".repeat(MAX_FILTER_LEN + 1);
        assert!(
            Filter::parse(&long)
                .unwrap_err()
                .to_string()
                .contains("longer")
        );
        let many = vec!["a"; MAX_TERMS + 1].join(" ");
        assert!(
            Filter::parse(&many)
                .unwrap_err()
                .to_string()
                .contains("terms")
        );
        let huge = format!("title=~\"{}\"", "(a{1000}){1000}");
        assert!(
            Filter::parse(&huge)
                .unwrap_err()
                .to_string()
                .contains("regular expression")
        );
    }
}
