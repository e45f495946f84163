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
                        data: e.source.as_bytes().to_vec(),
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
