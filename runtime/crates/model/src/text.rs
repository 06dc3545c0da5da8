//! Cutting text to a budget, with `…` where it was cut so that a reader sees it was. Two
//! budgets, for two jobs: bytes where the text is stored or sent under a size limit (alert
//! fields, guest log lines), characters where input is quoted back to a person (error
//! messages), so a quote never ends in half a character either way.

/// `s` in at most `max` bytes, `…` included, cut on a character boundary.
pub fn cut_to_bytes(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_owned();
    }
    let mut end = max.saturating_sub('…'.len_utf8());
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

/// The first `max` characters of `s`, followed by `…` when there were more.
pub fn cut_to_chars(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        None => s.to_owned(),
        Some((end, _)) => format!("{}…", &s[..end]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_budget_includes_the_mark_and_keeps_characters_whole() {
        assert_eq!(cut_to_bytes("short", 5), "short");
        assert_eq!(cut_to_bytes("abcdef", 5), "ab…");
        // `é` is two bytes: a cut inside it moves back to its start.
        let cut = cut_to_bytes("éééé", 6);
        assert_eq!(cut, "é…");
        assert!(cut.len() <= 6);
        assert_eq!(cut_to_bytes("abc", 0), "…");
    }

    #[test]
    fn chars_budget_counts_characters() {
        assert_eq!(cut_to_chars("héllo", 5), "héllo");
        assert_eq!(cut_to_chars("héllo wörld", 5), "héllo…");
        assert_eq!(cut_to_chars("", 0), "");
        assert_eq!(cut_to_chars("a", 0), "…");
    }
}
