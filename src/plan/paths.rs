//! Path and span helpers shared by the phases.

use crate::diag::Span;
use crate::spec::Sp;

/// A workdir-relative or absolute path as an absolute one.
pub(super) fn abs_in(workdir: &str, p: &str) -> String {
    let p = p.trim_end_matches('/');
    if p.starts_with('/') {
        p.to_string()
    } else {
        format!("{}/{}", workdir.trim_end_matches('/'), p.trim_start_matches("./"))
    }
}

/// From the first to the last item of a list: where a failing install
/// points in the spec.
pub(super) fn list_span(items: &[Sp<String>]) -> Span {
    match (items.first(), items.last()) {
        (Some(a), Some(b)) => a.span.start..b.span.end,
        _ => 0..0,
    }
}

pub(super) fn trim_dir(p: &str) -> String {
    p.trim_end_matches('/').to_string()
}

/// Source and destination of one `[app] copy` entry: the path keeps its
/// context-relative location under `dest_root`.
pub(super) fn copy_paths(entry: &str, dest_root: &str) -> (String, String) {
    let root = dest_root.trim_end_matches('/');
    if entry == "." {
        return ("/".into(), format!("{root}/"));
    }
    let rel = entry.trim_end_matches('/');
    if rel.contains(['*', '?', '[']) {
        // A wildcard copies the matches into their parent directory.
        let parent = rel.rsplit_once('/').map(|(p, _)| p).unwrap_or("");
        let dest = if parent.is_empty() { format!("{root}/") } else { format!("{root}/{parent}/") };
        return (format!("/{rel}"), dest);
    }
    (format!("/{rel}"), format!("{root}/{rel}"))
}

/// `dir/rel` with `.` and `..` resolved, or None when it leaves the
/// context (a path dependency outside it).
pub fn join_rel(dir: &str, rel: &str) -> Option<String> {
    let mut parts: Vec<&str> = Vec::new();
    for seg in dir.split('/').chain(rel.split('/')) {
        match seg {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            s => parts.push(s),
        }
    }
    Some(parts.join("/"))
}
