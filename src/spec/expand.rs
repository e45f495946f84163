//! `${NAME}` expansion of build args in spec strings.
//!
//! Only the braced form is recognised, so a shell `$VAR` in a `run` line is
//! left for the shell. `$${` writes a literal `${`.

use std::cell::Cell;
use std::collections::BTreeMap;

/// Bytes all `${NAME}` expansions of one spec may produce together. An arg
/// that repeats another (`A1 = "${A0}${A0}"`, ...) doubles each time, so
/// without a bound 40 short lines take the machine's memory.
pub const MAX_EXPANSION: usize = 4 << 20;

/// What expansion may still produce for this spec.
#[derive(Debug)]
pub struct Budget(Cell<usize>);

impl Default for Budget {
    fn default() -> Self {
        Budget(Cell::new(MAX_EXPANSION))
    }
}

/// Expands `${NAME}`; on an unknown or malformed reference, or past the
/// budget, returns the byte offset (within `s`) and the message.
pub fn expand(s: &str, args: &BTreeMap<String, String>, budget: &Budget) -> Result<String, (usize, String)> {
    if !s.contains('$') {
        return Ok(s.to_string());
    }
    let mut out = String::with_capacity(s.len());
    let bytes = s.as_bytes();
    let mut i = 0;
    while i < s.len() {
        if s[i..].starts_with("$${") {
            out.push_str("${");
            i += 3;
        } else if s[i..].starts_with("${") {
            let Some(close) = s[i + 2..].find('}') else {
                return Err((i, "unterminated `${`: write `${NAME}` (or `$${` for a literal)".into()));
            };
            let name = &s[i + 2..i + 2 + close];
            if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
                return Err((i, format!("invalid arg reference `${{{name}}}`: names are letters, digits and `_`")));
            }
            match args.get(name) {
                Some(v) => {
                    let left = budget.0.get();
                    if v.len() > left {
                        return Err((
                            i,
                            format!(
                                "`${{{name}}}` takes the spec's arg expansions past {MAX_EXPANSION} bytes, strata's limit (an arg that repeats another grows exponentially)"
                            ),
                        ));
                    }
                    budget.0.set(left - v.len());
                    out.push_str(v)
                }
                None => {
                    let known: Vec<&str> = args.keys().map(String::as_str).collect();
                    let hint = match crate::diag::did_you_mean(name, &known) {
                        Some(k) => format!(" (did you mean `{k}`?)"),
                        None if known.is_empty() => " (declare it under [args])".to_string(),
                        None => format!(" (declared args: {})", known.join(", ")),
                    };
                    return Err((i, format!("unknown arg `${{{name}}}`{hint}")));
                }
            }
            i += 2 + close + 1;
        } else {
            // Copy one whole UTF-8 character.
            let ch_len = utf8_len(bytes[i]);
            out.push_str(&s[i..i + ch_len]);
            i += ch_len;
        }
    }
    Ok(out)
}

fn utf8_len(first: u8) -> usize {
    match first {
        0x00..=0x7f => 1,
        0xc0..=0xdf => 2,
        0xe0..=0xef => 3,
        _ => 4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args() -> BTreeMap<String, String> {
        [("BASE".to_string(), "python:3.12".to_string()), ("V".to_string(), "1".to_string())].into()
    }

    #[test]
    fn expands_known_args() {
        assert_eq!(expand("${BASE}-slim", &args(), &Budget::default()).unwrap(), "python:3.12-slim");
        assert_eq!(expand("a${V}b${V}é", &args(), &Budget::default()).unwrap(), "a1b1é");
        assert_eq!(expand("echo $HOME $${V}", &args(), &Budget::default()).unwrap(), "echo $HOME ${V}");
    }

    #[test]
    fn unknown_arg_is_an_error_with_hint() {
        let (at, msg) = expand("x ${BASEE}", &args(), &Budget::default()).unwrap_err();
        assert_eq!(at, 2);
        assert_eq!(msg, "unknown arg `${BASEE}` (did you mean `BASE`?)");
        assert!(expand("${", &args(), &Budget::default()).is_err());
        assert!(expand("${A B}", &args(), &Budget::default()).is_err());
    }
}
