//! Whether a spooled payload is a `TraceRecord` the control plane will
//! decode, checked without decoding it (no allocation): every field of
//! trace.proto with the wire type its declaration gives, every string
//! field UTF-8, every attempt likewise; unknown fields of any wire type but
//! groups are skipped, as prost skips them (prost skips unknown groups
//! too, but no proto3 writer makes one: here a group is damage, counted
//! lost, the safe side). The shipper sends payloads as
//! they are, and one the control plane cannot decode fails its whole batch,
//! so such a payload is counted lost here instead (the writer never makes
//! one: this stands against a damaged or foreign spool file whose
//! checksums happen to hold).

use bytes::Buf;
use prost::encoding::{WireType, decode_key, decode_varint};

/// What a declared field holds.
#[derive(Clone, Copy)]
enum Field {
    Varint,
    Double,
    Text,
    Attempt,
}

/// `TraceRecord`'s fields (proto/proto/trace.proto).
fn record_field(tag: u32) -> Option<Field> {
    Some(match tag {
        1 | 3..=7 | 16 | 17 | 19..=21 | 23..=25 => Field::Text,
        2 | 8..=14 | 18 => Field::Varint,
        15 => Field::Double,
        22 => Field::Attempt,
        _ => return None,
    })
}

/// `Attempt`'s fields.
fn attempt_field(tag: u32) -> Option<Field> {
    Some(match tag {
        1 | 2 | 5 => Field::Text,
        3 | 4 | 6 => Field::Varint,
        _ => return None,
    })
}

/// Whether `payload` decodes as a `TraceRecord`.
pub fn is_record(payload: &[u8]) -> bool {
    fields_valid(payload, record_field)
}

fn fields_valid(mut buf: &[u8], schema: fn(u32) -> Option<Field>) -> bool {
    while buf.has_remaining() {
        let Ok((tag, wire)) = decode_key(&mut buf) else {
            return false;
        };
        let field = schema(tag);
        let expected = match field {
            Some(Field::Varint) => Some(WireType::Varint),
            Some(Field::Double) => Some(WireType::SixtyFourBit),
            Some(Field::Text | Field::Attempt) => Some(WireType::LengthDelimited),
            None => None,
        };
        if expected.is_some_and(|w| w != wire) {
            return false;
        }
        let len = match wire {
            WireType::Varint => match decode_varint(&mut buf) {
                Ok(_) => continue,
                Err(_) => return false,
            },
            WireType::SixtyFourBit => 8,
            WireType::ThirtyTwoBit => 4,
            WireType::LengthDelimited => match decode_varint(&mut buf) {
                Ok(n) => n,
                Err(_) => return false,
            },
            WireType::StartGroup | WireType::EndGroup => return false,
        };
        let Some(value) = usize::try_from(len).ok().and_then(|n| buf.get(..n)) else {
            return false;
        };
        let ok = match field {
            Some(Field::Text) => std::str::from_utf8(value).is_ok(),
            Some(Field::Attempt) => fields_valid(value, attempt_field),
            _ => true,
        };
        if !ok {
            return false;
        }
        buf.advance(value.len());
    }
    true
}

#[cfg(test)]
mod tests {
    use aigw_proto::pb::trace::{Attempt, TraceRecord};
    use prost::Message;

    use super::*;

    /// The check says what prost's decode says, for whole records and for
    /// what a damaged or foreign file could hold.
    #[test]
    fn a_payload_passes_exactly_when_the_control_plane_can_decode_it() {
        let full = TraceRecord {
            request_id: "r1".into(),
            started_at_ms: 1_700_000_000_000,
            client_key_id: "k".into(),
            model: "gpt-4o-mini".into(),
            status: 200,
            latency_us: 1234,
            input_tokens: 10,
            cost: 0.5,
            region: "eu".into(),
            stream: true,
            attempts: vec![Attempt {
                provider: "p".into(),
                provider_key: "k1".into(),
                status: 502,
                latency_us: 9,
                error: "bad gateway".into(),
                cooldown_ms: 30_000,
            }],
            dropped_fields: vec!["a.b".into(), "c".into()],
            usage_source: "estimated_broken".into(),
            ..Default::default()
        }
        .encode_to_vec();
        let mut unknown = full.clone();
        unknown.extend_from_slice(&[0xf8, 0x01, 0x05, 0xfd, 0x01, 1, 2, 3, 4]);
        let cases: Vec<(&str, Vec<u8>)> = vec![
            ("a whole record", full.clone()),
            ("an empty record", vec![]),
            ("unknown fields, skipped", unknown),
            ("request_id not UTF-8", vec![0x0a, 0x02, 0xff, 0xfe]),
            ("request_id as a varint", vec![0x08, 0x01]),
            ("cost as a varint", vec![0x78, 0x01]),
            ("status as a string", vec![0x42, 0x01, b'x']),
            ("an attempt cut short", vec![0xb2, 0x01, 0x02, 0x0a, 0x05]),
            (
                "an attempt's error not UTF-8",
                vec![0xb2, 0x01, 0x04, 0x2a, 0x02, 0xc3, 0x28],
            ),
            ("a dropped field not UTF-8", vec![0xba, 0x01, 0x01, 0x80]),
            ("a length past the end", vec![0x0a, 0x09, b'a']),
            ("a group", vec![0x0b]),
            ("field number 0", vec![0x00]),
            ("a varint that never ends", vec![0x10, 0xff, 0xff]),
            ("a whole record cut short", full[..full.len() - 3].to_vec()),
        ];
        for (what, payload) in cases {
            let decodes = TraceRecord::decode(payload.as_slice()).is_ok();
            assert_eq!(
                is_record(&payload),
                decodes,
                "{what}: prost decodes it: {decodes}"
            );
        }
    }
}
