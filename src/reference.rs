//! Image references as BuildKit writes them: normalised and pinned.

/// `python:3.12` → `docker.io/library/python:3.12`, as BuildKit expects in
/// `docker-image://` identifiers.
pub fn normalize_ref(r: &str) -> String {
    let (name, digest) = match r.split_once('@') {
        Some((n, d)) => (n, Some(d)),
        None => (r, None),
    };
    let (first, rest) = name.split_once('/').unwrap_or(("", name));
    let has_domain = !first.is_empty() && (first.contains('.') || first.contains(':') || first == "localhost");
    let mut full = if has_domain {
        name.to_string()
    } else if first.is_empty() {
        format!("docker.io/library/{rest}")
    } else {
        format!("docker.io/{name}")
    };
    let last = full.rsplit('/').next().unwrap_or("");
    if !last.contains(':') && digest.is_none() {
        full.push_str(":latest");
    }
    if let Some(d) = digest {
        full.push('@');
        full.push_str(d);
    }
    full
}

/// Adds the resolved digest to a normalised reference (as the Dockerfile
/// frontend does) so the build uses exactly the image whose config we read.
pub fn pin(normalized: &str, digest: &str) -> String {
    if normalized.contains('@') || digest.is_empty() {
        normalized.to_string()
    } else {
        format!("{normalized}@{digest}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_like_docker() {
        assert_eq!(normalize_ref("busybox"), "docker.io/library/busybox:latest");
        assert_eq!(normalize_ref("python:3.12-slim"), "docker.io/library/python:3.12-slim");
        assert_eq!(normalize_ref("strata-test/python:3.11"), "docker.io/strata-test/python:3.11");
        assert_eq!(normalize_ref("localhost:5000/x"), "localhost:5000/x:latest");
        assert_eq!(normalize_ref("ghcr.io/a/b:1"), "ghcr.io/a/b:1");
        assert_eq!(normalize_ref("a@sha256:00"), "docker.io/library/a@sha256:00");
        assert_eq!(pin("docker.io/library/a:1", "sha256:ff"), "docker.io/library/a:1@sha256:ff");
    }
}
