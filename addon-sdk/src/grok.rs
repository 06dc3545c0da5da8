//! Grok patterns (feature `grok`): regular expressions built from named building blocks, as in
//! Logstash and Elasticsearch ingest pipelines, for syslog-like text and command output.
//!
//! ```
//! use opsconductor_addon_sdk::grok;
//! let re = grok!("%{IP:client} %{WORD:method} %{URIPATHPARAM:path} %{NUMBER:bytes}");
//! let m = re.captures("55.3.244.1 GET /index.html 15824").unwrap();
//! assert_eq!(m["client"], "55.3.244.1");
//! assert_eq!(m.get("bytes").map(String::as_str), Some("15824"));
//! assert!(re.captures("not a request").is_none());
//! ```
//!
//! Every pattern of the standard library (`IP`, `HOSTNAME`, `NUMBER`, `WORD`, `DATA`,
//! `GREEDYDATA`, `SYSLOGBASE`, `TIMESTAMP_ISO8601`, ...) is available; only the captures given
//! a name (`%{IP:client}`) are returned. [`Grok::with_patterns`] adds patterns of the addon's
//! own. The engine is `fancy-regex` (pure Rust, so it builds for `wasm32-wasip2`), which also
//! allows look-around and back-references in the pattern text.

use std::collections::BTreeMap;

use crate::AddonError;

/// A compiled grok pattern. Compile once per instance: [`grok!`](crate::grok!) for a literal,
/// or keep the result of [`Grok::new`] in the addon's struct.
#[derive(Debug)]
pub struct Grok {
    pattern: ::grok::Pattern,
}

impl Grok {
    /// Compiles `pattern` against the standard pattern library; an `invalid-input` error says
    /// what is wrong with it (for a pattern from a target's config).
    pub fn new(pattern: &str) -> Result<Grok, AddonError> {
        Grok::with_patterns(&[], pattern)
    }

    /// Compiles `pattern` with `extra` `(name, definition)` patterns added to the standard
    /// ones (an extra pattern of the same name replaces the standard one):
    ///
    /// ```
    /// use opsconductor_addon_sdk::grok::Grok;
    /// let g = Grok::with_patterns(&[("IFNAME", r"(?:ge|xe|et)-\d+/\d+/\d+")], "%{IFNAME:port} is %{WORD:state}").unwrap();
    /// assert_eq!(g.captures("xe-0/0/3 is down").unwrap()["port"], "xe-0/0/3");
    /// ```
    pub fn with_patterns(extra: &[(&str, &str)], pattern: &str) -> Result<Grok, AddonError> {
        let mut grok = ::grok::Grok::with_default_patterns();
        for (name, definition) in extra {
            grok.add_pattern(*name, *definition);
        }
        grok.compile(pattern, true)
            .map(|pattern| Grok { pattern })
            .map_err(|e| AddonError::invalid_input(format!("grok pattern `{pattern}`: {e}")))
    }

    /// The named captures when the pattern matches somewhere in `text`, by name. A named
    /// capture that took part in no match (an optional part) is left out.
    pub fn captures(&self, text: &str) -> Option<BTreeMap<String, String>> {
        let matches = self.pattern.match_against(text)?;
        Some(
            matches
                .iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
        )
    }

    /// The text of the named capture `name`, when the pattern matches `text`.
    pub fn capture(&self, text: &str, name: &str) -> Option<String> {
        let matches = self.pattern.match_against(text)?;
        matches.get(name).map(str::to_owned)
    }

    /// Whether the pattern matches somewhere in `text`.
    pub fn is_match(&self, text: &str) -> bool {
        self.pattern.match_against(text).is_some()
    }
}

/// Compiles a grok pattern literal once per instance and returns a `&'static Grok`, like
/// [`regex!`](crate::regex!); an invalid pattern panics on first use. Feature `grok`.
#[macro_export]
macro_rules! grok {
    ($pattern:literal $(,)?) => {{
        static GROK: ::std::sync::OnceLock<$crate::grok::Grok> = ::std::sync::OnceLock::new();
        GROK.get_or_init(|| match $crate::grok::Grok::new($pattern) {
            Ok(g) => g,
            Err(e) => panic!("{}", e.message),
        })
    }};
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;

    #[test]
    fn syslog_line() {
        let g = grok!(
            "%{SYSLOGTIMESTAMP:ts} %{SYSLOGHOST:host} %{DATA:program}(?:\\[%{POSINT:pid}\\])?: %{GREEDYDATA:msg}"
        );
        let m = g
            .captures("May 14 11:31:07 core-sw-01 sshd[4321]: Failed password for root")
            .unwrap();
        assert_eq!(m["ts"], "May 14 11:31:07");
        assert_eq!(m["host"], "core-sw-01");
        assert_eq!(m["program"], "sshd");
        assert_eq!(m["pid"], "4321");
        assert_eq!(m["msg"], "Failed password for root");
        // Only the named captures, not the building blocks' own.
        assert_eq!(m.len(), 5);

        let m = g.captures("May 14 11:31:07 fw1 kernel: eth0 down").unwrap();
        assert_eq!(
            m.get("pid"),
            None,
            "an optional part that did not match is absent"
        );
        assert_eq!(g.capture("x", "msg"), None);
        assert!(!g.is_match("nothing here"));
    }

    #[test]
    fn extra_patterns_and_errors() {
        let g = Grok::with_patterns(&[("STATE", "(?:up|down)")], "link %{STATE:state}").unwrap();
        assert_eq!(g.capture("link down", "state").as_deref(), Some("down"));
        assert!(g.is_match("link up"));

        let err = Grok::new("%{NO_SUCH_PATTERN:x}").unwrap_err();
        assert_eq!(err.kind, ErrorKind::InvalidInput);
        assert!(
            err.message
                .starts_with("grok pattern `%{NO_SUCH_PATTERN:x}`"),
            "{}",
            err.message
        );
    }
}
