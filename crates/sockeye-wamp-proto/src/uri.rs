//! URI rules (WAMP spec, "Identifiers" / "URIs", and "Pattern-based Subscription").
//!
//! A URI is a string of dot-separated components. The spec defines two checks, and a router
//! picks one:
//!
//! ```text
//! loose:  ^([^\s\.#]+\.)*([^\s\.#]+)$      any component without whitespace, '.' or '#'
//! strict: ^([0-9a-z_]+\.)*([0-9a-z_]+)$    lower-case letters, digits and '_' only
//! ```
//!
//! Patterns relax them: a prefix pattern may end with an empty component (`com.myapp.`), and a
//! wildcard pattern may have empty components anywhere (`com..update`), each empty component
//! matching any one component.

/// Which URI check the router applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum UriCheck {
    /// Components may hold anything but whitespace, `.` and `#` (the spec's default).
    #[default]
    Loose,
    /// Components are `[0-9a-z_]+`.
    Strict,
}

/// How a subscription or registration matches URIs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MatchPolicy {
    /// `match: "exact"` (or no `match`): the URI must equal the pattern.
    #[default]
    Exact,
    /// `match: "prefix"`: the URI must start with the pattern, compared as strings
    /// (`com.myapp` matches `com.myapp.x` and `com.myapp2`).
    Prefix,
    /// `match: "wildcard"`: same number of components, each empty pattern component matching
    /// any one component (`com..update` matches `com.user.update`).
    Wildcard,
}

impl MatchPolicy {
    /// The policy a `match` option names, `None` for one the spec does not define.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "exact" => Some(MatchPolicy::Exact),
            "prefix" => Some(MatchPolicy::Prefix),
            "wildcard" => Some(MatchPolicy::Wildcard),
            _ => None,
        }
    }

    /// The `match` option's value for this policy, as the meta API reports it.
    pub fn as_str(self) -> &'static str {
        match self {
            MatchPolicy::Exact => "exact",
            MatchPolicy::Prefix => "prefix",
            MatchPolicy::Wildcard => "wildcard",
        }
    }
}

fn component_ok(c: &str, check: UriCheck) -> bool {
    match check {
        UriCheck::Loose => !c
            .chars()
            .any(|ch| ch.is_whitespace() || ch == '.' || ch == '#'),
        UriCheck::Strict => c
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'),
    }
}

/// Whether `uri` is a valid URI (no empty components) under `check`.
pub fn is_valid(uri: &str, check: UriCheck) -> bool {
    !uri.is_empty()
        && uri
            .split('.')
            .all(|c| !c.is_empty() && component_ok(c, check))
}

/// Whether `uri` is valid as a pattern of the given match policy.
pub fn is_valid_pattern(uri: &str, policy: MatchPolicy, check: UriCheck) -> bool {
    match policy {
        MatchPolicy::Exact => is_valid(uri, check),
        MatchPolicy::Prefix => {
            // Every component but the last must be non-empty; "" matches everything.
            let parts: Vec<&str> = uri.split('.').collect();
            let (last, init) = parts.split_last().expect("split yields one part");
            init.iter().all(|c| !c.is_empty() && component_ok(c, check))
                && component_ok(last, check)
        }
        MatchPolicy::Wildcard => {
            // Empty components are wildcards, but a pattern must have at least one literal,
            // or it would be a subscription to everything with a given number of components.
            uri.split('.').all(|c| component_ok(c, check)) && uri.split('.').any(|c| !c.is_empty())
        }
    }
}

/// Whether a URI matches a pattern.
pub fn matches(pattern: &str, policy: MatchPolicy, uri: &str) -> bool {
    match policy {
        MatchPolicy::Exact => pattern == uri,
        // Prefix matching is on the string, as in the spec's example: "com.myapp.topic" matches
        // "com.myapp.topic1" and "com.myapp.topic.emergency".
        MatchPolicy::Prefix => uri.starts_with(pattern),
        MatchPolicy::Wildcard => {
            let mut p = pattern.split('.');
            let mut u = uri.split('.');
            loop {
                match (p.next(), u.next()) {
                    (None, None) => return true,
                    (Some(pc), Some(uc)) if pc.is_empty() || pc == uc => {}
                    _ => return false,
                }
            }
        }
    }
}

/// How specific a wildcard pattern is: its number of non-empty components. Among several
/// matching wildcard registrations the dealer picks the most specific one.
pub fn wildcard_specificity(pattern: &str) -> usize {
    pattern.split('.').filter(|c| !c.is_empty()).count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loose_and_strict() {
        for ok in ["com.myapp.topic1", "a", "com.my_app.x9"] {
            assert!(is_valid(ok, UriCheck::Strict), "{ok}");
            assert!(is_valid(ok, UriCheck::Loose), "{ok}");
        }
        for loose_only in ["com.MyApp.Topic", "com.my-app.x", "com.app.ünïcode"] {
            assert!(!is_valid(loose_only, UriCheck::Strict), "{loose_only}");
            assert!(is_valid(loose_only, UriCheck::Loose), "{loose_only}");
        }
        for bad in [
            "",
            ".",
            "com..x",
            "com.x.",
            ".com",
            "com.my app",
            "com.#x",
            "a\tb",
        ] {
            assert!(!is_valid(bad, UriCheck::Loose), "{bad:?}");
            assert!(!is_valid(bad, UriCheck::Strict), "{bad:?}");
        }
    }

    #[test]
    fn patterns() {
        use MatchPolicy::*;
        assert!(is_valid_pattern("com.myapp.", Prefix, UriCheck::Strict));
        assert!(is_valid_pattern("com.myapp", Prefix, UriCheck::Strict));
        assert!(!is_valid_pattern("com..myapp", Prefix, UriCheck::Strict));
        assert!(is_valid_pattern("com..update", Wildcard, UriCheck::Strict));
        assert!(is_valid_pattern(".myapp.", Wildcard, UriCheck::Strict));
        assert!(!is_valid_pattern("..", Wildcard, UriCheck::Strict));
        assert!(!is_valid_pattern("com..update", Exact, UriCheck::Strict));
    }

    #[test]
    fn matching() {
        use MatchPolicy::*;
        assert!(matches("com.myapp.topic", Prefix, "com.myapp.topic1"));
        assert!(matches(
            "com.myapp.topic",
            Prefix,
            "com.myapp.topic.emergency"
        ));
        assert!(!matches("com.myapp.topic", Prefix, "com.myapp2.topic"));
        assert!(matches("com..update", Wildcard, "com.myapp.update"));
        assert!(!matches("com..update", Wildcard, "com.myapp.x.update"));
        assert!(!matches("com..update", Wildcard, "com.myapp.create"));
        assert!(matches("a.b", Exact, "a.b"));
        assert!(!matches("a.b", Exact, "a.b.c"));
    }
}
