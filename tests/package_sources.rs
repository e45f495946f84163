//! Where packages come from: `[python] index-url` / `extra-index-urls`
//! (pip and uv against a real index over HTTP), the `apk` and `dnf`
//! managers, and the npm/cargo/go cache presets.

mod common;

use common::*;

/// Both installers fetch from the indexes the spec names: six from the
/// primary, itsdangerous from the extra index only. pip needs the http host
/// trusted (strata passes --trusted-host for http:// indexes it is given).
#[test]
fn index_url_and_extra_index_urls_with_pip_and_uv() {
    if !engine() {
        return;
    }
    for installer in ["pip", "uv"] {
        // primary: six (and uv, for uv's tool venv); extra: the flask set.
        let index = Index::start(&[("primary", repo().join("tests/fixtures/layers/wheels")), ("extra", repo().join("examples/python-web/wheels"))]);
        let p = Project::from_dir("tests/fixtures/indexes");
        let args = [
            "--build-arg".to_string(),
            format!("INSTALLER={installer}"),
            "--build-arg".to_string(),
            format!("INDEX={}/primary/simple", index.base),
            "--build-arg".to_string(),
            format!("EXTRA={}/extra/simple", index.base),
        ];
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let b = p.build(&args).assert_ok();
        let asked = index.requests();
        assert!(asked.iter().any(|r| r.starts_with("/primary/simple/six")), "{installer}: primary index not asked for six: {asked:?}\n{}", b.log);
        assert!(asked.iter().any(|r| r.starts_with("/extra/simple/itsdangerous")), "{installer}: extra index not asked: {asked:?}");
        assert!(asked.iter().any(|r| r.starts_with("/extra/files/itsdangerous-2.2.0")), "{installer}: itsdangerous not downloaded from the extra index: {asked:?}");
        let out = docker().args(["run", "--rm", &p.tag]).output().unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "1.16.0 2.2.0", "{installer}: {}", String::from_utf8_lossy(&out.stderr));
        // the installer stays in the builder
        assert_eq!(p.run("sh", &["-c", "ls /opt/venv/bin | grep -c -e '^pip' -e '^uv' || true"]), "0", "{installer}");
    }
}
