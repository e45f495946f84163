//! The build context: which files leave the client.

/// Patterns of a `.dockerignore` file, cleaned as Docker does: comments and
/// blank lines dropped, leading `/` removed, `!` exceptions kept.
pub fn parse_dockerignore(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (neg, pat) = match line.strip_prefix('!') {
            Some(p) => (true, p.trim()),
            None => (false, line),
        };
        let pat = pat.trim_start_matches('/');
        let pat = pat.strip_suffix('/').unwrap_or(pat);
        if pat.is_empty() || pat == "." {
            continue;
        }
        out.push(if neg { format!("!{pat}") } else { pat.to_string() });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dockerignore_lines() {
        let p = parse_dockerignore("# c\n\n.git\n/outputs/\n!keep.txt\n  *.pyc  \n");
        assert_eq!(p, [".git", "outputs", "!keep.txt", "*.pyc"]);
    }
}
