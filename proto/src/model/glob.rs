//! Model-name globs (`gpt-4o*`, `*-mini`, `claude-?-opus`): `*` matches any
//! run of characters, `?` exactly one. Enough for routing tables and cheaper
//! than a regex engine on the request path.

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Glob {
    pattern: String,
}

impl Glob {
    pub fn new(pattern: impl Into<String>) -> Self {
        Self {
            pattern: pattern.into(),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.pattern
    }

    /// True when the pattern has no wildcard, so an exact match is meant.
    pub fn is_literal(&self) -> bool {
        !self.pattern.contains(['*', '?'])
    }

    pub fn matches(&self, text: &str) -> bool {
        matches(self.pattern.as_bytes(), text.as_bytes())
    }
}

/// Iterative wildcard match with single-star backtracking: linear in practice.
fn matches(p: &[u8], t: &[u8]) -> bool {
    let (mut pi, mut ti) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == b'?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == b'*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == b'*' {
        pi += 1;
    }
    pi == p.len()
}

#[cfg(test)]
mod tests {
    use super::Glob;

    #[test]
    fn wildcards() {
        let g = Glob::new("gpt-4o*");
        assert!(g.matches("gpt-4o"));
        assert!(g.matches("gpt-4o-mini"));
        assert!(!g.matches("gpt-4"));
        assert!(Glob::new("*-mini").matches("gpt-4o-mini"));
        assert!(!Glob::new("*-mini").matches("gpt-4o-mini-x"));
        assert!(Glob::new("o?").matches("o3"));
        assert!(!Glob::new("o?").matches("o"));
        assert!(Glob::new("a*b*c").matches("axxbyyc"));
        assert!(!Glob::new("a*b*c").matches("axxbyy"));
        assert!(Glob::new("*").matches(""));
        assert!(Glob::new("o3").is_literal());
        assert!(!Glob::new("o3*").is_literal());
    }
}
