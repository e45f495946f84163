//! The whole offline path for one spec text: read it, plan every target,
//! lower each to LLB, lint. An error must carry a span inside the source
//! and render. Shared by the property test (tests/fuzz.rs) and the
//! cargo-fuzz target (fuzz/fuzz_targets/spec.rs); neither may panic here.

use std::collections::BTreeMap;

pub fn exercise(src: &str) {
    let args: BTreeMap<String, String> = [("BASE".to_string(), "x:1".to_string())].into();
    match strata::spec::load(src, &args) {
        Err(d) => {
            assert!(d.span.start <= src.len() && d.span.end <= src.len(), "span {:?} outside source of {} bytes", d.span, src.len());
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
}
