//! The build context: `.dockerignore`, `-f`, symlinks that point outside,
//! `[app] exclude` against step and test inputs.

use super::common::*;

#[test]
fn dockerignore_and_filename_are_honoured() {
    gate!();
    let p = Project::from_example("hello");
    p.write(".dockerignore", "data/message.txt\n");
    p.write("data/other.txt", "x\n");
    std::fs::rename(p.dir.join("strata.toml"), p.dir.join("service.toml")).unwrap();
    p.build_file("service.toml", &[]).assert_ok();
    assert_eq!(p.run("sh", &["-c", "cd /app && find . -type f | sort"]), "./data/other.txt\n./hello.sh");
}

#[test]
fn symlinks_cannot_reach_outside_the_context() {
    gate!();
    let p = Project::from_example("hello");
    let marker = format!("outside-the-context-{}", nonce());
    let outside = std::env::temp_dir().join(format!("strata-outside-{}", nonce()));
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::write(outside.join("secret.txt"), &marker).unwrap();
    // An absolute and a relative link out of the context, inside a copied dir.
    std::os::unix::fs::symlink(outside.join("secret.txt"), p.dir.join("data/abs")).unwrap();
    std::os::unix::fs::symlink(
        "../../../../../../../../..".to_string() + &outside.join("secret.txt").display().to_string(),
        p.dir.join("data/rel"),
    )
    .unwrap();
    p.build(&[]).assert_ok();
    // They arrive as links (resolved, if at all, inside the container), never
    // as the host file's content.
    assert_eq!(p.run("sh", &["-c", "test -L /app/data/abs && test -L /app/data/rel && echo links"]), "links");
    assert!(!image_contains(&p.tag, &marker), "a file outside the context reached the image");

    // A copy entry that is itself a link out of the context finds nothing.
    std::os::unix::fs::symlink(&outside, p.dir.join("escape")).unwrap();
    p.write("esc.toml", "# syntax=strata:dev\nversion = 1\n[image]\nbase = \"strata-test/busybox:latest\"\n[app]\ncopy = [\"escape/\"]\n");
    let b = p.build_file("esc.toml", &[]);
    if b.ok {
        assert!(!image_contains(&p.tag, &marker), "a linked-out directory reached the image");
    } else {
        assert!(b.log.contains("escape"), "{}", b.log);
    }
    let _ = std::fs::remove_dir_all(&outside);
}

/// The contract's example excludes `tests/` from the app and feeds `tests/`
/// to a step and to the test target: `[app] exclude` hides it from the app
/// copies only. `.git` (a directory at the root, a file in a submodule)
/// never reaches the image, even with `copy = ["."]` (guarantee 4). The
/// tests run with the image's env.
#[test]
fn app_excludes_hide_nothing_from_steps_and_tests() {
    gate!();
    let p = Project::from_example("hello");
    p.write("tests/test_greeting.sh", "test -f hello.sh && test -f vendored/lib/lib.sh && echo tests-saw-the-app\n");
    p.write(".git/HEAD", "ref: refs/heads/main\n");
    p.write("vendored/lib/.git", "gitdir: ../../.git/modules/lib\n");
    p.write("vendored/lib/lib.sh", "echo lib\n");
    p.write(
        "t.toml",
        &format!(
            r#"# syntax=strata:dev
version = 1
[image]
base = "strata-test/busybox:latest"
env = {{ APP_MODE = "e2e" }}
[app]
copy = ["."]
exclude = ["tests/", "t.toml"]
[[step]]
name = "count"
run = "ls tests | wc -l > test-count.txt"
inputs = ["tests/"]
outputs = ["test-count.txt"]
[test]
inputs = ["tests/"]
run = "test \"$APP_MODE\" = e2e && sh tests/test_greeting.sh && echo {}"
"#,
            nonce()
        ),
    );
    let b = p.build_file("t.toml", &["--target", "test"]).assert_ok();
    assert!(b.log.contains("tests-saw-the-app"), "{}", b.log);
    p.build_file("t.toml", &[]).assert_ok();
    let tree = file_tree(&p.tag);
    assert!(!tree.keys().any(|k| k.starts_with("app/tests")), "tests/ reached the image");
    assert!(
        !tree.keys().any(|k| k.contains(".git")),
        "a .git reached the image: {:?}",
        tree.keys().filter(|k| k.contains(".git")).collect::<Vec<_>>()
    );
    assert!(tree.contains_key("app/vendored/lib/lib.sh") && tree.contains_key("app/hello.sh"));
    // The step saw tests/ although the app excludes it.
    assert_eq!(p.run("cat", &["/app/test-count.txt"]), "1");
}
