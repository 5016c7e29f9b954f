//! Plain string helpers every layer may use (nothing Markdown-specific: that
//! is `publish::sanitize`).

/// Cuts `text` to at most `max` characters at a char boundary.
pub fn truncate_chars(text: &str, max: usize) -> &str {
    match text.char_indices().nth(max) {
        Some((i, _)) => &text[..i],
        None => text,
    }
}

/// A duration as people read it: `45 s`, `3.0 min`, `4.2 h`, `339 days`.
pub fn duration_words(s: f64) -> String {
    if !s.is_finite() {
        return "?".into();
    }
    if s < 90.0 {
        format!("{s:.0} s")
    } else if s < 5400.0 {
        format!("{:.1} min", s / 60.0)
    } else if s < 2.0 * 86_400.0 {
        format!("{:.1} h", s / 3600.0)
    } else {
        format!("{:.0} days", s / 86_400.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cuts_at_a_char_boundary() {
        assert_eq!(truncate_chars("héllo", 2), "hé");
        assert_eq!(truncate_chars("hé", 5), "hé");
    }

    #[test]
    fn durations_read_as_words() {
        use super::duration_words as w;
        assert_eq!(w(36.7), "37 s");
        assert_eq!(w(177.0), "3.0 min");
        assert_eq!(w(43.2 * 3600.0), "43.2 h");
        // `explain` once printed "after waiting 29275323 s".
        assert_eq!(w(29_275_323.0), "339 days");
    }
}
