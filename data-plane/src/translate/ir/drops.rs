//! What a translation leaves out of an app's request ([`Drops`]): told to
//! the app in a response header and kept in the trace, or refused on a
//! strict route.

/// A field of the app's request the provider's format has no place for,
/// left out instead of refusing the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dropped {
    /// Its path, indexes generalized (`messages[*].content[*].cache_control`).
    pub field: String,
    /// `true`: it carries nothing at all for the target (metadata, `store`,
    /// cache breakpoints…) and is dropped on every route. `false`: a hint or
    /// client bookkeeping (context management, reasoning settings, hosted
    /// tools the target lacks…): dropped on lenient routes, refused on strict
    /// ones.
    pub always: bool,
}

/// Most distinct dropped fields kept per request: enough for every real
/// client, bounded whatever the body holds (paths are generalized, so a
/// thousand `cache_control`s are one entry).
pub(super) const MAX_DROPPED: usize = 64;

/// The fields dropped from one request, deduplicated and bounded.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Drops(Vec<Dropped>);

impl Drops {
    /// Carries nothing for the target: dropped on every route.
    pub fn advisory(&mut self, field: &str) {
        self.push(field, true);
    }

    /// A hint or client bookkeeping: dropped unless the route is strict.
    pub fn hint(&mut self, field: &str) {
        self.push(field, false);
    }

    fn push(&mut self, field: &str, always: bool) {
        let field = generalize(field);
        if let Some(d) = self.0.iter_mut().find(|d| d.field == field) {
            d.always &= always;
        } else if self.0.len() < MAX_DROPPED {
            self.0.push(Dropped { field, always });
        }
    }

    pub fn extend(&mut self, other: Drops) {
        for d in other.0 {
            self.push(&d.field, d.always);
        }
    }

    /// Renames the fields `name` gives another name (the app's own).
    pub fn rename(&mut self, name: impl Fn(&str) -> Option<&'static str>) {
        for d in &mut self.0 {
            if let Some(n) = name(&d.field) {
                d.field = n.to_string();
            }
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = &Dropped> {
        self.0.iter()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// What a strict route refuses: the first field that is not always dropped.
    pub fn strict_refusal(&self) -> Option<&Dropped> {
        self.0.iter().find(|d| !d.always)
    }

    /// Orders the drops by the body's top-level key they come from (as
    /// found within one key), so the header and the strict refusal name the
    /// same fields first whatever order the decoder met them or the client
    /// wrote its keys in.
    pub fn order_by_key(&mut self) {
        self.0
            .sort_by(|a, b| top_key(&a.field).cmp(top_key(&b.field)));
    }
}

/// `messages` of `messages[*].content[*].x`, `include` of `include (x)`.
fn top_key(path: &str) -> &str {
    path.split(['.', '[', ' ']).next().unwrap_or(path)
}

/// Longest path kept: paths can hold names from the request (a tool type).
pub(super) const MAX_FIELD_CHARS: usize = 120;

/// `messages[3].content[0].x` → `messages[*].content[*].x`, cut to
/// [`MAX_FIELD_CHARS`], printable ASCII only (it travels in a header).
fn generalize(path: &str) -> String {
    let mut out = String::with_capacity(path.len().min(MAX_FIELD_CHARS));
    let mut in_index = false;
    for c in path.chars().take(MAX_FIELD_CHARS) {
        let c = if c.is_ascii_graphic() || c == ' ' {
            c
        } else {
            '?'
        };
        match c {
            '[' => {
                in_index = true;
                out.push_str("[*");
            }
            ']' => {
                in_index = false;
                out.push(']');
            }
            d if in_index && (d.is_ascii_digit() || d == '*') => {}
            other => out.push(other),
        }
    }
    out
}
