//! Our small LLB graph builder on BuildKit's own protobuf types.
//!
//! Ops are marshalled the way Go's protobuf does it (see `encode`), hashed
//! with sha256, and deduplicated by digest, so the same sub-graph reached
//! from two stages is one vertex. The definition lists ops in insertion
//! order (inputs always come first) and ends with the terminal op, so the
//! same plan always gives the same bytes.

mod encode;
pub mod fileop;
pub mod lower;

use std::collections::{BTreeMap, HashSet};

use bollard_buildkit_proto::pb;
use sha2::{Digest as _, Sha256};

pub use encode::marshal_op;

/// One output of a vertex: what another op takes as an input.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Output {
    pub digest: String,
    pub index: i64,
}

/// A 1-based inclusive line range in the spec, for BuildKit source maps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lines {
    pub start: (usize, usize),
    pub end: (usize, usize),
}

#[derive(Default)]
pub struct Graph {
    ops: Vec<Vec<u8>>,
    /// Each op's digest, in `ops`' order, and the digests of its inputs.
    order: Vec<(String, Vec<String>)>,
    seen: HashSet<String>,
    metadata: BTreeMap<String, pb::OpMetadata>,
    locations: BTreeMap<String, Vec<Lines>>,
}

pub fn digest_of(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let sum = Sha256::digest(bytes);
    let mut s = String::with_capacity(71);
    s.push_str("sha256:");
    for b in sum {
        s.push(HEX[usize::from(b >> 4)] as char);
        s.push(HEX[usize::from(b & 15)] as char);
    }
    s
}

impl Graph {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds an op (or finds it, if an identical op exists) and returns its
    /// first output. `name` is what `docker buildx build` progress shows.
    pub fn add(&mut self, op: pb::Op, name: &str, lines: Option<Lines>) -> Output {
        self.add_with(op, name, lines, false)
    }

    /// `add`, optionally marking the op to ignore the cache (`no-cache`).
    pub fn add_with(&mut self, op: pb::Op, name: &str, lines: Option<Lines>, ignore_cache: bool) -> Output {
        let bytes = marshal_op(&op);
        let digest = digest_of(&bytes);
        if self.seen.insert(digest.clone()) {
            self.ops.push(bytes);
            self.order.push((digest.clone(), op.inputs.iter().map(|i| i.digest.clone()).collect()));
            if !name.is_empty() || ignore_cache {
                let mut meta = pb::OpMetadata { ignore_cache, ..Default::default() };
                if !name.is_empty() {
                    meta.description.insert("llb.customname".into(), name.to_string());
                }
                self.metadata.insert(digest.clone(), meta);
            }
        }
        if let Some(l) = lines {
            let locs = self.locations.entry(digest.clone()).or_default();
            if !locs.contains(&l) {
                locs.push(l);
            }
        }
        Output { digest, index: 0 }
    }

    /// Adds every op of another definition (a client's input, a context's
    /// source) as it is, with its metadata, and returns its result: the
    /// terminal op's input. `None` for a definition with no result.
    pub fn splice(&mut self, def: &pb::Definition) -> Option<Output> {
        use prost::Message as _;
        let last = def.def.last()?;
        let terminal = pb::Op::decode(last.as_slice()).ok()?;
        let result = terminal.inputs.first().filter(|_| terminal.op.is_none())?;
        for bytes in &def.def[..def.def.len() - 1] {
            let digest = digest_of(bytes);
            if self.seen.insert(digest.clone()) {
                let inputs = pb::Op::decode(bytes.as_slice()).map(|o| o.inputs.into_iter().map(|i| i.digest).collect()).unwrap_or_default();
                self.ops.push(bytes.clone());
                self.order.push((digest.clone(), inputs));
                if let Some(m) = def.metadata.get(&digest) {
                    self.metadata.insert(digest, m.clone());
                }
            }
        }
        Some(Output { digest: result.digest.clone(), index: result.index })
    }

    /// The definition whose result is `result`, with the spec attached as
    /// the source map so failing steps point at their spec lines.
    ///
    /// Only the ops the result needs are in it, in the order they were
    /// added: lowering may make ops that end up unused (a merge folded into
    /// a bigger one).
    pub fn definition(mut self, result: &Output, source: Option<(&str, &str)>) -> pb::Definition {
        let mut needed: HashSet<String> = HashSet::new();
        let deps: std::collections::HashMap<&str, &[String]> = self.order.iter().map(|(d, i)| (d.as_str(), i.as_slice())).collect();
        let mut todo = vec![result.digest.clone()];
        while let Some(d) = todo.pop() {
            if let Some(inputs) = deps.get(d.as_str()) {
                todo.extend(inputs.iter().filter(|i| !needed.contains(*i)).cloned());
            }
            needed.insert(d);
        }
        let keep: Vec<bool> = self.order.iter().map(|(d, _)| needed.contains(d)).collect();
        let mut k = keep.iter();
        self.ops.retain(|_| *k.next().unwrap_or(&true));
        self.metadata.retain(|d, _| needed.contains(d));
        self.locations.retain(|d, _| needed.contains(d));
        let terminal = pb::Op { inputs: vec![input(result)], ..Default::default() };
        let bytes = marshal_op(&terminal);
        let digest = digest_of(&bytes);
        if self.seen.insert(digest) {
            self.ops.push(bytes);
        }
        let source = source.map(|(filename, data)| pb::Source {
            infos: vec![pb::SourceInfo {
                filename: filename.to_string(),
                data: data.as_bytes().to_vec(),
                definition: None,
                language: "TOML".into(),
            }],
            locations: self
                .locations
                .iter()
                .map(|(d, lines)| {
                    let ranges = lines
                        .iter()
                        .map(|l| pb::Range {
                            start: Some(pb::Position { line: l.start.0 as i32, character: l.start.1 as i32 }),
                            end: Some(pb::Position { line: l.end.0 as i32, character: l.end.1 as i32 }),
                        })
                        .collect();
                    (d.clone(), pb::Locations { locations: vec![pb::Location { source_index: 0, ranges }] })
                })
                .collect(),
        });
        pb::Definition { def: self.ops, metadata: self.metadata, source }
    }
}

impl From<&crate::platform::Platform> for pb::Platform {
    fn from(p: &crate::platform::Platform) -> Self {
        pb::Platform { os: p.os.clone(), architecture: p.architecture.clone(), variant: p.variant.clone(), ..Default::default() }
    }
}

impl From<&pb::Platform> for crate::platform::Platform {
    fn from(p: &pb::Platform) -> Self {
        crate::platform::Platform { os: p.os.clone(), architecture: p.architecture.clone(), variant: p.variant.clone() }
    }
}

/// A state of one file on scratch (what an attestation's ref holds).
pub fn single_file(path: &str, data: Vec<u8>, platform: Option<pb::Platform>, name: &str) -> pb::Definition {
    let mut f = fileop::FileOp::new();
    f.mkfile(fileop::On::Scratch, format!("/{}", path.trim_start_matches('/')), data);
    let mut g = Graph::new();
    let out = g.add(f.finish(platform), name, None);
    g.definition(&out, None)
}

/// The source op of an image (`docker-image://…`), as every stage on it
/// starts: the same bytes, so the same vertex.
pub fn image_op(source: &str, platform: Option<pb::Platform>, resolve_mode: Option<&str>) -> pb::Op {
    let mut attrs = BTreeMap::new();
    if let Some(mode) = resolve_mode.filter(|m| *m != "default") {
        attrs.insert("image.resolvemode".to_string(), mode.to_string());
    }
    pb::Op {
        platform,
        op: Some(pb::op::Op::Source(pb::SourceOp { identifier: format!("docker-image://{source}"), attrs })),
        ..Default::default()
    }
}

/// A definition of an image alone.
pub fn image_definition(source: &str, platform: Option<pb::Platform>, resolve_mode: Option<&str>, name: &str) -> pb::Definition {
    let mut g = Graph::new();
    let out = g.add(image_op(source, platform, resolve_mode), name, None);
    g.definition(&out, None)
}

pub fn input(o: &Output) -> pb::Input {
    pb::Input { digest: o.digest.clone(), index: o.index }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identical_ops_are_one_vertex() {
        let mut g = Graph::new();
        let src = || pb::Op {
            op: Some(pb::op::Op::Source(pb::SourceOp {
                identifier: "docker-image://docker.io/library/busybox:latest".into(),
                attrs: Default::default(),
            })),
            ..Default::default()
        };
        let a = g.add(src(), "base", None);
        let b = g.add(src(), "base", None);
        assert_eq!(a, b);
        let def = g.definition(&a, None);
        assert_eq!(def.def.len(), 2, "source + terminal");
    }
}
