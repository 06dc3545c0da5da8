//! Cutting text to a byte budget, with `…` where it was cut so that a reader sees it was: for
//! text stored or sent under a size limit (alert fields, guest log lines). A character budget,
//! for text quoted back to a person, is `opsconductor_text::truncate`.

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
}
