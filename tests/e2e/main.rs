//! The e2e suite: real `docker buildx build` through real BuildKit with
//! `# syntax=strata:dev`, then checks on the image. One binary, a module
//! per feature, over an engine matrix (`STRATA_LANE`):
//!
//! - `containerd` (default): Docker 28.5, containerd image store (MergeOp,
//!   multi-platform export, attestations); every test.
//! - `classic`: Docker 28.5 with the classic store (no MergeOp), a second
//!   daemon on its own socket (`STRATA_E2_NAME=classic scripts/engine2.sh`).
//! - `old`: Debian 12's Docker 20.10, BuildKit v0.8 (`scripts/old-engine.sh`).
//!
//! A test names the engine features it needs with `gate!(...)`; on a lane
//! without them it is skipped and says why, as BuildKit's integration tests
//! do with `CheckFeatureCompat`. Without any engine the tests skip locally
//! and fail under `CI=true`.

#[macro_use]
mod common;
mod llbsolve;

mod args;
mod caches;
mod context;
mod core;
mod eject;
mod errors;
mod examples;
mod init;
mod layers;
mod llb;
mod named;
mod platform;
mod python;
mod reliability;
mod reproducible;
mod sbom;
mod ssh;
mod subrequests;
mod system;
mod targets;
mod team;
