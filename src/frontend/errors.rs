//! Errors as the user of `docker buildx build` should see them.

use bollard_buildkit_proto::google::rpc::Status;
use bollard_buildkit_proto::pb;
use prost::Message;

use crate::diag::SpecError;

/// `errdefs.Source` from BuildKit's `solver/errdefs`: attaching it to an
/// error makes buildx print the spec lines, framed, like a Dockerfile error.
/// The crate does not ship errdefs, so it is declared here.
#[derive(Clone, PartialEq, Message)]
pub struct ErrdefsSource {
    #[prost(message, optional, tag = "1")]
    pub info: Option<pb::SourceInfo>,
    #[prost(message, repeated, tag = "2")]
    pub ranges: Vec<pb::Range>,
}

/// The spec text buildx frames under an error, bounded: the lines around
/// the range (blank lines before them, so line numbers stay right, nothing
/// after), each line cut at 512 bytes; no text when even the blank lines
/// would be large. Sending a whole large spec made buildx drop the stream
/// (COMPRESSION_ERROR) and the message with it.
pub fn framed_source(source: &str, start_line: usize, end_line: usize) -> Vec<u8> {
    const CONTEXT: usize = 4;
    const MAX_LINE: usize = 512;
    let first = start_line.saturating_sub(CONTEXT).max(1);
    let last = end_line.saturating_add(CONTEXT);
    if first > 64 * 1024 {
        return vec![];
    }
    let mut out = Vec::new();
    for (i, line) in source.split('\n').enumerate().take(last) {
        if i + 1 >= first {
            let mut cut = line.len().min(MAX_LINE);
            while !line.is_char_boundary(cut) {
                cut -= 1;
            }
            out.extend_from_slice(&line.as_bytes()[..cut]);
        }
        out.push(b'\n');
    }
    out
}

#[derive(Debug)]
pub enum FrontendError {
    /// Something wrong in the spec, at a place in it.
    Spec(SpecError),
    /// An engine call failed (a step failed, an image is missing, …).
    Engine(tonic::Status),
    Other(String),
}

impl From<tonic::Status> for FrontendError {
    fn from(s: tonic::Status) -> Self {
        FrontendError::Engine(s)
    }
}

impl FrontendError {
    pub fn into_status(self) -> Status {
        match self {
            FrontendError::Spec(e) => {
                let (sl, sc) = e.start();
                let (el, ec) = e.end();
                let src = ErrdefsSource {
                    info: Some(pb::SourceInfo {
                        filename: e.file.clone(),
                        data: framed_source(&e.source, sl, el),
                        definition: None,
                        language: "TOML".into(),
                    }),
                    ranges: vec![pb::Range {
                        start: Some(pb::Position { line: sl as i32, character: sc as i32 }),
                        end: Some(pb::Position { line: el as i32, character: ec as i32 }),
                    }],
                };
                Status {
                    // Unknown (2): buildx prints the message without a prefix.
                    code: 2,
                    message: e.to_string(),
                    details: vec![bollard_buildkit_proto::google::protobuf::Any {
                        type_url: "type.googleapis.com/errdefs.Source".into(),
                        value: src.encode_to_vec(),
                    }],
                }
            }
            // Forward the engine's status with its details unchanged: they
            // carry the failing step's log, vertex and source location.
            FrontendError::Engine(s) => match Status::decode(s.details()) {
                Ok(st) if !s.details().is_empty() => st,
                _ => Status { code: s.code() as i32, message: s.message().to_string(), details: vec![] },
            },
            FrontendError::Other(m) => Status { code: 2, message: m, details: vec![] },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::framed_source;

    #[test]
    fn framed_source_is_bounded_and_keeps_line_numbers() {
        let big: String = (1..=100_000).map(|i| format!("line {i} {}\n", "x".repeat(2000))).collect();
        let data = String::from_utf8(framed_source(&big, 500, 500)).unwrap();
        let lines: Vec<&str> = data.lines().collect();
        assert_eq!(lines.len(), 504);
        assert!(lines[..495].iter().all(|l| l.is_empty()));
        assert!(lines[499].starts_with("line 500 ") && lines[499].len() == 512);
        assert!(data.len() < 8 * 1024);
        assert!(framed_source(&big, 90_000, 90_000).is_empty(), "too far down: no text");
        assert_eq!(framed_source("a\nb\nc", 1, 1), b"a\nb\nc\n");
    }
}
