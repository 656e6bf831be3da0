//! The dropped-field policy (docs/compatibility.md) for the fields of an
//! app's request a codec does not translate: a hint or client bookkeeping is
//! dropped and named (refused on strict routes), a field that carries
//! nothing for the target is always dropped and named, anything else would
//! change the answer and is refused, naming it.

use super::ir::{Drops, Unsupported};

/// A format's lists of what it may drop.
pub struct Policy {
    /// Dropped on lenient routes, refused on strict ones.
    pub hints: &'static [&'static str],
    /// Dropped on every route (lists a format may share with a sibling).
    pub advisory: &'static [&'static [&'static str]],
}

impl Policy {
    /// One field (by its name in the format) the codec neither translates
    /// nor handles itself.
    pub fn field(&self, name: &str, drops: &mut Drops) -> Result<(), Unsupported> {
        if self.hints.contains(&name) {
            drops.hint(name);
        } else if self.advisory.iter().any(|list| list.contains(&name)) {
            drops.advisory(name);
        } else {
            return Err(Unsupported::new(name, "translated"));
        }
        Ok(())
    }
}
