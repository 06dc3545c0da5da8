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

/// Numeric severity codes → [`crate::Severity`], for senders that say `"severity": 4` or
/// `priority=2`. [`SeverityCodes::parse`] reads text as a sender writes it: a severity word
/// ([`SEVERITY_WORDS`], so `critical`, `crit`, `P1` too) or an integer looked up in the table.
///
/// ```
/// use opsconductor_addon_sdk::{Severity, SeverityCodes};
/// assert_eq!(SeverityCodes::SYSLOG.get(3), Some(Severity::Major));
/// assert_eq!(SeverityCodes::SYSLOG.parse(" 0 "), Some(Severity::Critical));
/// assert_eq!(SeverityCodes::ZABBIX.parse("4"), Some(Severity::Major));
/// assert_eq!(SeverityCodes::ZABBIX.parse("Warning"), Some(Severity::Warning));
/// assert_eq!(SeverityCodes::ZABBIX.parse("P1"), Some(Severity::Critical));
/// assert_eq!(SeverityCodes::ZABBIX.parse("9"), None);
///
/// const VENDOR: SeverityCodes = SeverityCodes::new(&[(1, Severity::Critical), (2, Severity::Minor)]);
/// assert_eq!(VENDOR.get(2), Some(Severity::Minor));
/// ```
#[derive(Debug, Clone, Copy)]
pub struct SeverityCodes<'a> {
    codes: &'a [(i64, crate::Severity)],
}

impl<'a> SeverityCodes<'a> {
    /// Syslog levels (RFC 5424): 0 emergency, 1 alert, 2 critical → critical; 3 error → major;
    /// 4 warning → warning; 5 notice, 6 informational, 7 debug → info.
    pub const SYSLOG: SeverityCodes<'static> = {
        use crate::Severity::{Critical, Info, Major, Warning};
        SeverityCodes::new(&[
            (0, Critical),
            (1, Critical),
            (2, Critical),
            (3, Major),
            (4, Warning),
            (5, Info),
            (6, Info),
            (7, Info),
        ])
    };

    /// Zabbix trigger severities: 5 disaster → critical, 4 high → major, 3 average → minor,
    /// 2 warning → warning, 1 information and 0 not classified → info.
    pub const ZABBIX: SeverityCodes<'static> = {
        use crate::Severity::{Critical, Info, Major, Minor, Warning};
        SeverityCodes::new(&[
            (5, Critical),
            (4, Major),
            (3, Minor),
            (2, Warning),
            (1, Info),
            (0, Info),
        ])
    };

    pub const fn new(codes: &'a [(i64, crate::Severity)]) -> SeverityCodes<'a> {
        SeverityCodes { codes }
    }

    /// The severity of `code`, if the table has it (the first entry wins).
    pub fn get(&self, code: i64) -> Option<crate::Severity> {
        self.codes.iter().find(|(c, _)| *c == code).map(|(_, s)| *s)
    }

    /// A severity word (see [`SEVERITY_WORDS`]), else an integer code from the table.
    pub fn parse(&self, text: &str) -> Option<crate::Severity> {
        SEVERITY_WORDS
            .get(text)
            .or_else(|| self.get(text.trim().parse().ok()?))
    }
}

/// Severity by how far a measured value went: `(limit, severity)` steps, checked in the order
/// written, the first whose limit the value is above wins. For "warning above 80 %, critical
/// above 95 %" in a poll addon:
///
/// ```
/// use opsconductor_addon_sdk::{Severity, Thresholds};
/// const DISK: Thresholds = Thresholds::new(&[(95.0, Severity::Critical), (80.0, Severity::Warning)]);
/// assert_eq!(DISK.above(97.0), Some(Severity::Critical));
/// assert_eq!(DISK.above(85.0), Some(Severity::Warning));
/// assert_eq!(DISK.above(80.0), None, "at the limit is still fine");
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Thresholds<'a> {
    steps: &'a [(f64, crate::Severity)],
}

impl<'a> Thresholds<'a> {
    pub const fn new(steps: &'a [(f64, crate::Severity)]) -> Thresholds<'a> {
        Thresholds { steps }
    }

    /// The severity of the first step whose limit `value` is strictly above; `None` when it
    /// is above none (or is NaN).
    pub fn above(&self, value: f64) -> Option<crate::Severity> {
        self.steps
            .iter()
            .find(|(limit, _)| value > *limit)
            .map(|(_, s)| *s)
    }

    /// The severity of the first step whose limit `value` is strictly below, for values where
    /// less is worse (free space, signal strength); `None` when it is below none.
    pub fn below(&self, value: f64) -> Option<crate::Severity> {
        self.steps
            .iter()
            .find(|(limit, _)| value < *limit)
            .map(|(_, s)| *s)
    }
}

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
    fn severity_codes_take_words_and_numbers() {
        let cases = [
            (SeverityCodes::SYSLOG, "2", Some(Severity::Critical)),
            (SeverityCodes::SYSLOG, "4", Some(Severity::Warning)),
            (SeverityCodes::SYSLOG, "7", Some(Severity::Info)),
            (SeverityCodes::SYSLOG, "8", None),
            (SeverityCodes::SYSLOG, "err", Some(Severity::Major)),
            (SeverityCodes::ZABBIX, "5", Some(Severity::Critical)),
            (SeverityCodes::ZABBIX, "3", Some(Severity::Minor)),
            (SeverityCodes::ZABBIX, "p2", Some(Severity::Major)),
            (SeverityCodes::ZABBIX, "-1", None),
            (SeverityCodes::ZABBIX, "", None),
            (SeverityCodes::ZABBIX, "disaster", None),
        ];
        for (codes, text, want) in cases {
            assert_eq!(codes.parse(text), want, "{text:?}");
        }
    }

    #[test]
    fn thresholds_above_and_below() {
        const T: Thresholds =
            Thresholds::new(&[(10.0, Severity::Critical), (20.0, Severity::Minor)]);
        assert_eq!(T.above(25.0), Some(Severity::Critical), "first listed wins");
        assert_eq!(T.above(5.0), None);
        assert_eq!(T.below(5.0), Some(Severity::Critical));
        assert_eq!(T.below(15.0), Some(Severity::Minor));
        assert_eq!(T.below(20.0), None);
        assert_eq!(T.above(f64::NAN), None);
    }

    #[test]
    fn values_may_be_any_copy_type() {
        let kinds = Mapping::new(&[("down", ("sensorDown", 1)), ("up", ("sensorUp", 0))]);
        assert_eq!(kinds.get("up"), Some(("sensorUp", 0)));
    }
}
