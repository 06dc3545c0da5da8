//! Text helpers: regex captures, truncation and RFC 3339 timestamps.

use regex::Regex;

pub use opsconductor_text::{rfc3339_millis, truncate};

/// The text of the named capture `group` when `re` matches `text`.
///
/// Use with [`crate::regex!`] so the pattern is compiled once:
/// `capture(regex!(r"ifIndex=(?P<idx>\d+)"), msg, "idx")`.
pub fn capture<'t>(re: &Regex, text: &'t str, group: &str) -> Option<&'t str> {
    re.captures(text)?.name(group).map(|m| m.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::regex;

    #[test]
    fn capture_by_name() {
        let re = regex!(r"^(?P<was>\w+) ended \(now: (?P<now>\w+)\)$");
        assert_eq!(capture(re, "Down ended (now: Up)", "was"), Some("Down"));
        assert_eq!(capture(re, "Down ended (now: Up)", "missing"), None);
        assert_eq!(capture(re, "Up", "now"), None);
        // One call site compiles once and hands out the same regex every time after.
        fn compiled() -> &'static Regex {
            regex!(r"\d+")
        }
        assert!(std::ptr::eq(compiled(), compiled()));
    }
}
