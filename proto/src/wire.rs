//! A whole snapshot's encoding, written and read in parts, so that neither
//! plane ever holds a second full copy of the client keys (the bulk of a
//! large snapshot) just to encode or decode it.
//!
//! The encoding is exactly prost's for a `Snapshot`: fields in tag order,
//! the client keys (tag 4) between pricing and routes. Writing it as the
//! core's fields below tag 4, then each key, then the core's fields above
//! gives the same bytes, so the version (a hash of those bytes) is the same
//! whichever way a snapshot was encoded.

use std::borrow::Borrow;

use prost::Message;
use prost::encoding::{DecodeContext, WireType, decode_key, decode_varint, skip_field};

use crate::pb::config as pb;

/// The field number of `Snapshot.client_keys`.
const KEYS_TAG: u32 = 4;

/// Why a whole snapshot did not decode.
#[derive(Debug, thiserror::Error)]
pub enum WireError<E> {
    #[error("the snapshot does not decode: {0}")]
    Decode(#[from] prost::DecodeError),
    #[error("the snapshot does not decode: a client key runs past its end")]
    Truncated,
    #[error(transparent)]
    Key(E),
}

/// Writes the whole snapshot `core` + `keys` to `sink`, piece by piece.
/// `core.client_keys` must be empty: the keys are `keys`, in their order.
pub fn encode_whole<K: Borrow<pb::ClientKey>>(
    core: &pb::Snapshot,
    keys: impl IntoIterator<Item = K>,
    sink: &mut impl FnMut(&[u8]),
) {
    debug_assert!(core.client_keys.is_empty(), "core carries client keys");
    let encoded = core.encode_to_vec();
    let split = first_field_above(&encoded, KEYS_TAG);
    let (head, tail) = encoded.split_at(split);
    sink(head);
    let mut buf = Vec::with_capacity(256);
    for k in keys {
        buf.clear();
        prost::encoding::message::encode(KEYS_TAG, k.borrow(), &mut buf);
        sink(&buf);
    }
    sink(tail);
}

/// The whole encoding in one buffer.
pub fn encode_whole_to_vec<K: Borrow<pb::ClientKey>>(
    core: &pb::Snapshot,
    keys: impl IntoIterator<Item = K>,
) -> Vec<u8> {
    let mut out = Vec::new();
    encode_whole(core, keys, &mut |b| out.extend_from_slice(b));
    out
}

/// Offset of the first field whose tag is above `tag` in a message we just
/// encoded ourselves (so well-formed); its length when there is none.
fn first_field_above(encoded: &[u8], tag: u32) -> usize {
    let mut buf = encoded;
    while !buf.is_empty() {
        let at = encoded.len() - buf.len();
        let Ok((t, wire_type)) = decode_key(&mut buf) else {
            return encoded.len();
        };
        if t > tag {
            return at;
        }
        if skip_field(wire_type, t, &mut buf, DecodeContext::default()).is_err() {
            return encoded.len();
        }
    }
    encoded.len()
}

/// Reads a whole snapshot, handing each client key to `key` as soon as it
/// is decoded (so only one key's message is alive at a time); returns the
/// rest (the core, `client_keys` empty).
pub fn decode_whole<E>(
    mut bytes: &[u8],
    mut key: impl FnMut(pb::ClientKey) -> Result<(), E>,
) -> Result<pb::Snapshot, WireError<E>> {
    let mut core = Vec::new();
    while !bytes.is_empty() {
        let start = bytes;
        let (tag, wire_type) = decode_key(&mut bytes)?;
        if tag == KEYS_TAG && wire_type == WireType::LengthDelimited {
            let len = usize::try_from(decode_varint(&mut bytes)?)
                .ok()
                .filter(|&n| n <= bytes.len())
                .ok_or(WireError::Truncated)?;
            let (one, rest) = bytes.split_at(len);
            key(pb::ClientKey::decode(one)?).map_err(WireError::Key)?;
            bytes = rest;
        } else {
            skip_field(wire_type, tag, &mut bytes, DecodeContext::default())?;
            let used = start.len() - bytes.len();
            core.extend_from_slice(&start[..used]);
        }
    }
    Ok(pb::Snapshot::decode(core.as_slice())?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot() -> pb::Snapshot {
        pb::Snapshot {
            version: "v1".into(),
            providers: vec![pb::Provider {
                name: "p".into(),
                kind: "openai".into(),
                ..Default::default()
            }],
            pricing: vec![pb::Price {
                model: "m".into(),
                input: 1.0,
                ..Default::default()
            }],
            client_keys: (0..3u8)
                .map(|i| pb::ClientKey {
                    id: format!("id{i}"),
                    name: format!("k{i}"),
                    key_hash: vec![i; 32],
                    limits: Some(pb::Limits {
                        rpm: Some(u64::from(i)),
                        ..Default::default()
                    }),
                    ..Default::default()
                })
                .collect(),
            routes: vec![pb::Route {
                model: "m*".into(),
                providers: vec!["p".into()],
                ..Default::default()
            }],
            budgets: vec![pb::Budget {
                id: "user:u".into(),
                ..Default::default()
            }],
            leases: vec![pb::Lease {
                budget: "user:u".into(),
                ..Default::default()
            }],
        }
    }

    #[test]
    fn parts_make_prost_own_bytes_and_read_back() {
        let whole = snapshot();
        let mut core = whole.clone();
        let keys = std::mem::take(&mut core.client_keys);
        let bytes = encode_whole_to_vec(&core, &keys);
        assert_eq!(bytes, whole.encode_to_vec());

        let mut seen = Vec::new();
        let back = decode_whole::<()>(&bytes, |k| {
            seen.push(k);
            Ok(())
        })
        .unwrap();
        assert_eq!((back, seen), (core.clone(), keys));

        // No keys, no routes: still prost's bytes.
        let bare = pb::Snapshot {
            version: "v".into(),
            ..Default::default()
        };
        assert_eq!(
            encode_whole_to_vec(&bare, Vec::<pb::ClientKey>::new()),
            bare.encode_to_vec()
        );
    }

    #[test]
    fn broken_input_is_an_error_and_keys_can_refuse() {
        let bytes = snapshot().encode_to_vec();
        for cut in [1, bytes.len() / 2, bytes.len() - 1] {
            assert!(
                decode_whole::<()>(&bytes[..cut], |_| Ok(())).is_err(),
                "{cut}"
            );
        }
        let refused = decode_whole(&bytes, |k| if k.name == "k1" { Err("no") } else { Ok(()) });
        assert!(matches!(refused, Err(WireError::Key("no"))));
    }
}
