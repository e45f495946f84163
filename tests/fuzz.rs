//! Property test over the parser and planner: any input, however mangled,
//! gives a spec or an error with a span inside the source, never a panic
//! or a hang. Bounded in time so it runs in CI; seeded, so a failure
//! reproduces (`STRATA_FUZZ_SEED`, `STRATA_FUZZ_SECS`).

#[path = "support/exercise.rs"]
mod support;
use std::path::Path;
use std::time::{Duration, Instant};
use support::exercise;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn corpus() -> Vec<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut out = Vec::new();
    for dir in ["tests/bad-specs", "examples"] {
        let mut stack = vec![root.join(dir)];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).unwrap().flatten() {
                let p = e.path();
                if p.is_dir() && !p.ends_with("wheels") && !p.ends_with("cran") {
                    stack.push(p);
                } else if p.extension().is_some_and(|x| x == "toml") {
                    // some bad specs are not UTF-8 on purpose
                    out.push(String::from_utf8_lossy(&std::fs::read(&p).unwrap()).into_owned());
                }
            }
        }
    }
    out.sort();
    out
}

const TOKENS: &[&str] = &[
    "[",
    "]",
    "[[step]]",
    "{",
    "}",
    "=",
    "\"",
    "'",
    "\n",
    "${",
    "}",
    "$${",
    "..",
    "/",
    "\\",
    "\0",
    "é",
    "🦀",
    "x-",
    "after = [\"a\"]",
    "if = \"!X\"",
    "[variants.v]",
    "base = \"${BASE}\"",
    "0o777",
    "1e999",
    "-1",
    "true",
    "\"\"\"",
    "[caches.apt]",
    "outputs = [\"/\"]",
];

fn mutate(rng: &mut Rng, s: &str) -> Vec<u8> {
    let mut b = s.as_bytes().to_vec();
    for _ in 0..1 + rng.below(6) {
        let at = rng.below(b.len() + 1);
        match rng.below(5) {
            0 => b.truncate(at),
            1 => {
                let t = TOKENS[rng.below(TOKENS.len())].as_bytes();
                b.splice(at..at, t.iter().copied());
            }
            2 if !b.is_empty() => {
                let i = rng.below(b.len());
                b[i] = rng.next() as u8;
            }
            3 if at < b.len() => {
                let end = (at + rng.below(40)).min(b.len());
                let chunk: Vec<u8> = b[at..end].to_vec();
                b.splice(at..at, chunk);
            }
            _ => {
                let end = (at + rng.below(20)).min(b.len());
                b.drain(at..end);
            }
        }
    }
    b
}

#[test]
fn mangled_specs_never_panic() {
    let seed: u64 = std::env::var("STRATA_FUZZ_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(0x5eed_1234);
    let secs: u64 = std::env::var("STRATA_FUZZ_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(10);
    let corpus = corpus();
    assert!(corpus.len() > 40);
    let mut rng = Rng(seed);
    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut n = 0u64;
    while Instant::now() < deadline {
        let base = &corpus[rng.below(corpus.len())];
        let bytes = mutate(&mut rng, base);
        // Non-UTF-8 is rejected before parsing (by the CLI and frontend);
        // lossy conversion keeps the mangled shape for the parser.
        let src = String::from_utf8_lossy(&bytes);
        let t = Instant::now();
        exercise(&src);
        assert!(t.elapsed() < Duration::from_secs(2), "input took {:?} (seed {seed}, case {n}):\n{src}", t.elapsed());
        n += 1;
    }
    eprintln!("fuzz: {n} cases in {secs}s, seed {seed}");
    assert!(n > 1000, "too few cases ran: {n}");
}

#[test]
fn huge_and_deep_inputs_are_bounded() {
    // Deep nesting: the TOML parser must not overflow the stack.
    for depth in [100, 10_000] {
        let src = format!("version = 1\nx = {}{}\n[image]\nbase = \"x:1\"\n", "[".repeat(depth), "]".repeat(depth));
        let t = Instant::now();
        std::thread::Builder::new().stack_size(2 << 20).spawn(move || exercise(&src)).unwrap().join().expect("no panic on deep nesting");
        assert!(t.elapsed() < Duration::from_secs(5));
    }
    // Many steps and a long spec.
    let mut src = String::from("version = 1\n[image]\nbase = \"x:1\"\n");
    for i in 0..2000 {
        src.push_str(&format!("[[step]]\nname = \"s{i}\"\nrun = \"echo {i}\"\ninputs = [\"in{i}\"]\noutputs = [\"out{i}\"]\n"));
        if i > 0 {
            src.push_str(&format!("after = [\"s{}\"]\n", i - 1));
        }
    }
    let t = Instant::now();
    exercise(&src);
    assert!(t.elapsed() < Duration::from_secs(10), "2000 chained steps took {:?}", t.elapsed());
}
