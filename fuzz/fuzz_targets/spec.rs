//! Any bytes as a strata.toml, through the whole offline path (read, plan
//! every target, lower each to LLB, lint: tests/support/exercise.rs, which
//! the property test shares). Nothing may panic, hang (libFuzzer's
//! -timeout) or allocate past the bound (-malloc_limit_mb), which
//! scripts/fuzz.sh sets.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../../tests/support/exercise.rs"]
mod exercise;

fuzz_target!(|data: &[u8]| {
    // The CLI and the frontend reject non-UTF-8 before parsing.
    let Ok(src) = std::str::from_utf8(data) else { return };
    exercise::exercise(src);
});
