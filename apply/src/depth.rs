//! A linear scan of an apply file's nesting, before the YAML parser sees it.
//!
//! The parser (libyaml, through serde_yaml) takes time quadratic in a
//! document's nesting depth before serde_yaml's own recursion limit says no:
//! twenty thousand `{a: ` (100 KB) take seconds, a 15 MiB file hours. An
//! apply file nests a handful of levels (`providers`, an entry, `keys`, a
//! key, `limits`), so anything deeper than [`MAX_DEPTH`] is refused here,
//! naming where, in one pass over the text.
//!
//! Two counts are kept, and either refuses the file:
//! - a reading of the YAML that knows quoted strings, comments and block
//!   scalars (`|`, `>`: their text is the lines indented more than the key
//!   or the sequence dash that introduced them), so that brackets and
//!   indentation in text do not count: flow `{`/`[` and block indentation
//!   (`- - -` on one line too), at most [`MAX_DEPTH`] levels;
//! - a rough one that follows every bracket (up on an opening one, down on
//!   a closing one: a depth, not a total) and indentation level, text
//!   included, at most [`MAX_ROUGH_DEPTH`]: whatever the first reading gets
//!   wrong (a quote it takes for the start of a string where YAML does
//!   not), the parser's work stays bounded.

use crate::error::{Error, Result};

/// Deepest nesting accepted, flow brackets and block levels together.
pub const MAX_DEPTH: usize = 64;
/// Deepest nesting the rough count accepts.
pub const MAX_ROUGH_DEPTH: usize = 256;

/// Refuses `text` when it nests deeper than [`MAX_DEPTH`].
pub fn check(text: &str) -> Result<()> {
    Scan::default().run(text)?;
    rough(text)
}

fn too_deep(line: usize, column: usize, max: usize) -> Error {
    Error::invalid(format!(
        "line {line}, column {column}: the file nests deeper than {max} levels; \
         an apply file needs only a few"
    ))
}

fn is_space(b: Option<&u8>) -> bool {
    matches!(b, None | Some(b' ' | b'\t' | b'\r'))
}

fn is_flow_indicator(b: u8) -> bool {
    matches!(b, b',' | b'[' | b']' | b'{' | b'}')
}

#[derive(Default)]
struct Scan {
    /// Open flow collections.
    flow: usize,
    /// Columns of the open block levels.
    block: Vec<usize>,
    /// Inside a quoted scalar (its quote), which may span lines.
    quote: Option<u8>,
    /// Inside a block scalar: lines indented more than this are its text.
    block_scalar: Option<usize>,
}

impl Scan {
    fn depth(&self) -> usize {
        self.flow + self.block.len()
    }

    fn check(&self, line: usize, column: usize) -> Result<()> {
        if self.depth() > MAX_DEPTH {
            return Err(too_deep(line, column, MAX_DEPTH));
        }
        Ok(())
    }

    fn run(mut self, text: &str) -> Result<()> {
        for (n, line) in text.lines().enumerate() {
            self.line(n + 1, line.as_bytes())?;
        }
        Ok(())
    }

    fn line(&mut self, ln: usize, b: &[u8]) -> Result<()> {
        let indent = b.iter().take_while(|c| **c == b' ').count();
        let blank = b[indent..]
            .iter()
            .all(|c| matches!(c, b' ' | b'\t' | b'\r'));
        if let Some(parent) = self.block_scalar {
            if blank || indent > parent {
                return Ok(());
            }
            self.block_scalar = None;
        }
        let mut i = 0;
        if self.quote.is_none() && self.flow == 0 {
            if blank || b[indent] == b'#' {
                return Ok(());
            }
            if b.starts_with(b"---") || b.starts_with(b"...") || b[0] == b'%' {
                self.block.clear();
                return Ok(());
            }
            while self.block.last().is_some_and(|top| *top > indent) {
                self.block.pop();
            }
            if self.block.last() != Some(&indent) {
                self.block.push(indent);
            }
            self.check(ln, indent + 1)?;
            i = indent;
        }
        // At the start of a node: where a quote opens a quoted scalar
        // (elsewhere it is text, as in `it's`).
        let mut token_start = true;
        let mut plain = false;
        // The column of a `-` or `?` that began the node now starting (an
        // anchor or tag between them kept): a block scalar there belongs to
        // that sequence entry (or key), and its text may start at the
        // entry's content column, which is deeper than the dash.
        let mut entry: Option<usize> = None;
        while i < b.len() {
            let c = b[i];
            if let Some(q) = self.quote {
                match (q, c) {
                    (b'"', b'\\') => i += 1,
                    (b'"', b'"') => self.quote = None,
                    (b'\'', b'\'') if b.get(i + 1) == Some(&b'\'') => i += 1,
                    (b'\'', b'\'') => self.quote = None,
                    _ => {}
                }
                i += 1;
                continue;
            }
            let after_space = i == 0 || matches!(b[i - 1], b' ' | b'\t');
            if c == b'#' && after_space {
                break;
            }
            let next = b.get(i + 1);
            let ends_plain = (c == b':'
                && (is_space(next)
                    || (self.flow > 0 && next.is_some_and(|n| is_flow_indicator(*n)))))
                || (self.flow > 0 && is_flow_indicator(c));
            if plain && !ends_plain {
                i += 1;
                continue;
            }
            plain = false;
            if !matches!(
                c,
                b' ' | b'\t' | b'\r' | b'&' | b'!' | b'-' | b'?' | b'|' | b'>'
            ) {
                entry = None;
            }
            match c {
                b' ' | b'\t' | b'\r' => {}
                b'[' | b'{' => {
                    self.flow += 1;
                    self.check(ln, i + 1)?;
                    token_start = true;
                }
                b']' | b'}' => {
                    self.flow = self.flow.saturating_sub(1);
                    token_start = false;
                }
                b',' => token_start = true,
                b':' if ends_plain || is_space(next) => token_start = true,
                b'"' | b'\'' if token_start => self.quote = Some(c),
                b'-' | b'?' if token_start && is_space(next) => {
                    entry = Some(i);
                    if self.flow == 0 {
                        let at = i + 1 + b[i + 1..].iter().take_while(|c| **c == b' ').count();
                        if at < b.len() && b[at] != b'#' {
                            self.block.push(at);
                            self.check(ln, at + 1)?;
                        }
                    }
                    token_start = true;
                }
                b'|' | b'>' if token_start && self.flow == 0 => {
                    // Its text is the lines indented more than its parent:
                    // the entry's dash (`- |`), or else the innermost block
                    // level (`key: |`, whose mapping's column).
                    let parent = self.block.last().copied().unwrap_or(0);
                    self.block_scalar = Some(entry.map_or(parent, |dash| dash.min(parent)));
                    break;
                }
                b'&' | b'!' | b'*' if token_start => {
                    // An anchor, a tag or an alias: a word; a node may follow.
                    while i + 1 < b.len()
                        && !matches!(b[i + 1], b' ' | b'\t')
                        && !(self.flow > 0 && is_flow_indicator(b[i + 1]))
                    {
                        i += 1;
                    }
                }
                _ => {
                    plain = true;
                    token_start = false;
                    entry = None;
                }
            }
            i += 1;
        }
        Ok(())
    }
}

/// Every bracket and indentation level, in text or not.
fn rough(text: &str) -> Result<()> {
    let mut flow = 0usize;
    let mut block: Vec<usize> = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let b = line.as_bytes();
        let indent = b.iter().take_while(|c| **c == b' ').count();
        if indent == b.len() {
            continue;
        }
        while block.last().is_some_and(|top| *top > indent) {
            block.pop();
        }
        if block.last() != Some(&indent) {
            block.push(indent);
        }
        let mut dashes = 0;
        let mut rest = &b[indent..];
        while let [b'-' | b'?', b' ', tail @ ..] = rest {
            dashes += 1;
            rest = tail.trim_ascii_start();
        }
        for (i, c) in b.iter().enumerate() {
            match c {
                b'[' | b'{' => flow += 1,
                b']' | b'}' => flow = flow.saturating_sub(1),
                _ => continue,
            }
            if flow + block.len() + dashes > MAX_ROUGH_DEPTH {
                return Err(too_deep(n + 1, i + 1, MAX_ROUGH_DEPTH));
            }
        }
        if flow + block.len() + dashes > MAX_ROUGH_DEPTH {
            return Err(too_deep(n + 1, indent + 1, MAX_ROUGH_DEPTH));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(text: &str) -> String {
        check(text).expect_err("refused").to_string()
    }

    #[test]
    fn deep_flow_nesting_is_refused_where_it_passes_the_limit() {
        let n = 20_000;
        let maps = format!("a: {}1{}\n", "{a: ".repeat(n), "}".repeat(n));
        let msg = refused(&maps);
        // `a: ` is one level, and 63 times `{a: ` more: the 64th brace
        // passes the limit.
        assert!(
            msg.contains("line 1, column 256") && msg.contains("deeper than 64"),
            "{msg}"
        );
        let seqs = format!("a: {}{}\n", "[".repeat(n), "]".repeat(n));
        assert!(refused(&seqs).contains("line 1, column"), "{seqs:.20}");
        // Spread over lines, and with a comment in between.
        let lines = format!("a:\n{}", "  [ # x\n".repeat(100));
        assert!(refused(&lines).contains("deeper than 64"));
    }

    #[test]
    fn deep_block_nesting_is_refused() {
        let mut text = String::new();
        for d in 0..200 {
            text.push_str(&format!("{}a{d}:\n", " ".repeat(d)));
        }
        let msg = refused(&text);
        assert!(msg.contains("line 65, column 65"), "{msg}");
        let dashes = format!("{}x\n", "- ".repeat(100));
        assert!(refused(&dashes).contains("line 1"), "{dashes:.20}");
    }

    #[test]
    fn brackets_in_text_do_not_count() {
        let text = format!(
            "providers:\n  - name: \"{0}\"\n    kind: '{0}'\n    base_url: a{0} # {0}\n    notes: |\n      {0}\n        {0}\n    models: [\"{0}\", '{1}']\n",
            "[{".repeat(100),
            "it''s [[["
        );
        // Text only (the rough count, which counts every bracket, is
        // looser: 256 levels).
        Scan::default().run(&text).unwrap();
    }

    #[test]
    fn a_quote_inside_a_plain_scalar_is_text() {
        // `it's` does not open a string that would hide what follows.
        let deep = format!("a: it's\nb: {}{}\n", "[".repeat(100), "]".repeat(100));
        assert!(refused(&deep).contains("line 2"));
    }

    #[test]
    fn hiding_nesting_from_the_reading_meets_the_rough_count() {
        // A continuation line of a plain scalar that starts with a quote
        // is taken for a string by the first reading; the rough one still
        // counts the brackets after it.
        let n = 1000;
        let text = format!("k: a\n  'b\nx: {}{} 'c'\n", "[".repeat(n), "]".repeat(n));
        assert!(refused(&text).contains("deeper than 256"));
    }

    #[test]
    fn block_text_after_a_dash_starts_at_the_entrys_column() {
        // `- |` and `- >-`: the text may start at the entry's content
        // column (deeper than the dash, not deeper than the `|`); brackets
        // and quotes there are text, hiding nothing and opening nothing.
        let text = format!(
            "client_keys:\n  - name: k\n    models:\n      - |\n        {{\"a\": [1, 'b\n        it's {}\n      - >-\n        [{{ \"\n      - &m !!str |\n        ]]}}}} '\n    key: sk-test-1234\n",
            "[{".repeat(40)
        );
        let text = text.as_str();
        check(text).unwrap();
        let parsed: serde_yaml::Value = serde_yaml::from_str(text).unwrap();
        assert_eq!(
            parsed["client_keys"][0]["models"][1].as_str(),
            Some("[{ \"")
        );
        assert_eq!(
            parsed["client_keys"][0]["key"].as_str(),
            Some("sk-test-1234")
        );
        let file = crate::file::parse(text, &|_| None).unwrap();
        assert_eq!(file.client_keys[0].models.len(), 3);
        // The scalar ends where the text does: what follows is read again,
        // and still refused when deep (a quote in the text hides nothing).
        let deep = format!(
            "a:\n  - |\n    'open [{{\n  - {}{}\n",
            "[".repeat(100),
            "]".repeat(100)
        );
        let msg = refused(&deep);
        assert!(
            msg.contains("line 4") && msg.contains("deeper than 64"),
            "{msg}"
        );
        // A key's block scalar inside an entry is bound by the key.
        let keyed = format!(
            "a:\n  - k: |\n      text\n    j: {}{}\n",
            "[".repeat(100),
            "]".repeat(100)
        );
        assert!(refused(&keyed).contains("line 4"));
    }

    #[test]
    fn many_balanced_brackets_in_text_are_not_counted_together() {
        // The rough count tracks depth (open and close), not how many.
        let mut text = String::from("client_keys:\n");
        for n in 0..1000 {
            text.push_str(&format!(
                "  - name: \"k{{}}{n}\"\n    models: [\"a{{[]}}\", 'b{{}}']\n    notes: |\n      {{}} [] {{{{}}}}\n"
            ));
        }
        check(&text).unwrap();
        rough(&text).unwrap();
        // Deep nesting is still refused by both counts.
        let n = 300;
        let deep = format!("{text}x: {}{}\n", "[".repeat(n), "]".repeat(n));
        assert!(refused(&deep).contains("deeper than 64"));
        assert!(
            rough(&deep)
                .unwrap_err()
                .to_string()
                .contains("deeper than 256")
        );
    }

    #[test]
    fn ordinary_files_pass() {
        let text = "# comment [[[\nproviders:\n  - name: openai-main\n    kind: openai\n    keys:\n      - name: a\n        secret: \"sk-[{\"\n        weight: 3\n    model_map: { fast: gpt-4o-mini }\nclient_keys:\n  - {name: k, models: [\"gpt-*\"], limits: { rpm: 600 }}\n---\nteams: []\n";
        check(text).unwrap();
        let nested = format!(
            "a: {}1{}\n",
            "{a: ".repeat(MAX_DEPTH - 1),
            "}".repeat(MAX_DEPTH - 1)
        );
        check(&nested).unwrap();
    }
}
