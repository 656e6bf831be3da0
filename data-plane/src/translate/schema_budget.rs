//! How much walking an app's JSON schemas may produce for one request, all
//! its schemas together: the codecs that rewrite schemas for their provider
//! (Gemini's `$ref` inlining, Anthropic's structured outputs) charge every
//! node and byte they make here, so a small schema whose definitions refer
//! to each other twice per level cannot expand to 2^depth nodes.

use crate::translate::ir::Unsupported;

const MAX_SCHEMA_NODES: usize = 20_000;
const MAX_SCHEMA_BYTES: usize = 4 * 1024 * 1024;

#[derive(Debug)]
pub struct SchemaBudget {
    nodes: usize,
    bytes: usize,
    /// What is walked, for the refusal: "the tool schemas, with their
    /// $refs inlined for Gemini,".
    what: &'static str,
}

impl SchemaBudget {
    pub fn new(what: &'static str) -> Self {
        Self {
            nodes: MAX_SCHEMA_NODES,
            bytes: MAX_SCHEMA_BYTES,
            what,
        }
    }

    /// Takes `nodes` and `bytes` made at `at`, or refuses the request there.
    pub fn spend(&mut self, nodes: usize, bytes: usize, at: &str) -> Result<(), Unsupported> {
        match (self.nodes.checked_sub(nodes), self.bytes.checked_sub(bytes)) {
            (Some(n), Some(b)) => {
                self.nodes = n;
                self.bytes = b;
                Ok(())
            }
            _ => Err(Unsupported::invalid(
                at,
                format!("{} exceed 20,000 nodes or 4 MiB", self.what),
            )),
        }
    }
}
