//! The bad-spec corpus: every `tests/bad-specs/NAME.toml` must fail with
//! exactly the message in `NAME.err` (`FILE:LINE:COL: message`), never
//! panic. `STRATA_BLESS=1 cargo test --test bad_specs` writes missing
//! `.err` files (review them before committing).

use std::collections::BTreeMap;
use std::path::Path;

#[test]
fn every_bad_spec_fails_with_its_exact_message() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/bad-specs");
    let bless = std::env::var("STRATA_BLESS").is_ok();
    let mut cases: Vec<_> =
        std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).filter(|p| p.extension().is_some_and(|e| e == "toml")).collect();
    cases.sort();
    assert!(cases.len() >= 130, "the corpus must keep at least 130 cases, has {}", cases.len());
    let mut failures = Vec::new();
    for case in &cases {
        let name = case.file_name().unwrap().to_string_lossy().to_string();
        // Bytes, not text: some cases are not UTF-8 (they must fail at a
        // line and column too).
        let bytes = std::fs::read(case).unwrap();
        let got = match strata::spec::decode(&name, &bytes) {
            Err(e) => e.to_string(),
            Ok(source) => match strata::spec::load(&source, &BTreeMap::new()) {
                Ok(_) => format!("{name}: ACCEPTED (expected an error)"),
                Err(d) => strata::diag::SpecError::new(&name, &source, d).to_string(),
            },
        };
        let err_file = case.with_extension("err");
        match std::fs::read_to_string(&err_file) {
            Ok(want) if want.trim() == got => {}
            Ok(want) => failures.push(format!("{name}:\n  want: {}\n  got:  {got}", want.trim())),
            Err(_) if bless => std::fs::write(&err_file, format!("{got}\n")).unwrap(),
            Err(_) => failures.push(format!("{name}: no .err file (got: {got})")),
        }
    }
    assert!(failures.is_empty(), "{} of {} cases differ:\n{}", failures.len(), cases.len(), failures.join("\n"));
}
