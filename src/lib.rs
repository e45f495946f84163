//! strata: one declarative `strata.toml` in, optimized BuildKit LLB out.
//!
//! Pipeline (see ARCHITECTURE.md): `spec` (parse + validate, spans kept) →
//! `plan` (stages, layers, mounts, image config; no protobuf) → `llb`
//! (deterministic graph on BuildKit's pb types) → `frontend` (gateway
//! client) or `cli`.

pub mod cli;
pub mod context;
pub mod deps;
pub mod diag;
pub mod eject;
pub mod frontend;
pub mod image;
pub mod init;
pub mod lint;
pub mod llb;
pub mod plan;
pub mod platform;
pub mod reference;
pub mod request;
pub mod sbom;
pub mod spec;
pub mod timefmt;
