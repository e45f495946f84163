//! Diagnostics: every error about a spec carries the byte span it is about,
//! so the CLI can print `file:line:column` and the frontend can hand BuildKit
//! a source range (the user then sees the spec lines framed, like a
//! Dockerfile error).

use std::fmt;
use std::ops::Range;

/// A byte range in the spec source. `0..0` means "the file as a whole".
pub type Span = Range<usize>;

/// An error about a spec, anchored to a span of its source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub message: String,
    pub span: Span,
}

impl Diagnostic {
    pub fn new(span: Span, message: impl Into<String>) -> Self {
        Diagnostic { message: message.into(), span }
    }
}

/// A diagnostic bound to its file, ready to print or to send to BuildKit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecError {
    pub file: String,
    pub source: String,
    pub diag: Diagnostic,
}

/// 1-based line and column (in characters) of a byte offset.
pub fn line_col(source: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(source.len());
    // Clamp to a char boundary so hostile input never makes us slice mid-char.
    let mut offset = offset;
    while !source.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &source[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map(|i| i + 1).unwrap_or(0);
    let col = source[line_start..offset].chars().count() + 1;
    (line, col)
}

/// Line starts of a source, for many `line_col` look-ups (lowering maps
/// every op to its spec lines; scanning from the top each time was O(n²)).
pub struct LineIndex<'a> {
    source: &'a str,
    starts: Vec<usize>,
}

impl<'a> LineIndex<'a> {
    pub fn new(source: &'a str) -> Self {
        let mut starts = vec![0];
        starts.extend(source.match_indices('\n').map(|(i, _)| i + 1));
        LineIndex { source, starts }
    }

    /// Same answer as `line_col`.
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        let mut offset = offset.min(self.source.len());
        while !self.source.is_char_boundary(offset) {
            offset -= 1;
        }
        let line = self.starts.partition_point(|&s| s <= offset);
        let start = self.starts[line - 1];
        (line, self.source[start..offset].chars().count() + 1)
    }
}

impl SpecError {
    pub fn new(file: &str, source: &str, diag: Diagnostic) -> Self {
        SpecError { file: file.to_string(), source: source.to_string(), diag }
    }

    pub fn start(&self) -> (usize, usize) {
        line_col(&self.source, self.diag.span.start)
    }

    /// Last position covered by the span (inclusive), for BuildKit ranges.
    pub fn end(&self) -> (usize, usize) {
        let end = if self.diag.span.end > self.diag.span.start { self.diag.span.end - 1 } else { self.diag.span.start };
        line_col(&self.source, end)
    }
}

impl fmt::Display for SpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (line, col) = self.start();
        write!(f, "{}:{}:{}: {}", self.file, line, col, self.diag.message)
    }
}

impl std::error::Error for SpecError {}

/// Closest candidate by edit distance, for "did you mean" hints.
pub fn did_you_mean<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    candidates
        .iter()
        .map(|c| (edit_distance(word, c), *c))
        .filter(|(d, c)| *d <= (c.len().max(word.len()) / 3).max(1))
        .min()
        .map(|(_, c)| c)
}

/// Optimal-string-alignment distance: Levenshtein plus adjacent
/// transpositions, the most common typo (`bsae` → `base`).
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            d[i][j] = (d[i - 1][j] + 1).min(d[i][j - 1] + 1).min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                d[i][j] = d[i][j].min(d[i - 2][j - 2] + 1);
            }
        }
    }
    d[a.len()][b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_col_counts_from_one() {
        let src = "a = 1\nbé = 2\n";
        assert_eq!(line_col(src, 0), (1, 1));
        assert_eq!(line_col(src, 6), (2, 1));
        // 'é' is two bytes but one column
        assert_eq!(line_col(src, 9), (2, 3));
        assert_eq!(line_col(src, 10_000), (3, 1));
    }

    #[test]
    fn line_index_agrees_with_line_col() {
        let src = "a = 1\nbé = 2\n\nlast";
        let idx = LineIndex::new(src);
        for off in 0..=src.len() + 3 {
            assert_eq!(idx.line_col(off), line_col(src, off), "offset {off}");
        }
    }

    #[test]
    fn suggests_close_keys() {
        assert_eq!(did_you_mean("entrypont", &["entrypoint", "env"]), Some("entrypoint"));
        assert_eq!(did_you_mean("zzz", &["entrypoint", "env"]), None);
        assert_eq!(did_you_mean("bsae", &["base", "user"]), Some("base"));
    }
}
