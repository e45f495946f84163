//! SSH agent forwarding: only the steps that ask see it.

use super::common::*;

#[test]
fn ssh_agent_reaches_steps_only() {
    gate!();
    let p = Project::from_example("hello");
    let sock = p.dir.join("agent.sock");
    let agent = std::process::Command::new("ssh-agent").arg("-D").arg("-a").arg(&sock).spawn().expect("ssh-agent (openssh-client)");
    for _ in 0..50 {
        if sock.exists() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    p.write(
        "ssh.toml",
        "# syntax=strata:dev\nversion = 1\n[image]\nbase = \"strata-test/busybox:latest\"\n[[step]]\nname = \"fetch\"\nrun = \"test -S \\\"$SSH_AUTH_SOCK\\\" && echo agent-ok > ssh.txt\"\nssh = true\noutputs = [\"ssh.txt\"]\n",
    );
    let b = p.build_file("ssh.toml", &["--ssh", &format!("default={}", sock.display())]);
    let mut agent = agent;
    let _ = agent.kill();
    let b = b.assert_ok();
    let _ = b;
    assert_eq!(p.run("cat", &["/app/ssh.txt"]), "agent-ok");
    assert_eq!(p.run("sh", &["-c", "ls /run/buildkit 2>/dev/null | wc -l"]), "0");
    // Without --ssh the step cannot run: BuildKit refuses the missing agent.
    let b = Project::from_example("hello");
    b.write("ssh.toml", &std::fs::read_to_string(p.dir.join("ssh.toml")).unwrap().replace("agent-ok", &format!("agent-{}", nonce())));
    let out = b.build_file("ssh.toml", &[]);
    assert!(!out.ok && out.log.contains("ssh"), "{}", out.log);
}
