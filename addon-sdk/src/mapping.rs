//! [`Mapping`]: a small declarative lookup table, e.g. vendor status words → [`crate::Severity`].

/// A fixed table from text keys to values, written inline where it is used:
///
/// ```
/// use opsconductor_addon_sdk::{Mapping, Severity};
/// const SEVERITY: Mapping<Severity> = Mapping::new(&[
///     ("down", Severity::Critical),
///     ("warning", Severity::Warning),
/// ])
/// .ignore_case();
/// assert_eq!(SEVERITY.get(" Down "), Some(Severity::Critical));
/// assert_eq!(SEVERITY.get("paused"), None);
/// ```
///
/// Lookups trim the key and scan the table in order (the first match wins). A linear scan is
/// the right choice for the dozen entries vendor tables have: no hashing, no allocation, and the
/// table can be a `const`.
#[derive(Debug, Clone, Copy)]
pub struct Mapping<'a, T> {
    entries: &'a [(&'a str, T)],
    ignore_case: bool,
}

impl<'a, T: Copy> Mapping<'a, T> {
    /// A table whose keys match exactly (after trimming the looked-up key).
    pub const fn new(entries: &'a [(&'a str, T)]) -> Mapping<'a, T> {
        Mapping {
            entries,
            ignore_case: false,
        }
    }

    /// The same table, matching keys ASCII case-insensitively.
    pub const fn ignore_case(self) -> Mapping<'a, T> {
        Mapping {
            entries: self.entries,
            ignore_case: true,
        }
    }

    /// The value for `key`, if the table has it.
    pub fn get(&self, key: &str) -> Option<T> {
        let key = key.trim();
        self.entries
            .iter()
            .find(|(k, _)| {
                if self.ignore_case {
                    k.eq_ignore_ascii_case(key)
                } else {
                    *k == key
                }
            })
            .map(|(_, v)| *v)
    }

    /// The value for `key`, or `default` when the table does not have it.
    pub fn get_or(&self, key: &str, default: T) -> T {
        self.get(key).unwrap_or(default)
    }

    /// The value for an optional key (e.g. a [`crate::ptr_str`] result).
    pub fn get_opt(&self, key: Option<&str>) -> Option<T> {
        key.and_then(|k| self.get(k))
    }
}

/// The words monitoring tools and rule authors use for severity — Prometheus/Grafana rule
/// labels, syslog levels, PagerDuty-style priorities — case-insensitive. Use it for a free-form
/// `severity` field, or as the fallback after a vendor's own table.
pub const SEVERITY_WORDS: Mapping<'static, crate::Severity> = {
    use crate::Severity::{Critical, Info, Major, Minor, Warning};
    Mapping::new(&[
        ("critical", Critical),
        ("crit", Critical),
        ("fatal", Critical),
        ("emergency", Critical),
        ("emerg", Critical),
        ("alert", Critical),
        ("page", Critical),
        ("p1", Critical),
        ("major", Major),
        ("high", Major),
        ("error", Major),
        ("err", Major),
        ("p2", Major),
        ("minor", Minor),
        ("medium", Minor),
        ("p3", Minor),
        ("warning", Warning),
        ("warn", Warning),
        ("p4", Warning),
        ("info", Info),
        ("informational", Info),
        ("notice", Info),
        ("low", Info),
        ("none", Info),
        ("p5", Info),
    ])
    .ignore_case()
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Severity;

    const EXACT: Mapping<Severity> =
        Mapping::new(&[("Down", Severity::Critical), ("Down", Severity::Info)]);

    #[test]
    fn exact_and_case_insensitive_lookups() {
        assert_eq!(
            EXACT.get("Down"),
            Some(Severity::Critical),
            "first match wins"
        );
        assert_eq!(EXACT.get(" Down\n"), Some(Severity::Critical));
        assert_eq!(EXACT.get("down"), None);
        assert_eq!(EXACT.ignore_case().get("DOWN"), Some(Severity::Critical));
        assert_eq!(EXACT.get_or("Up", Severity::Info), Severity::Info);
        assert_eq!(EXACT.get_opt(None), None);
        assert_eq!(EXACT.get_opt(Some("Down")), Some(Severity::Critical));
    }

    #[test]
    fn common_severity_words() {
        let cases = [
            ("CRITICAL", Some(Severity::Critical)),
            ("high", Some(Severity::Major)),
            ("P3", Some(Severity::Minor)),
            ("warn", Some(Severity::Warning)),
            ("none", Some(Severity::Info)),
            ("purple", None),
        ];
        for (word, expected) in cases {
            assert_eq!(SEVERITY_WORDS.get(word), expected, "{word}");
        }
    }

    #[test]
    fn values_may_be_any_copy_type() {
        let kinds = Mapping::new(&[("down", ("sensorDown", 1)), ("up", ("sensorUp", 0))]);
        assert_eq!(kinds.get("up"), Some(("sensorUp", 0)));
    }
}
