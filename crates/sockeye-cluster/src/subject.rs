//! NATS subjects: tokens separated by `.`, where a subscription's `*` matches one token and a
//! final `>` matches one or more.

/// Whether `subject` (a concrete subject) is matched by `pattern` (a subscription's subject,
/// possibly with `*` and a final `>`), as NATS matches them.
pub fn matches(pattern: &str, subject: &str) -> bool {
    let mut subject = subject.split('.');
    for token in pattern.split('.') {
        match (token, subject.next()) {
            (">", Some(_)) => return true,
            ("*", Some(_)) => {}
            (p, Some(s)) if p == s => {}
            _ => return false,
        }
    }
    subject.next().is_none()
}

/// Whether `token` may stand as one token of a concrete subject: not empty, no `.`, no
/// wildcard, no whitespace.
pub fn is_literal_token(token: &str) -> bool {
    !token.is_empty()
        && !token
            .bytes()
            .any(|b| matches!(b, b'.' | b'*' | b'>') || b.is_ascii_whitespace())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn star_matches_one_token_and_gt_one_or_more() {
        assert!(matches("a.*.c", "a.b.c"));
        assert!(!matches("a.*.c", "a.b.b.c"));
        assert!(matches("a.>", "a.b"));
        assert!(matches("a.>", "a.b.c"));
        assert!(!matches("a.>", "a"));
        assert!(matches("a.b", "a.b"));
        assert!(!matches("a.b", "a.b.c"));
        assert!(!matches("a.b.c", "a.b"));
        assert!(matches(">", "x"));
    }

    #[test]
    fn literal_tokens_have_no_separator_wildcard_or_space() {
        assert!(is_literal_token("lobby"));
        for bad in ["", "a.b", "*", "a>", "a b", "a\tb"] {
            assert!(!is_literal_token(bad), "{bad:?}");
        }
    }
}
