//! The `strata` command line, offline: check/plan/llb, determinism.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn strata(args: &[&str], dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_strata")).args(args).current_dir(dir).output().unwrap()
}

fn example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples").join(name)
}

fn copy_tree(from: &Path, to: &Path, reverse: bool) {
    std::fs::create_dir_all(to).unwrap();
    let mut entries: Vec<_> = std::fs::read_dir(from).unwrap().map(|e| e.unwrap().path()).collect();
    entries.sort();
    if reverse {
        entries.reverse();
    }
    for p in entries {
        let t = to.join(p.file_name().unwrap());
        if p.is_dir() {
            copy_tree(&p, &t, reverse);
        } else {
            std::fs::copy(&p, &t).unwrap();
        }
    }
}

#[test]
fn llb_is_byte_identical_across_runs_and_reordered_contexts() {
    for name in ["python-web", "media-server", "analytics", "ml-service", "tf-service", "hello"] {
        let a = std::env::temp_dir().join(format!("strata-cli-a-{}-{name}", std::process::id()));
        let b = std::env::temp_dir().join(format!("strata-cli-b-{}-{name}", std::process::id()));
        copy_tree(&example(name), &a, false);
        // Same files, created in the opposite order (other inode order and
        // mtimes): the LLB must not notice.
        std::thread::sleep(std::time::Duration::from_millis(20));
        copy_tree(&example(name), &b, true);
        let one = strata(&["llb", "--platform", "linux/amd64"], &a);
        let two = strata(&["llb", "--platform", "linux/amd64"], &a);
        let three = strata(&["llb", "--platform", "linux/amd64"], &b);
        assert!(one.status.success(), "{name}: {}", String::from_utf8_lossy(&one.stderr));
        assert!(!one.stdout.is_empty());
        assert_eq!(one.stdout, two.stdout, "{name}: two runs differ");
        assert_eq!(one.stdout, three.stdout, "{name}: a reordered context changes the LLB");
        let _ = std::fs::remove_dir_all(&a);
        let _ = std::fs::remove_dir_all(&b);
    }
}

#[test]
fn secrets_are_mounts_by_id_only() {
    use bollard_buildkit_proto::pb;
    use prost::Message;
    let out = strata(&["llb"], &example("media-server"));
    assert!(out.status.success());
    let def = pb::Definition::decode(out.stdout.as_slice()).unwrap();
    let mut secret_mounts = Vec::new();
    for bytes in &def.def {
        let op = pb::Op::decode(bytes.as_slice()).unwrap();
        match op.op {
            Some(pb::op::Op::Exec(e)) => {
                for m in e.mounts.iter().filter(|m| m.mount_type == pb::MountType::Secret as i32) {
                    let s = m.secret_opt.as_ref().unwrap();
                    secret_mounts.push((m.dest.clone(), s.id.clone(), s.mode, m.input, m.output));
                }
                // no env var or argument carries a secret path's content
                assert!(!e.meta.unwrap().env.iter().any(|v| v.contains("license_key")));
            }
            Some(pb::op::Op::File(f)) => {
                for a in f.actions {
                    if let Some(pb::file_action::Action::Copy(c)) = a.action {
                        assert!(!c.src.starts_with("/run/secrets"), "a copy reads the secret: {}", c.src);
                    }
                }
            }
            _ => {}
        }
    }
    assert_eq!(secret_mounts, [("/run/secrets/license_key".to_string(), "license_key".to_string(), 0o400, -1, -1)]);
}

#[test]
fn check_reports_lints_with_positions_and_exit_codes() {
    let dir = std::env::temp_dir().join(format!("strata-cli-check-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("strata.toml"), "version = 1\n[image]\nbase = \"busybox\"\nuser = \"root\"\n").unwrap();
    let out = strata(&["check"], &dir);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("strata.toml:3:8: warning[UnpinnedBaseTag]"), "{text}");
    assert!(text.contains("strata.toml:4:8: warning[RootUser]"), "{text}");
    std::fs::write(dir.join("strata.toml"), "version = 1\n[image]\nbase = \"busybox:1.36\"\nentrypont = 1\n").unwrap();
    let out = strata(&["check"], &dir);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim(),
        "error: strata.toml:4:1: unknown key `entrypont` in [image]; did you mean `entrypoint`?"
    );
    std::fs::write(dir.join("strata.toml"), b"version = 1\n\xff\xfe\n").unwrap();
    let out = strata(&["check"], &dir);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not valid UTF-8"));
    let out = strata(&["check", "--bogus"], &dir);
    assert_eq!(out.status.code(), Some(2));
    for name in ["python-web", "media-server", "ml-service", "tf-service", "analytics"] {
        let out = strata(&["check"], &example(name));
        assert_eq!(out.status.code(), Some(0), "{name}: {}", String::from_utf8_lossy(&out.stdout));
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn plan_prints_the_layer_tree() {
    let out = strata(&["plan"], &example("python-web"));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("stage runtime (target) from stage deps"), "{text}");
    assert!(text.contains("mount files /tmp/strata-deps <- requirements.txt"), "{text}");
    assert!(text.contains("key: layer below + command, context:requirements.txt"), "{text}");
    let out = strata(&["plan", "--target", "nope"], &example("python-web"));
    assert_eq!(out.status.code(), Some(2));
    let out = strata(&["plan", "--format", "json", "--mergeop"], &example("ml-service"));
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["target"], "runtime");
    let step = v["stages"].as_array().unwrap().iter().find(|s| s["name"] == "step-models").unwrap();
    assert_eq!(step["ops"][1]["key"], serde_json::json!(["command"]));
    assert_eq!(step["ops"][0]["key"], serde_json::json!(["context:/scripts/fetch_models.py"]));
    assert!(strata(&["plan", "--format", "yaml"], &example("ml-service")).status.code() == Some(2));
}

/// A copy or input the context does not hold (missing, or left out by
/// .dockerignore) is an error at its spec line from `strata check` and
/// `strata plan`, where BuildKit would say only `"/path": not found`.
#[test]
fn check_and_plan_report_paths_the_context_does_not_hold() {
    let dir = std::env::temp_dir().join(format!("strata-cli-context-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("src")).unwrap();
    std::fs::write(dir.join("web-types.json"), "{}").unwrap();
    std::fs::write(dir.join(".dockerignore"), "*.json\n").unwrap();
    let spec = "version = 1\n[image]\nbase = \"busybox:1.36\"\n[app]\ncopy = [\"src/\", \"web-types.json\"]\n";
    std::fs::write(dir.join("strata.toml"), spec).unwrap();
    for cmd in ["check", "plan"] {
        let out = strata(&[cmd], &dir);
        assert_eq!(out.status.code(), Some(1), "{cmd}");
        assert_eq!(
            String::from_utf8_lossy(&out.stderr).trim(),
            "error: strata.toml:5:17: `web-types.json` is left out by .dockerignore (pattern `*.json`): the build cannot see it",
            "{cmd}"
        );
    }
    std::fs::write(dir.join("strata.toml"), spec.replace("web-types.json", "missing.yaml")).unwrap();
    let out = strata(&["check"], &dir);
    assert!(String::from_utf8_lossy(&out.stderr).contains("strata.toml:5:17: `missing.yaml` is not in the build context"), "{out:?}");
    // steps' inputs too; a positional context points elsewhere
    let other = dir.join("ctx");
    std::fs::create_dir_all(other.join("web")).unwrap();
    std::fs::write(
        dir.join("strata.toml"),
        "version = 1\n[image]\nbase = \"busybox:1.36\"\n[[step]]\nname = \"a\"\nrun = \"true\"\ninputs = [\"web/\"]\n",
    )
    .unwrap();
    assert_eq!(strata(&["plan"], &dir).status.code(), Some(1));
    assert_eq!(strata(&["plan", "-f", "strata.toml", "ctx"], &dir).status.code(), Some(0));
    let _ = std::fs::remove_dir_all(&dir);
}

/// `-r base.txt` inside a requirements file: the included file is mounted
/// for the install too (and counts in the deps digest); a missing one is an
/// error at the entry that includes it.
#[test]
fn included_requirement_files_are_mounted() {
    let dir = std::env::temp_dir().join(format!("strata-cli-includes-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("requirements")).unwrap();
    std::fs::write(dir.join("requirements/production.txt"), "-r base.txt\nuwsgi>=2.0\n").unwrap();
    std::fs::write(dir.join("requirements/base.txt"), "-c ../constraints.txt\nDjango>=5.2,<5.3\n").unwrap();
    std::fs::write(dir.join("constraints.txt"), "asgiref==3.8.1\n").unwrap();
    std::fs::write(
        dir.join("strata.toml"),
        "version = 1\n[image]\nbase = \"python:3.12-slim\"\n[python]\nrequirements = [\"requirements/production.txt\"]\n",
    )
    .unwrap();
    let out = strata(&["plan"], &dir);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("mount files /tmp/strata-deps <- constraints.txt, requirements/base.txt, requirements/production.txt"), "{text}");
    let digest = |d: &Path| String::from_utf8_lossy(&strata(&["plan", "--deps-digest"], d).stdout).to_string();
    let before = digest(&dir);
    std::fs::write(dir.join("requirements/base.txt"), "-c ../constraints.txt\nDjango>=5.2,<5.4\n").unwrap();
    assert_ne!(digest(&dir), before, "an included file counts in the deps digest");
    std::fs::remove_file(dir.join("constraints.txt")).unwrap();
    let out = strata(&["plan"], &dir);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim(),
        "error: strata.toml:5:17: `constraints.txt`, included by this requirements file, is not in the build context"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// The same build from another checkout path, under another umask, and
/// from a spec whose tables and keys are written in another order: the ops
/// (everything a cache key is made of) and their metadata are the same
/// bytes. Only the source map differs for the reordered spec, as it must:
/// it holds the spec's text, so a step's error points at its line.
#[test]
fn llb_ops_are_identical_across_checkout_path_umask_and_key_order() {
    use bollard_buildkit_proto::pb;
    use prost::Message;
    type Ops = (Vec<Vec<u8>>, Vec<(String, Vec<u8>)>);
    fn ops(out: &Output) -> Ops {
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let def = pb::Definition::decode(out.stdout.as_slice()).unwrap();
        let mut meta: Vec<(String, Vec<u8>)> = def.metadata.iter().map(|(k, v)| (k.clone(), v.encode_to_vec())).collect();
        meta.sort();
        (def.def, meta)
    }
    let base = std::env::temp_dir().join(format!("strata-cli-det-{}", std::process::id()));
    let a = base.join("one");
    let b = base.join("checkout/elsewhere/two");
    copy_tree(&example("python-web"), &a, false);
    // another checkout: another path, files written under umask 077 (mode
    // 0600/0700 where the first has 0644/0755)
    let copied = Command::new("sh")
        .args(["-c", "umask 077 && mkdir -p \"$(dirname \"$2\")\" && cp -r \"$1\" \"$2\"", "sh"])
        .arg(example("python-web"))
        .arg(&b)
        .status()
        .unwrap();
    assert!(copied.success());
    let mode = |p: &Path| std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(p).unwrap().permissions()) & 0o777;
    assert_eq!(mode(&b.join("requirements.txt")), 0o600, "the umask did not apply");
    let reordered = r#"# syntax=strata:dev
version = 1
[app]
exclude = ["**/__pycache__", "**/*.pyc"]
copy = ["shop/", "templates/"]

[python]
wheels = "wheels"
requirements = ["requirements.txt"]
installer = "pip"

[system]
packages = ["libexpat1"]

[image]
expose = ["8000"]
env = { PORT = "8000", PYTHONUNBUFFERED = "1" }
entrypoint = ["python", "-m", "shop"]
user = "app"
workdir = "/app"
base = "${BASE}"

[args]
BASE = "strata-test/python:3.11"
"#;
    std::fs::write(b.join("strata.toml"), reordered).unwrap();
    let args = ["llb", "--platform", "linux/amd64"];
    let one = ops(&strata(&args, &a));
    let two = ops(&strata(&args, &b));
    assert_eq!(one.0.len(), two.0.len(), "another number of ops");
    for (i, (x, y)) in one.0.iter().zip(&two.0).enumerate() {
        assert_eq!(x, y, "op {i} differs:\n{:?}\n{:?}", pb::Op::decode(x.as_slice()).unwrap(), pb::Op::decode(y.as_slice()).unwrap());
    }
    assert_eq!(one.1, two.1, "op metadata differs");
    let _ = std::fs::remove_dir_all(&base);
}

/// `strata check strata.toml` (the spec where the context goes) reads it as
/// `-f`, with its directory as the context, as the header init writes
/// suggests; a directory is still the context.
#[test]
fn a_spec_file_as_the_positional_argument_is_the_spec() {
    let dir = example("python-web");
    let out = strata(&["check", "strata.toml"], &dir);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let parent = dir.parent().unwrap();
    let out = strata(&["plan", "python-web/strata.toml"], parent);
    assert!(
        out.status.success() && String::from_utf8_lossy(&out.stdout).contains("stage runtime"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = strata(&["check", "-f", "python-web/strata.toml", "python-web"], parent);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}
