//! `${NAME}` in an apply file: each reference is replaced by a placeholder
//! before the YAML is parsed ([`Refs`]), and expanded after parsing, inside
//! string values only ([`expand_value`]), so a value can never change the
//! file's structure and `{ key: ${KEY} }` parses in flow context too.

use serde_yaml::Value;

use crate::error::{Error, Result};

/// What a placeholder stands for.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Ref {
    /// `${NAME}`: the variable's value.
    Var(String),
    /// `$${NAME}`: the text `${NAME}` itself.
    Literal(String),
}

/// The `${NAME}` (and `$${NAME}`) references of a file, each replaced,
/// before the YAML is parsed, by a placeholder that YAML reads as part of a
/// plain scalar in block and flow context alike (letters, digits and `_`:
/// `${X}}` is no longer read as a broken `{...}`). Placeholders are
/// expanded after parsing, inside string values only, so a variable's value
/// still cannot change the file's structure.
#[derive(Debug)]
pub(crate) struct Refs {
    /// Begins every placeholder (`<prefix><n>_`): it occurs nowhere in the
    /// file's text, and only its first character is a `Q`, so no run of
    /// text can end inside one and start another.
    prefix: String,
    refs: Vec<Ref>,
}

impl Refs {
    const BASE: &'static str = "Q7aigwvar";

    /// `text` with its references replaced by placeholders. The text is
    /// read as [`expand`] reads a string; references it would refuse
    /// (`${bad-name}`, `${X` without its `}`) are left in place, so the
    /// errors stay the same.
    pub(crate) fn mark(text: &str) -> (String, Refs) {
        let xs = text
            .match_indices(Self::BASE)
            .map(|(at, _)| {
                text[at + Self::BASE.len()..]
                    .bytes()
                    .take_while(|b| *b == b'x')
                    .count()
                    + 1
            })
            .max()
            .unwrap_or(0);
        let mut refs = Refs {
            prefix: format!("{}{}", Self::BASE, "x".repeat(xs)),
            refs: Vec::new(),
        };
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(at) = rest.find('$') {
            out.push_str(&rest[..at]);
            let after = &rest[at + 1..];
            if let Some(tail) = after.strip_prefix("${") {
                match var_name(tail) {
                    Some((name, tail)) => {
                        refs.push(&mut out, Ref::Literal(name.to_string()));
                        rest = tail;
                    }
                    None => {
                        out.push_str("$${");
                        rest = tail;
                    }
                }
            } else if let Some((name, tail)) = after.strip_prefix('{').and_then(var_name) {
                refs.push(&mut out, Ref::Var(name.to_string()));
                rest = tail;
            } else {
                out.push('$');
                rest = after;
            }
        }
        out.push_str(rest);
        (out, refs)
    }

    fn push(&mut self, out: &mut String, r: Ref) {
        out.push_str(&format!("{}{}_", self.prefix, self.refs.len()));
        self.refs.push(r);
    }

    /// The reference whose placeholder begins `s`, and the text after it.
    fn at<'a>(&self, s: &'a str) -> Option<(&Ref, &'a str)> {
        let digits = s.strip_prefix(self.prefix.as_str())?;
        let n = digits.bytes().take_while(u8::is_ascii_digit).count();
        let tail = digits[n..].strip_prefix('_')?;
        let r = self.refs.get(digits[..n].parse::<usize>().ok()?)?;
        Some((r, tail))
    }

    /// `s` as the file wrote it: placeholders back to `${NAME}`.
    fn restore(&self, s: &str) -> String {
        let mut out = String::with_capacity(s.len());
        let mut rest = s;
        while let Some(at) = rest.find(self.prefix.as_str()) {
            out.push_str(&rest[..at]);
            match self.at(&rest[at..]) {
                Some((Ref::Var(name), tail)) => {
                    out.push_str(&format!("${{{name}}}"));
                    rest = tail;
                }
                Some((Ref::Literal(name), tail)) => {
                    out.push_str(&format!("$${{{name}}}"));
                    rest = tail;
                }
                None => {
                    out.push_str(&rest[at..=at]);
                    rest = &rest[at + 1..];
                }
            }
        }
        out.push_str(rest);
        out
    }
}

/// `NAME}` at the start of `s`: the name and the text after its `}`.
fn var_name(s: &str) -> Option<(&str, &str)> {
    let end = s.find('}')?;
    let name = &s[..end];
    valid_name(name).then(|| (name, &s[end + 1..]))
}

fn valid_name(name: &str) -> bool {
    !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

pub(crate) fn expand_value(
    v: &mut Value,
    path: &str,
    refs: &Refs,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<()> {
    match v {
        Value::String(s) => {
            let original = refs.restore(s);
            let expanded = expand_with(s, path, Some(refs), lookup)?;
            let secret = path.ends_with(".secret") || path.ends_with(".key");
            if secret && expanded.is_empty() && original.contains("${") {
                return Err(Error::EmptySecret {
                    path: path.to_string(),
                    text: original,
                });
            }
            *s = expanded;
        }
        Value::Sequence(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                expand_value(item, &format!("{path}[{i}]"), refs, lookup)?;
            }
        }
        Value::Mapping(map) => {
            // Keys are never expanded: one that names a variable is kept as
            // written.
            let marked_key =
                |k: &Value| k.as_str().is_some_and(|k| k.contains(refs.prefix.as_str()));
            if map.keys().any(marked_key) {
                let old = std::mem::take(map);
                for (k, item) in old {
                    let k = match k {
                        Value::String(k) => Value::String(refs.restore(&k)),
                        other => other,
                    };
                    map.insert(k, item);
                }
            }
            for (k, item) in map.iter_mut() {
                let key = k.as_str().map_or_else(|| format!("{k:?}"), str::to_string);
                let child = if path.is_empty() {
                    key
                } else {
                    format!("{path}.{key}")
                };
                expand_value(item, &child, refs, lookup)?;
            }
        }
        Value::Tagged(t) => expand_value(&mut t.value, path, refs, lookup)?,
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
    Ok(())
}

/// Replaces each `${NAME}` with the variable's value; `$${` is a literal
/// `${`. A variable that is not set is an error naming it (an empty value is
/// allowed: it was set on purpose; but see [`Error::EmptySecret`]).
pub fn expand(s: &str, path: &str, lookup: &dyn Fn(&str) -> Option<String>) -> Result<String> {
    expand_with(s, path, None, lookup)
}

/// [`expand`], also of the placeholders of `refs`, in one pass: a
/// variable's value is never read again.
fn expand_with(
    s: &str,
    path: &str,
    refs: Option<&Refs>,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<String> {
    let missing = |name: &str| Error::MissingVar {
        var: name.to_string(),
        path: path.to_string(),
    };
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    loop {
        let dollar = rest.find('$');
        let placeholder = refs.and_then(|r| Some((r, rest.find(r.prefix.as_str())?)));
        let at = match (dollar, placeholder) {
            (None, None) => break,
            (Some(d), Some((_, p))) if d < p => d,
            (Some(d), None) => d,
            (_, Some((r, p))) => {
                out.push_str(&rest[..p]);
                match r.at(&rest[p..]) {
                    Some((Ref::Var(name), tail)) => {
                        out.push_str(&lookup(name).ok_or_else(|| missing(name))?);
                        rest = tail;
                    }
                    Some((Ref::Literal(name), tail)) => {
                        out.push_str(&format!("${{{name}}}"));
                        rest = tail;
                    }
                    None => {
                        // Not one of ours (only a quoted escape can write
                        // it): kept, and looked past its first character.
                        out.push_str(&rest[p..=p]);
                        rest = &rest[p + 1..];
                    }
                }
                continue;
            }
        };
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        if let Some(tail) = after.strip_prefix("${") {
            out.push_str("${");
            rest = tail;
        } else if let Some(body) = after.strip_prefix('{') {
            let end = body.find('}').ok_or_else(|| {
                let shown = refs.map_or_else(|| s.to_string(), |r| r.restore(s));
                Error::invalid(format!("{path}: unterminated ${{ in {shown:?}"))
            })?;
            let name = &body[..end];
            if !valid_name(name) {
                return Err(Error::invalid(format!(
                    "{path}: invalid variable name {name:?}"
                )));
            }
            out.push_str(&lookup(name).ok_or_else(|| missing(name))?);
            rest = &body[end + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::file::{Num, parse};

    #[test]
    fn expansion_edge_cases() {
        let e = |s: &str| expand(s, "p", &vars);
        assert_eq!(e("plain $ sign").unwrap(), "plain $ sign");
        assert_eq!(e("${Y}${Y}").unwrap(), "yy");
        assert!(e("${Y").is_err());
        assert!(e("${BAD-NAME}").is_err());
    }

    fn vars(name: &str) -> Option<String> {
        match name {
            "X" => Some("sk-x-123".into()),
            "Y" => Some("y".into()),
            // YAML syntax in a value stays text.
            "SYNTAX" => Some("a}, b: {c: [d]\n# e: ${X}\n- f, 'g\"".into()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    #[test]
    fn variables_work_inside_flow_mappings_and_sequences() {
        let f = parse(
            "providers:\n  - {name: p, kind: openai, keys: [{name: a, secret: ${X}}, {name: b, secret: ${Y}-${X}}]}\n\
             client_keys:\n  - {name: sv, key: ${X}}\n  - name: k2\n    key: ${Y}\n    models: [${Y}, gpt-${Y}*]\n    limits: { rpm: ${RPM_X}, cost_per_day: 2 }\n",
            &|n| if n == "RPM_X" { Some("600".into()) } else { vars(n) },
        )
        .unwrap();
        let keys = &f.providers[0].keys;
        assert_eq!(keys[0].secret, "sk-x-123");
        assert_eq!(keys[1].secret, "y-sk-x-123");
        assert_eq!(f.client_keys[0].key.as_deref(), Some("sk-x-123"));
        assert_eq!(f.client_keys[1].key.as_deref(), Some("y"));
        assert_eq!(f.client_keys[1].models, ["y", "gpt-y*"]);
        let limits = f.client_keys[1].limits.as_ref().unwrap();
        assert_eq!(limits.rpm, Some(Num(600)));
    }

    #[test]
    fn block_and_quoted_forms_still_expand() {
        let f = parse(
            "client_keys:\n  - name: a\n    key: ${X}\n  - name: b\n    key: \"pre-${X}-post\"\n  - name: c\n    key: 'q ${Y}'\n  - name: d\n    key: |\n      ${Y}\n  - {name: e, key: \"${X}\"}\n",
            &vars,
        )
        .unwrap();
        let keys: Vec<_> = f
            .client_keys
            .iter()
            .map(|k| k.key.as_deref().unwrap())
            .collect();
        assert_eq!(
            keys,
            ["sk-x-123", "pre-sk-x-123-post", "q y", "y\n", "sk-x-123"]
        );
    }

    #[test]
    fn a_value_with_yaml_syntax_is_taken_literally() {
        let want = "a}, b: {c: [d]\n# e: ${X}\n- f, 'g\"";
        for text in [
            "client_keys:\n  - {name: k, key: ${SYNTAX}}\n",
            "client_keys:\n  - name: k\n    key: ${SYNTAX}\n",
            "client_keys: [{name: k, key: \"${SYNTAX}\"}]\n",
        ] {
            let f = parse(text, &vars).unwrap();
            assert_eq!(f.client_keys.len(), 1, "{text}");
            // Not expanded again: the value's own `${X}` stays text.
            assert_eq!(f.client_keys[0].key.as_deref(), Some(want), "{text}");
        }
    }

    #[test]
    fn escapes_and_errors_in_flow_context() {
        // `$${NAME}` is the text `${NAME}`, in flow context too.
        let f = parse(
            "client_keys:\n  - {name: k, key: a-$${X}-${Y}}\n  - name: b\n    key: $${X}\n",
            &vars,
        )
        .unwrap();
        assert_eq!(f.client_keys[0].key.as_deref(), Some("a-${X}-y"));
        assert_eq!(f.client_keys[1].key.as_deref(), Some("${X}"));
        // The errors name the field and the variable, as written.
        let e = parse("client_keys:\n  - {name: k, key: ${NOPE}}\n", &vars).unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.contains("client_keys[0].key") && msg.contains("NOPE"),
            "{msg}"
        );
        let e = parse(
            "providers:\n  - {name: p, kind: openai, keys: [{name: a, secret: ${EMPTY}}]}\n",
            &vars,
        )
        .unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.contains("providers[0].keys[0].secret") && msg.contains("${EMPTY}"),
            "{msg}"
        );
        // An invalid reference is refused as before.
        let e = parse("client_keys:\n  - name: k\n    key: a-${X\n", &vars).unwrap_err();
        assert!(
            e.to_string().contains("unterminated ${ in \"a-${X\""),
            "{e}"
        );
        // Keys are never expanded; text that looks like a placeholder is text.
        let f = parse(
            "providers:\n  - name: p\n    kind: openai\n    model_map: { ${X}: Q7aigwvar0_, b: ${Y} }\n",
            &vars,
        )
        .unwrap();
        let map = &f.providers[0].model_map;
        assert_eq!(map["${X}"], "Q7aigwvar0_");
        assert_eq!(map["b"], "y");
    }
}
