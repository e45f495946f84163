//! Any bytes as a strata.toml: read, plan every target, lower each to LLB,
//! lint. An error must carry a span inside the source and render; nothing
//! may panic, hang (libFuzzer's -timeout) or allocate past the bound
//! (-malloc_limit_mb), which scripts/fuzz.sh sets.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::collections::BTreeMap;

fuzz_target!(|data: &[u8]| {
    // The CLI and the frontend reject non-UTF-8 before parsing.
    let Ok(src) = std::str::from_utf8(data) else { return };
    let args: BTreeMap<String, String> = [("BASE".to_string(), "x:1".to_string())].into();
    match strata::spec::load(src, &args) {
        Err(d) => {
            assert!(d.span.start <= src.len() && d.span.end <= src.len(), "span {:?} outside {} bytes", d.span, src.len());
            let _ = strata::diag::SpecError::new("f.toml", src, d).to_string();
        }
        Ok(spec) => {
            let plan = strata::plan::build(&spec, &[]);
            for (name, _) in plan.targets() {
                let idx = plan.stage_index(name).unwrap();
                let inputs =
                    strata::llb::lower::Inputs::offline(strata::platform::parse("linux/amd64").unwrap(), Some(("f.toml", src)), true);
                let _ = strata::llb::lower::lower(&plan, &inputs, idx);
            }
            let _ = strata::lint::check(&spec, src, &[]);
        }
    }
});
