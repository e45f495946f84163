//! Marshalling ops byte-for-byte as BuildKit's Go code does.
//!
//! BuildKit re-marshals every op it receives and keys the vertex by the
//! digest of its own bytes; when ours differ, per-op source maps and
//! progress no longer line up with our digests. prost differs from Go's
//! protobuf in two ways that matter for LLB:
//!
//! 1. Go writes a oneof field after all regular fields (`Op.platform`,
//!    `Op.constraints` come before the `op` oneof); prost writes in tag
//!    order.
//! 2. Go's deterministic marshalling writes both key and value of every map
//!    entry and sorts by key; prost omits empty keys/values.
//!
//! Only `Op` (oneof after tags 10/11) and `SourceOp.attrs` (a map) are
//! affected; every other message in an op already encodes identically.

use bollard_buildkit_proto::pb;
use prost::encoding::{encode_key, encode_varint, encoded_len_varint, WireType};
use prost::Message;

pub fn marshal_op(op: &pb::Op) -> Vec<u8> {
    let head = pb::Op { inputs: op.inputs.clone(), platform: op.platform.clone(), constraints: op.constraints.clone(), op: None };
    let mut buf = head.encode_to_vec();
    match &op.op {
        None => {}
        Some(pb::op::Op::Source(s)) => {
            let body = marshal_source(s);
            encode_key(3, WireType::LengthDelimited, &mut buf);
            encode_varint(body.len() as u64, &mut buf);
            buf.extend_from_slice(&body);
        }
        Some(other) => other.encode(&mut buf),
    }
    buf
}

fn marshal_source(s: &pb::SourceOp) -> Vec<u8> {
    let mut buf = Vec::new();
    if !s.identifier.is_empty() {
        prost::encoding::string::encode(1, &s.identifier, &mut buf);
    }
    // BTreeMap iterates in key order: Go's deterministic order.
    for (k, v) in &s.attrs {
        let entry_len = string_field_len(1, k) + string_field_len(2, v);
        encode_key(2, WireType::LengthDelimited, &mut buf);
        encode_varint(entry_len as u64, &mut buf);
        prost::encoding::string::encode(1, k, &mut buf);
        prost::encoding::string::encode(2, v, &mut buf);
    }
    buf
}

fn string_field_len(tag: u32, s: &str) -> usize {
    prost::encoding::key_len(tag) + encoded_len_varint(s.len() as u64) + s.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    #[test]
    fn oneof_goes_after_platform_like_go() {
        let op = pb::Op {
            inputs: vec![],
            platform: Some(pb::Platform { architecture: "amd64".into(), os: "linux".into(), ..Default::default() }),
            constraints: None,
            op: Some(pb::op::Op::Source(pb::SourceOp { identifier: "local://x".into(), attrs: Default::default() })),
        };
        // 52 0f (platform, tag 10) ... then 1a (source, tag 3) last.
        assert_eq!(hex(&marshal_op(&op)), "520e0a05616d64363412056c696e75781a0b0a096c6f63616c3a2f2f78");
    }

    #[test]
    fn map_entries_keep_empty_values() {
        let mut attrs = std::collections::BTreeMap::new();
        attrs.insert("b".to_string(), "".to_string());
        attrs.insert("a".to_string(), "1".to_string());
        let s = pb::SourceOp { identifier: "i".into(), attrs };
        // sorted: a=1 first; b keeps its empty value (12 00)
        assert_eq!(hex(&marshal_source(&s)), "0a016912060a016112013112050a01621200");
    }

    #[test]
    fn other_ops_encode_as_prost_does() {
        let op = pb::Op {
            inputs: vec![pb::Input { digest: "sha256:ab".into(), index: 0 }],
            platform: None,
            constraints: None,
            op: Some(pb::op::Op::Merge(pb::MergeOp { inputs: vec![pb::MergeInput { input: 0 }] })),
        };
        assert_eq!(marshal_op(&op), op.encode_to_vec());
    }
}
