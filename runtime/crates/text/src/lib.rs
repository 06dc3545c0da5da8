//! Text that the addon SDK and the rules engine must read alike, kept in one place: the host in
//! an address or URL, RFC 3339 times and bounded text. A rules addon converted from a compiled
//! one names devices, reads times and cuts text exactly as the compiled addon does because both
//! call these functions.
//!
//! No dependencies: it is compiled into every addon's WebAssembly, and every kilobyte there is
//! compiled into every instance.

use std::net::IpAddr;

/// The host in a string that may carry more: `10.0.0.1:9100` → `10.0.0.1`,
/// `https://user@web-1.example.com:8443/health` → `web-1.example.com`,
/// `[2001:db8::1]:9100` → `2001:db8::1`, `2001:db8::1` → itself. `None` when nothing is left.
///
/// Monitoring tools put whatever identifies a scrape target in fields like Prometheus'
/// `instance`, so device names are normalised here once rather than in every addon.
pub fn host_part(s: &str) -> Option<&str> {
    let mut h = s.trim();
    if let Some((_, rest)) = h.split_once("://") {
        h = rest;
    }
    h = h.split(['/', '?', '#']).next().unwrap_or("");
    if let Some((_, rest)) = h.rsplit_once('@') {
        h = rest;
    }
    if let Some(rest) = h.strip_prefix('[') {
        h = rest.split(']').next().unwrap_or("");
    } else if h.parse::<IpAddr>().is_err() {
        // Not a bare IPv6 address, so a colon can only start a port.
        h = h.split(':').next().unwrap_or("");
    }
    let h = h.trim();
    (!h.is_empty()).then_some(h)
}

/// At most `max_chars` characters of `text`, with `…` in place of whatever was cut (so the
/// result has at most `max_chars + 1`). For bounding vendor text in fields and messages: the
/// host refuses field values over 4 KiB.
///
/// ```
/// use opsconductor_text::truncate;
/// assert_eq!(truncate("interface down", 9), "interface…");
/// assert_eq!(truncate("down", 9), "down");
/// ```
pub fn truncate(text: &str, max_chars: usize) -> String {
    match text.char_indices().nth(max_chars) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

/// Parses an RFC 3339 timestamp (`2024-05-01T12:00:00Z`, `2021-10-12T09:51:03.157076+02:00`)
/// into milliseconds since the Unix epoch.
///
/// Fractions beyond milliseconds are truncated. `None` for anything malformed and for times
/// before 1970: Go senders (Alertmanager, Grafana) write `0001-01-01T00:00:00Z` for "no time",
/// and an alert is better with the host's receipt time than with that.
///
/// Hand-written rather than pulled from a date crate: this is the one format the vendors here
/// send, and every kilobyte of an addon is compiled into every instance.
pub fn rfc3339_millis(s: &str) -> Option<i64> {
    let b = s.trim().as_bytes();
    let num = |range: std::ops::Range<usize>| -> Option<i64> {
        let digits = b.get(range)?;
        if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
            return None;
        }
        std::str::from_utf8(digits).ok()?.parse().ok()
    };
    let sep = |i: usize, c: &[u8]| b.get(i).is_some_and(|x| c.contains(x));

    if !(sep(4, b"-") && sep(7, b"-") && sep(10, b"Tt ") && sep(13, b":") && sep(16, b":")) {
        return None;
    }
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&month)
        || day < 1
        || day > days_in_month(year, month)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }

    let mut i = 19;
    let mut millis = 0;
    if b.get(i) == Some(&b'.') {
        let start = i + 1;
        i = start;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        if i == start {
            return None;
        }
        // Right-pad to three digits: ".5" is 500 ms.
        let frac = &b[start..i.min(start + 3)];
        millis = frac
            .iter()
            .chain(std::iter::repeat(&b'0'))
            .take(3)
            .fold(0, |acc, d| acc * 10 + i64::from(d - b'0'));
    }

    let offset_seconds = match b.get(i) {
        Some(b'Z' | b'z') if i + 1 == b.len() => 0,
        Some(sign @ (b'+' | b'-')) if i + 6 == b.len() && sep(i + 3, b":") => {
            let (oh, om) = (num(i + 1..i + 3)?, num(i + 4..i + 6)?);
            if oh > 23 || om > 59 {
                return None;
            }
            let off = oh * 3600 + om * 60;
            if *sign == b'-' { -off } else { off }
        }
        _ => return None,
    };

    // A leap second is folded into the next one; the host cannot represent it anyway.
    let seconds = days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second
        - offset_seconds;
    (seconds >= 0).then(|| seconds * 1000 + millis)
}

fn is_leap(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_part_strips_what_is_not_the_host() {
        let cases = [
            ("10.0.0.1:9100", Some("10.0.0.1")),
            ("10.0.0.1", Some("10.0.0.1")),
            (" node-1:9100 ", Some("node-1")),
            (
                "https://user:pw@web-1.example.com:8443/health?x=1",
                Some("web-1.example.com"),
            ),
            ("http://play.example.net:8804", Some("play.example.net")),
            ("[2001:db8::1]:9100", Some("2001:db8::1")),
            ("2001:db8::1", Some("2001:db8::1")),
            ("", None),
            (":9100", None),
            ("   ", None),
        ];
        for (input, want) in cases {
            assert_eq!(host_part(input), want, "host_part({input:?})");
        }
    }

    #[test]
    fn rfc3339_cases() {
        let cases = [
            ("1970-01-01T00:00:00Z", Some(0)),
            ("2024-03-01T10:00:00Z", Some(1_709_287_200_000)),
            ("2024-03-01T10:00:00.5Z", Some(1_709_287_200_500)),
            ("2024-03-01T10:00:00.123456789Z", Some(1_709_287_200_123)),
            ("2024-03-01t10:00:00z", Some(1_709_287_200_000)),
            ("2024-03-01 10:00:00Z", Some(1_709_287_200_000)),
            ("2021-10-12T09:51:03.157076+02:00", Some(1_634_025_063_157)),
            ("2021-10-12T07:51:03.157-00:00", Some(1_634_025_063_157)),
            ("2024-02-29T00:00:00Z", Some(1_709_164_800_000)),
            ("2024-12-31T23:59:60Z", Some(1_735_689_600_000)),
            ("0001-01-01T00:00:00Z", None),
            ("2023-02-29T00:00:00Z", None),
            ("2024-13-01T00:00:00Z", None),
            ("2024-03-01T24:00:00Z", None),
            ("2024-03-01T10:00:00", None),
            ("2024-03-01T10:00:00.Z", None),
            ("2024-03-01T10:00:00+0200", None),
            ("2024-03-01", None),
            ("11/22/2023 10:43:21 AM", None),
            ("", None),
        ];
        for (input, want) in cases {
            assert_eq!(rfc3339_millis(input), want, "rfc3339_millis({input:?})");
        }
    }

    #[test]
    fn truncate_counts_characters() {
        assert_eq!(truncate("", 0), "");
        assert_eq!(truncate("abc", 0), "…");
        assert_eq!(truncate("abc", 3), "abc");
        assert_eq!(truncate("äöüß", 2), "äö…");
    }
}
