//! `docker buildx build --call targets|outline|check`.

use bollard_buildkit_proto::moby::buildkit::v1::frontend as gw;

use super::FrontendError;
use crate::{plan, spec};

pub fn answer(req: &str, _spec: &spec::Spec, _plan: &plan::Plan, _source: &str, _file: &str) -> Result<gw::Result, FrontendError> {
    Err(FrontendError::Other(format!("unsupported request \"{req}\"")))
}
