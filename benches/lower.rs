//! spec → plan → LLB for a 200-step spec (target: < 5 ms).
//! `cargo bench --bench lower`

use std::collections::BTreeMap;

use criterion::{criterion_group, criterion_main, Criterion};

fn spec_200() -> String {
    let mut s = String::from(
        "version = 1\n[image]\nbase = \"python:3.12-slim\"\n[system]\npackages = [\"libpq5\"]\nbuild-packages = [\"gcc\"]\n[python]\nrequirements = [\"requirements.txt\"]\n[app]\ncopy = [\"src/\", \"templates/\"]\n",
    );
    for i in 0..200 {
        s.push_str(&format!("[[step]]\nname = \"s{i}\"\nrun = \"make -C part{i}\"\ninputs = [\"part{i}/\"]\noutputs = [\"part{i}/out\"]\ncaches = [\"ccache\"]\n"));
        if i % 10 != 0 {
            s.push_str(&format!("after = [\"s{}\"]\n", i - 1));
        }
    }
    s
}

fn lower(src: &str) -> usize {
    let spec = strata::spec::load(src, &BTreeMap::new()).unwrap();
    let plan = strata::plan::build(&spec, &[]);
    let inputs = strata::llb::lower::Inputs {
        resolve_mode: Some("local".into()),
        session: Some("session".into()),
        ..strata::llb::lower::Inputs::offline(strata::platform::parse("linux/amd64").unwrap(), Some(("strata.toml", src)), true)
    };
    let def = strata::llb::lower::lower(&plan, &inputs, plan.target).definition;
    prost::Message::encoded_len(&def)
}

fn bench(c: &mut Criterion) {
    let src = spec_200();
    assert!(lower(&src) > 0);
    c.bench_function("spec→LLB, 200 steps", |b| b.iter(|| lower(std::hint::black_box(&src))));
}

criterion_group!(benches, bench);
criterion_main!(benches);
