//! Multi-platform builds: one image per platform, each base resolved for its
//! platform.

use super::common::*;

#[test]
fn multi_platform_builds_every_platform() {
    gate!(MultiPlatform);
    let p = Project::from_example("hello");
    p.write(
        "multi.toml",
        "# syntax=strata:dev\nversion = 1\n[image]\nbase = \"strata-test/busybox-multi:latest\"\nplatforms = [\"linux/amd64\", \"linux/386\"]\nentrypoint = [\"sh\", \"/app/hello.sh\"]\n[app]\ncopy = [\"hello.sh\", \"data/\"]\n",
    );
    let b = p.build_file("multi.toml", &[]).assert_ok();
    assert!(b.log.contains("(linux/386)") && b.log.contains("(linux/amd64)"), "base resolved per platform:\n{}", b.log);
    for (platform, elf_class) in [("linux/amd64", "02"), ("linux/386", "01")] {
        let arch =
            docker().args(["image", "inspect", "--platform", platform, "--format", "{{.Os}}/{{.Architecture}}", &p.tag]).output().unwrap();
        assert_eq!(String::from_utf8_lossy(&arch.stdout).trim(), platform);
        // the platform's own busybox (ELF class 1 = 32-bit), and our layers
        let out = docker()
            .args([
                "run",
                "--rm",
                "--platform",
                platform,
                "--entrypoint",
                "sh",
                &p.tag,
                "-c",
                "od -An -tx1 -j4 -N1 /bin/busybox; cat /app/data/message.txt; id -u",
            ])
            .output()
            .unwrap();
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).split_whitespace().collect::<Vec<_>>(),
            [elf_class, "it", "works", "1000"],
            "{platform}"
        );
    }
    // --platform overrides [image] platforms
    p.build_file("multi.toml", &["--platform", "linux/386"]).assert_ok();
    let arch = p.inspect("{{.Architecture}}");
    assert_eq!(arch, "386");
}
