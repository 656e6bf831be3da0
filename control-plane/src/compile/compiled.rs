//! A compiled snapshot as the control plane keeps it: the core (everything
//! but the client keys) and the keys, sorted by name, each behind an `Arc`
//! so that the versions kept for deltas share the keys they have in common
//! instead of holding a copy each. Its whole encoding is made once and sent
//! as is to every data plane that needs it.

use std::sync::{Arc, OnceLock};

use aigw_proto::pb::config as pb;
use aigw_proto::wire;
use bytes::Bytes;
use prost::Message as _;
use ring::digest::{Context, SHA256};

/// One version of the configuration.
#[derive(Debug)]
pub struct Compiled {
    /// Everything but the client keys; `client_keys` is empty, `version` set.
    pub core: pb::Snapshot,
    /// Sorted by name.
    pub keys: Arc<[Arc<pb::ClientKey>]>,
    /// SHA-256 of the core without its version: whether two versions
    /// differ in more than their keys.
    pub core_digest: [u8; 32],
    /// Length of the whole encoding.
    pub encoded_len: usize,
    whole: OnceLock<Bytes>,
}

impl Compiled {
    /// Versions `core` + `keys`: the version is the hex SHA-256 of the whole
    /// snapshot's encoding with the version empty (prost's bytes, written in
    /// parts without assembling them).
    pub fn new(mut core: pb::Snapshot, keys: Arc<[Arc<pb::ClientKey>]>) -> Self {
        core.version.clear();
        core.client_keys.clear();
        let core_digest = digest_of(&core.encode_to_vec());
        let mut whole = Context::new(&SHA256);
        let mut encoded_len = 0;
        wire::encode_whole(&core, keys.iter().map(|k| &**k), &mut |b| {
            encoded_len += b.len();
            whole.update(b);
        });
        core.version = hex::encode(whole.finish());
        // The version field itself, now set: tag, length and 64 characters.
        encoded_len += 2 + core.version.len();
        Self {
            core,
            keys,
            core_digest,
            encoded_len,
            whole: OnceLock::new(),
        }
    }

    pub fn version(&self) -> &str {
        &self.core.version
    }

    /// The whole snapshot's encoding, made on first use.
    pub fn whole(&self) -> Bytes {
        self.whole
            .get_or_init(|| {
                Bytes::from(wire::encode_whole_to_vec(
                    &self.core,
                    self.keys.iter().map(|k| &**k),
                ))
            })
            .clone()
    }

    /// The whole snapshot as one message (tests, and callers that need the
    /// keys in a `pb::Snapshot`).
    pub fn to_pb(&self) -> pb::Snapshot {
        pb::Snapshot {
            client_keys: self.keys.iter().map(|k| (**k).clone()).collect(),
            ..self.core.clone()
        }
    }
}

fn digest_of(bytes: &[u8]) -> [u8; 32] {
    let d = ring::digest::digest(&SHA256, bytes);
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_and_bytes_are_prost_own() {
        let keys: Vec<Arc<pb::ClientKey>> = (0..3u8)
            .map(|i| {
                Arc::new(pb::ClientKey {
                    id: format!("id{i}"),
                    name: format!("k{i}"),
                    key_hash: vec![i; 32],
                    ..Default::default()
                })
            })
            .collect();
        let core = pb::Snapshot {
            pricing: vec![pb::Price {
                model: "m".into(),
                ..Default::default()
            }],
            routes: vec![pb::Route {
                model: "r".into(),
                ..Default::default()
            }],
            ..Default::default()
        };
        let c = Compiled::new(core, keys.into());
        let mut whole = c.to_pb();
        assert_eq!(c.whole().as_ref(), whole.encode_to_vec().as_slice());
        assert_eq!(c.encoded_len, c.whole().len());
        whole.version.clear();
        assert_eq!(c.version(), hex::encode(digest_of(&whole.encode_to_vec())));
    }
}
