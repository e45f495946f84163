//! Reading the spanned TOML tree into `Spec`.
//!
//! We walk `toml`'s spanned `DeTable` by hand instead of using serde derive:
//! that is what lets every error point at the exact key or value, list the
//! accepted keys, suggest the closest one for a typo and allow `x-` keys.

use std::collections::{BTreeMap, BTreeSet};

use toml::de::{DeTable, DeValue};
use toml::Spanned;

use super::expand::{expand, Budget};
use super::*;
use crate::diag::{did_you_mean, Diagnostic};

type Result<T> = std::result::Result<T, Diagnostic>;

// The accepted keys of each table come from the key table in schema.rs,
// which also generates the JSON Schema and docs/reference.md.
use super::schema;

/// Parses and validates a spec for the default target. `build_args` are
/// the `--build-arg` values; they override `[args]` defaults (undeclared
/// build args are ignored, as the Dockerfile frontend does). Every variant
/// is validated too, so a broken variant fails every build, not only its own.
pub fn load(source: &str, build_args: &BTreeMap<String, String>) -> Result<Spec> {
    let spec = load_target(source, build_args, None)?;
    for v in &spec.variants {
        load_target(source, build_args, Some(&v.value))?;
    }
    Ok(spec)
}

/// Parses a spec as seen by one variant (`[variants.NAME]` merged over the
/// main sections), or the main spec when `variant` is `None`.
pub fn load_target(source: &str, build_args: &BTreeMap<String, String>, variant: Option<&str>) -> Result<Spec> {
    if source.len() > MAX_SPEC_BYTES {
        return Err(Diagnostic::new(
            0..0,
            format!("the spec is {} bytes; strata reads specs up to {} bytes", source.len(), MAX_SPEC_BYTES),
        ));
    }
    let doc = DeTable::parse(source).map_err(|e| {
        let span = e.span().unwrap_or(0..0);
        Diagnostic::new(span, format!("invalid TOML: {}", e.message().trim()))
    })?;
    let doc_span = doc.span();
    let mut doc = doc.into_inner();
    {
        let mut top = Table::new(&doc, doc_span.clone(), "");
        // version first: a spec for another format version should fail on
        // that, not on whatever key it uses that we do not know.
        let version = top.required(&doc_span, "version")?;
        match &version.get_ref() {
            DeValue::Integer(i) if i.as_str() == "1" => {}
            _ => {
                return Err(Diagnostic::new(
                    version.span(),
                    format!("unsupported version: this strata reads version = {}", list_versions()),
                ))
            }
        }
        if let Some(key) = top.unknown_key(&schema::names(schema::TOP)) {
            return Err(key);
        }
    }
    let variants = variant_names(&doc)?;
    if let Some(name) = variant {
        super::variant::merge(&mut doc, name)?;
    }
    let mut top = Table::new(&doc, doc_span.clone(), "");
    let budget = Budget::default();
    let (args, arg_spans) = read_args(&mut top, build_args, &budget)?;
    let cx = Cx { args: &args, budget: &budget };

    let Some(image_v) = top.raw("image") else {
        return Err(Diagnostic::new(0..0, "missing [image] section: at least `[image] base = \"<image ref>\"` is required"));
    };
    let image = read_image(&cx, table_of(image_v, "image")?)?;
    let system = match top.raw("system") {
        Some(v) => read_system(&cx, table_of(v, "system")?)?,
        None => System { manager: Manager::Apt, packages: vec![], build_packages: vec![], layers: vec![], span: 0..0 },
    };
    let python = match top.raw("python") {
        Some(v) => Some(read_python(&cx, table_of(v, "python")?)?),
        None => None,
    };
    let r = match top.raw("r") {
        Some(v) => read_r(&cx, table_of(v, "r")?)?,
        None => None,
    };
    let app = match top.raw("app") {
        Some(v) => read_app(&cx, table_of(v, "app")?)?,
        None => App { copy: vec![], exclude: vec![], dest: None, chown: None },
    };
    let caches = match top.raw("caches") {
        Some(v) => read_caches(&cx, v)?,
        None => BTreeMap::new(),
    };
    let steps = match top.raw("step") {
        Some(v) => read_steps(&cx, v, &caches)?,
        None => vec![],
    };
    let test = match top.raw("test") {
        Some(v) => Some(read_test(&cx, table_of(v, "test")?, &caches)?),
        None => None,
    };
    if let (Some(t), None) = (&test, &python) {
        if let Some(r) = t.requirements.first() {
            // Dev deps install into the [python] venv; without one they
            // would be dropped without a word.
            return Err(Diagnostic::new(
                r.span.clone(),
                "`test.requirements` needs a [python] section: dev dependencies install into its venv",
            ));
        }
    }
    Ok(Spec { args, arg_spans, image, system, python, r, app, steps, caches, test, variants, variant: variant.map(String::from) })
}

fn variant_names(doc: &DeTable<'_>) -> Result<Vec<Sp<String>>> {
    let Some(v) = doc.get("variants") else { return Ok(vec![]) };
    let mut out = Vec::new();
    let tables = named_tables(v, "variants", "variant")?;
    // Each variant is read as a spec of its own: bound how many.
    if let Some((_, span, _)) = tables.get(MAX_VARIANTS) {
        return Err(Diagnostic::new(span.clone(), format!("{} variants; strata accepts up to {MAX_VARIANTS}", tables.len())));
    }
    for (name, span, _) in tables {
        if RESERVED_TARGETS.contains(&name.as_str()) {
            return Err(Diagnostic::new(span, format!("variant name `{name}` is a built-in target ({})", RESERVED_TARGETS.join(", "))));
        }
        out.push(Sp::new(name, span));
    }
    Ok(out)
}

/// The `[SECTION.NAME]` tables of a section (`caches`, `variants`): each
/// name checked (lowercase letters, digits, `-`, `_`), with its span and value.
#[allow(clippy::type_complexity)]
fn named_tables<'a, 'i>(v: &'a Spanned<DeValue<'i>>, section: &str, what: &str) -> Result<Vec<(String, Span, &'a Spanned<DeValue<'i>>)>> {
    let DeValue::Table(t) = v.get_ref() else {
        return Err(Diagnostic::new(v.span(), format!("`{section}` must be a table of [{section}.NAME] tables")));
    };
    let mut out = Vec::new();
    for (k, val) in t.iter() {
        let name = k.get_ref().to_string();
        if name.starts_with("x-") {
            continue; // extension keys are ignored everywhere
        }
        if !valid_name(&name) {
            return Err(Diagnostic::new(k.span(), format!("invalid {what} name `{name}`: use lowercase letters, digits, `-` and `_`")));
        }
        out.push((name, k.span(), val));
    }
    Ok(out)
}

/// Hostile-input bounds: far above any real spec, low enough that parsing
/// and planning stay fast.
pub const MAX_SPEC_BYTES: usize = 1 << 20;
pub const MAX_STEPS: usize = 4096;
/// One string value, after `${NAME}` expansion.
pub const MAX_STRING: usize = 256 << 10;
/// Items of one list, keys of one table (env, labels, args).
pub const MAX_ITEMS: usize = 4096;
/// `[app] copy` entries: each is a layer, and overlay filesystems stack at
/// most ~128 of them.
pub const MAX_COPIES: usize = 100;
/// `[variants.NAME]` tables: each is checked as a spec of its own.
pub const MAX_VARIANTS: usize = 64;

/// The spec's bytes as text, or a located error at the first byte that is
/// not UTF-8 (line and column counted in the valid text before it).
pub fn decode(file: &str, bytes: &[u8]) -> std::result::Result<String, crate::diag::SpecError> {
    match std::str::from_utf8(bytes) {
        Ok(s) => Ok(s.to_string()),
        Err(e) => {
            let at = e.valid_up_to();
            let prefix = String::from_utf8_lossy(&bytes[..at]).to_string();
            let msg = format!("not valid UTF-8 (byte 0x{:02x}); a spec is UTF-8 text", bytes[at]);
            Err(crate::diag::SpecError::new(file, &prefix, Diagnostic::new(at..at, msg)))
        }
    }
}

/// Characters that make a path or name read differently from what it is:
/// bidirectional controls (U+202A-U+202E, U+2066-U+2069) and zero-width ones.
fn invisible(s: &str) -> Option<char> {
    s.chars().find(|c| matches!(*c as u32, 0x200B..=0x200F | 0x202A..=0x202E | 0x2060..=0x2069 | 0xFEFF))
}

/// Targets strata defines itself; variants cannot take these names.
pub const RESERVED_TARGETS: &[&str] = &["runtime", "deps", "builder", "test"];

fn valid_name(s: &str) -> bool {
    !s.is_empty() && s.len() <= 64 && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

fn list_versions() -> String {
    SUPPORTED_VERSIONS.iter().map(|v| v.to_string()).collect::<Vec<_>>().join(", ")
}

struct Cx<'a> {
    args: &'a BTreeMap<String, String>,
    budget: &'a Budget,
}

impl Cx<'_> {
    /// Expands `${NAME}` in a string value, pointing errors into the value.
    fn expand(&self, s: &str, span: &Span) -> Result<String> {
        expand(s, self.args, self.budget).map_err(|(at, msg)| {
            // +1 skips the opening quote of a basic string.
            let start = (span.start + 1 + at).min(span.end);
            Diagnostic::new(start..span.end, msg)
        })
    }
}

/// A table being read: remembers which keys were consumed so the rest can be
/// reported as unknown.
struct Table<'a, 'i> {
    t: &'a DeTable<'i>,
    span: Span,
    path: String,
    used: BTreeSet<String>,
}

fn table_of<'a, 'i>(v: &'a Spanned<DeValue<'i>>, path: &str) -> Result<Table<'a, 'i>> {
    match v.get_ref() {
        DeValue::Table(t) => Ok(Table::new(t, v.span(), path)),
        other => Err(Diagnostic::new(v.span(), format!("`{path}` must be a table, found {}", other.type_str()))),
    }
}

impl<'a, 'i> Table<'a, 'i> {
    fn new(t: &'a DeTable<'i>, span: Span, path: &str) -> Self {
        Table { t, span, path: path.to_string(), used: BTreeSet::new() }
    }

    fn qualified(&self, key: &str) -> String {
        if self.path.is_empty() {
            key.to_string()
        } else {
            format!("{}.{}", self.path, key)
        }
    }

    fn raw(&mut self, key: &str) -> Option<&'a Spanned<DeValue<'i>>> {
        self.used.insert(key.to_string());
        self.t.iter().find(|(k, _)| k.get_ref() == key).map(|(_, v)| v)
    }

    fn required(&mut self, at: &Span, key: &str) -> Result<&'a Spanned<DeValue<'i>>> {
        let span = self.span.clone();
        let q = self.qualified(key);
        self.raw(key).ok_or_else(|| {
            let at = if span.end > span.start { span } else { at.clone() };
            Diagnostic::new(at.start..at.start, format!("missing required key `{q}`"))
        })
    }

    fn str(&mut self, cx: &Cx, key: &str) -> Result<Option<Sp<String>>> {
        let q = self.qualified(key);
        match self.raw(key) {
            None => Ok(None),
            Some(v) => Ok(Some(string_value(cx, v, &q)?)),
        }
    }

    fn bool(&mut self, cx: &Cx, key: &str, default: bool) -> Result<bool> {
        let q = self.qualified(key);
        match self.raw(key) {
            None => Ok(default),
            Some(v) => match v.get_ref() {
                DeValue::Boolean(b) => Ok(*b),
                // Args are strings, so `init = "${WITH_INIT}"` must work too.
                DeValue::String(s) => {
                    let s = cx.expand(s, &v.span())?;
                    truthy(&s).ok_or_else(|| Diagnostic::new(v.span(), format!("`{q}` must be true or false, found \"{s}\"")))
                }
                other => Err(Diagnostic::new(v.span(), format!("`{q}` must be true or false, found {}", other.type_str()))),
            },
        }
    }

    fn str_list(&mut self, cx: &Cx, key: &str) -> Result<Vec<Sp<String>>> {
        let q = self.qualified(key);
        match self.raw(key) {
            None => Ok(vec![]),
            Some(v) => match v.get_ref() {
                DeValue::Array(items) if items.len() > MAX_ITEMS => {
                    Err(Diagnostic::new(v.span(), format!("`{q}` has {} items; strata accepts up to {MAX_ITEMS}", items.len())))
                }
                DeValue::Array(items) => items.iter().map(|item| string_value(cx, item, &q)).collect(),
                other => Err(Diagnostic::new(v.span(), format!("`{q}` must be an array of strings, found {}", other.type_str()))),
            },
        }
    }

    /// A command: an array (exec form) or a string (run by /bin/sh -c).
    fn command(&mut self, cx: &Cx, key: &str) -> Result<Option<Vec<String>>> {
        let q = self.qualified(key);
        match self.raw(key) {
            None => Ok(None),
            Some(v) => match v.get_ref() {
                DeValue::String(s) => Ok(Some(vec!["/bin/sh".into(), "-c".into(), cx.expand(s, &v.span())?])),
                DeValue::Array(items) => Ok(Some(items.iter().map(|i| string_value(cx, i, &q).map(|s| s.value)).collect::<Result<_>>()?)),
                other => Err(Diagnostic::new(
                    v.span(),
                    format!("`{q}` must be an array of strings (exec form) or a string (shell form), found {}", other.type_str()),
                )),
            },
        }
    }

    /// An inline table of string values (env, labels), in source order.
    fn str_map(&mut self, cx: &Cx, key: &str) -> Result<Vec<(String, String)>> {
        let q = self.qualified(key);
        let Some(v) = self.raw(key) else { return Ok(vec![]) };
        let DeValue::Table(t) = v.get_ref() else {
            return Err(Diagnostic::new(v.span(), format!("`{q}` must be a table of strings, e.g. {{ KEY = \"value\" }}")));
        };
        if t.len() > MAX_ITEMS {
            return Err(Diagnostic::new(v.span(), format!("`{q}` has {} keys; strata accepts up to {MAX_ITEMS}", t.len())));
        }
        let mut out: Vec<(String, String)> = Vec::new();
        for (k, val) in t.iter() {
            let name = k.get_ref().to_string();
            if name.is_empty() || name.contains(['=', '\0']) {
                return Err(Diagnostic::new(k.span(), format!("invalid name `{name}` in `{q}`")));
            }
            let value = string_value(cx, val, &format!("{q}.{name}"))?.value;
            out.push((name, value));
        }
        Ok(out)
    }

    /// Keys not consumed and not `x-` extensions, as errors.
    /// The first key that is neither known nor an `x-` extension, as an error.
    fn unknown_key(&self, known: &[&str]) -> Option<Diagnostic> {
        let (k, _) = self.t.iter().find(|(k, _)| !k.get_ref().starts_with("x-") && !known.contains(&k.get_ref().as_ref()))?;
        let key = k.get_ref();
        let where_ = if self.path.is_empty() { "at the top level".to_string() } else { format!("in [{}]", self.path) };
        let hint = match did_you_mean(key, known) {
            Some(s) => format!("did you mean `{s}`?"),
            None => format!("accepted: {}", known.join(", ")),
        };
        Some(Diagnostic::new(k.span(), format!("unknown key `{key}` {where_}; {hint}")))
    }

    fn finish(self, keys: &[schema::Key]) -> Result<()> {
        let known = schema::names(keys);
        // A key in the schema that the reader never looked at would be
        // accepted and silently ignored: a bug here, not in the spec.
        debug_assert!(
            self.t.iter().all(|(k, _)| k.get_ref().starts_with("x-")
                || self.used.contains(k.get_ref().as_ref())
                || !known.contains(&k.get_ref().as_ref())),
            "[{}] has a schema key the reader does not read",
            self.path
        );
        match self.unknown_key(&known) {
            Some(d) => Err(d),
            None => Ok(()),
        }
    }
}

/// 1/true/yes/on and 0/false/no/off, case-insensitive.
pub fn truthy(s: &str) -> Option<bool> {
    match s.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Some(true),
        "0" | "false" | "no" | "off" | "" => Some(false),
        _ => None,
    }
}

/// A string value; integers and booleans are accepted where a string is
/// expected (`PORT = 8000`) because that is what people write.
fn string_value(cx: &Cx, v: &Spanned<DeValue<'_>>, what: &str) -> Result<Sp<String>> {
    match v.get_ref() {
        DeValue::String(s) => {
            let s = cx.expand(s, &v.span())?;
            if s.len() > MAX_STRING {
                return Err(Diagnostic::new(
                    v.span(),
                    format!("`{what}` is {} bytes; strata accepts strings up to {MAX_STRING} bytes", s.len()),
                ));
            }
            if s.contains('\0') {
                return Err(Diagnostic::new(v.span(), format!("`{what}` contains a NUL byte")));
            }
            Ok(Sp::new(s, v.span()))
        }
        DeValue::Integer(i) => Ok(Sp::new(i.as_str().replace('_', ""), v.span())),
        DeValue::Boolean(b) => Ok(Sp::new(b.to_string(), v.span())),
        other => Err(Diagnostic::new(v.span(), format!("`{what}` must be a string, found {}", other.type_str()))),
    }
}

type Args = (BTreeMap<String, String>, BTreeMap<String, Span>);

fn read_args(top: &mut Table, overrides: &BTreeMap<String, String>, budget: &Budget) -> Result<Args> {
    let mut args = BTreeMap::new();
    let mut spans = BTreeMap::new();
    let Some(v) = top.raw("args") else { return Ok((args, spans)) };
    let DeValue::Table(t) = v.get_ref() else {
        return Err(Diagnostic::new(v.span(), "`args` must be a table of NAME = \"default\""));
    };
    // A default may use the args declared above it (as `ARG B=${A}` in a
    // Dockerfile), with their final values: document order, not key order.
    let mut entries: Vec<_> = t.iter().filter(|(k, _)| !k.get_ref().starts_with("x-")).collect();
    if entries.len() > MAX_ITEMS {
        return Err(Diagnostic::new(v.span(), format!("[args] has {} args; strata accepts up to {MAX_ITEMS}", entries.len())));
    }
    entries.sort_by_key(|(k, _)| k.span().start);
    for (i, (k, val)) in entries.iter().enumerate() {
        let name = k.get_ref().to_string();
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            return Err(Diagnostic::new(k.span(), format!("invalid arg name `{name}`: use letters, digits and `_`")));
        }
        let value = match overrides.get(&name) {
            Some(v) => v.clone(),
            None => {
                let cx = Cx { args: &args, budget };
                string_value(&cx, val, &format!("args.{name}"))
                    .map_err(|e| {
                        // Name the real problem when the arg exists further down.
                        let later = entries[i + 1..]
                            .iter()
                            .map(|(k, _)| k.get_ref().to_string())
                            .find(|l| e.message.contains(&format!("`${{{l}}}`")));
                        match later {
                            Some(l) => Diagnostic::new(
                                e.span.clone(),
                                format!("arg `{name}` uses `${{{l}}}`, which is declared below it; declare `{l}` first"),
                            ),
                            None => e,
                        }
                    })?
                    .value
            }
        };
        spans.insert(name.clone(), k.span());
        args.insert(name, value);
    }
    Ok((args, spans))
}

fn read_image(cx: &Cx, mut t: Table) -> Result<Image> {
    let span = t.span.clone();
    let base_v = t.required(&span, "base")?;
    let base = string_value(cx, base_v, "image.base")?;
    check_image_ref(&base)?;
    let builder = t.str(cx, "builder")?;
    if let Some(b) = &builder {
        check_image_ref(b)?;
    }
    let deps_image = t.str(cx, "deps-image")?;
    if let Some(d) = &deps_image {
        check_image_ref(d)?;
        let last = d.value.rsplit('/').next().unwrap_or("");
        if d.value.contains('@') || last.contains(':') {
            return Err(Diagnostic::new(
                d.span.clone(),
                format!(
                    "`image.deps-image` names a repository, without a tag or digest (found \"{}\"): the tag comes from the deps digest",
                    d.value
                ),
            ));
        }
    }
    let workdir = t.str(cx, "workdir")?.unwrap_or_else(|| Sp::new("/app".into(), span.start..span.start));
    if !workdir.value.starts_with('/') {
        return Err(Diagnostic::new(workdir.span, format!("`image.workdir` must be an absolute path, found \"{}\"", workdir.value)));
    }
    let user = match t.str(cx, "user")? {
        None => Sp::new(User::Named { name: "app".into(), uid: 1000, gid: 1000 }, span.start..span.start),
        Some(u) => Sp::new(parse_user(&u)?, u.span),
    };
    let entrypoint = t.command(cx, "entrypoint")?;
    let cmd = t.command(cx, "cmd")?;
    let env = t.str_map(cx, "env")?;
    let expose = t.str_list(cx, "expose")?;
    for port in &expose {
        check_port(port)?;
    }
    let labels = t.str_map(cx, "labels")?;
    let init = t.bool(cx, "init", false)?;
    let init_span = t.raw("init").map(|v| v.span()).unwrap_or_else(|| t.span.clone());
    let healthcheck = match t.raw("healthcheck") {
        None => None,
        Some(v) => {
            let mut h = table_of(v, "image.healthcheck")?;
            let cmd = h.command(cx, "cmd")?.ok_or_else(|| Diagnostic::new(v.span(), "missing required key `image.healthcheck.cmd`"))?;
            let duration = |h: &mut Table, key: &str| -> Result<Option<String>> {
                let Some(d) = h.str(cx, key)? else { return Ok(None) };
                match crate::timefmt::duration_ns(&d.value) {
                    Some(_) => Ok(Some(d.value)),
                    None => Err(Diagnostic::new(
                        d.span,
                        format!("`image.healthcheck.{key}` = \"{}\" is not a duration: write e.g. \"30s\", \"1m30s\" or \"500ms\" (units ns, us, ms, s, m, h)", d.value),
                    )),
                }
            };
            let interval = duration(&mut h, "interval")?;
            let timeout = duration(&mut h, "timeout")?;
            let retries = match h.raw("retries") {
                None => None,
                Some(r) => match r.get_ref() {
                    DeValue::Integer(i) => Some(i.as_str().parse::<i64>().map_err(|_| Diagnostic::new(r.span(), "retries out of range"))?),
                    _ => return Err(Diagnostic::new(r.span(), "`image.healthcheck.retries` must be an integer")),
                },
            };
            h.finish(schema::HEALTHCHECK)?;
            Some(Healthcheck { cmd, interval, timeout, retries })
        }
    };
    let stopsignal = t.str(cx, "stopsignal")?.map(|s| s.value);
    let platforms = t.str_list(cx, "platforms")?;
    for p in &platforms {
        crate::platform::parse(&p.value).map_err(|m| Diagnostic::new(p.span.clone(), m))?;
    }
    t.finish(schema::IMAGE)?;
    Ok(Image {
        base,
        builder,
        deps_image,
        workdir,
        user,
        entrypoint,
        cmd,
        env,
        expose,
        labels,
        init,
        init_span,
        healthcheck,
        stopsignal,
        platforms,
    })
}

fn check_image_ref(r: &Sp<String>) -> Result<()> {
    let s = &r.value;
    let ok = !s.is_empty()
        && !s.starts_with(['/', ':', '@', '.', '-'])
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-/:@".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(Diagnostic::new(r.span.clone(), format!("invalid image reference \"{s}\": expected e.g. \"python:3.12-slim\"")))
    }
}

fn check_port(p: &Sp<String>) -> Result<()> {
    let (num, proto) = p.value.split_once('/').unwrap_or((&p.value, "tcp"));
    let ok = num.parse::<u16>().map(|n| n > 0).unwrap_or(false) && matches!(proto, "tcp" | "udp" | "sctp");
    if ok {
        Ok(())
    } else {
        Err(Diagnostic::new(p.span.clone(), format!("invalid port \"{}\": expected PORT or PORT/tcp|udp|sctp", p.value)))
    }
}

/// `"app"`, `"app:1001"`, `"app:1001:1001"` or `"root"`.
fn parse_user(u: &Sp<String>) -> Result<User> {
    let bad = || {
        Diagnostic::new(
            u.span.clone(),
            format!("invalid user \"{}\": expected NAME, NAME:UID or NAME:UID:GID (e.g. \"app\" or \"app:1000:1000\")", u.value),
        )
    };
    let mut parts = u.value.split(':');
    let name = parts.next().unwrap_or_default();
    let valid_name = !name.is_empty()
        && name.len() <= 32
        && name.bytes().next().is_some_and(|b| b.is_ascii_lowercase() || b == b'_')
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
    if !valid_name {
        return Err(bad());
    }
    let uid = match parts.next() {
        None => 1000,
        Some(s) => s.parse::<u32>().map_err(|_| bad())?,
    };
    let gid = match parts.next() {
        None => uid,
        Some(s) => s.parse::<u32>().map_err(|_| bad())?,
    };
    if parts.next().is_some() {
        return Err(bad());
    }
    if name == "root" {
        return Ok(User::Root);
    }
    if uid == 0 {
        return Err(Diagnostic::new(u.span.clone(), "uid 0 is root: write `user = \"root\"` if you mean it"));
    }
    Ok(User::Named { name: name.to_string(), uid, gid })
}

fn read_system(cx: &Cx, mut t: Table) -> Result<System> {
    let span = t.span.clone();
    let manager = match t.str(cx, "manager")? {
        None => Manager::Apt,
        Some(m) => match m.value.as_str() {
            "apt" => Manager::Apt,
            "apk" => Manager::Apk,
            "dnf" => Manager::Dnf,
            other => {
                return Err(Diagnostic::new(
                    m.span,
                    format!("unknown package manager \"{other}\"; accepted: {}", schema::MANAGERS.join(", ")),
                ));
            }
        },
    };
    let packages = t.str_list(cx, "packages")?;
    let build_packages = t.str_list(cx, "build-packages")?;
    for p in packages.iter().chain(&build_packages) {
        check_package(p)?;
    }
    let layers = name_groups(cx, &mut t, "layers", "system.layers")?;
    for p in layers.iter().flatten() {
        if !packages.iter().any(|q| q.value == p.value) {
            return Err(Diagnostic::new(
                p.span.clone(),
                format!("`system.layers` names \"{}\", which is not in `system.packages`", p.value),
            ));
        }
    }
    t.finish(schema::SYSTEM)?;
    Ok(System { manager, packages, build_packages, layers, span })
}

/// Package names go into an argv, never through a shell; still, reject
/// anything that is not a package name (or name=version) to fail early.
fn check_package(p: &Sp<String>) -> Result<()> {
    let s = &p.value;
    let ok = !s.is_empty() && !s.starts_with('-') && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"+-._:=~*".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(Diagnostic::new(
            p.span.clone(),
            format!("invalid package name \"{s}\": expected NAME or NAME=VERSION (letters, digits, + - . _ : ~)"),
        ))
    }
}

fn read_python(cx: &Cx, mut t: Table) -> Result<Python> {
    let span = t.span.clone();
    let requirements = paths(cx, &mut t, "requirements", "python.requirements")?;
    let packages = t.str_list(cx, "packages")?;
    for p in &packages {
        check_specifier(p)?;
    }
    let pyproject = t.str(cx, "pyproject")?.map(|p| context_path(&p, "python.pyproject")).transpose()?;
    let lock = t.str(cx, "lock")?.map(|p| context_path(&p, "python.lock")).transpose()?;
    let lock_kind = match &lock {
        None => None,
        Some(l) => Some(LockKind::of(&l.value).ok_or_else(|| {
            Diagnostic::new(l.span.clone(), format!("`python.lock` must be a uv.lock, poetry.lock or pdm.lock, not `{}`", l.value))
        })?),
    };
    let extras = t.str_list(cx, "extras")?;
    let groups = t.str_list(cx, "groups")?;
    for (what, names) in [("extra", &extras), ("group", &groups)] {
        for e in names {
            if e.value.is_empty() || !e.value.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b)) {
                return Err(Diagnostic::new(e.span.clone(), format!("invalid {what} name \"{}\": letters, digits, . _ -", e.value)));
            }
        }
    }
    if let (Some(g), None) = (groups.first(), &pyproject) {
        return Err(Diagnostic::new(g.span.clone(), "`python.groups` are read from a pyproject.toml: set `pyproject`"));
    }
    let project = if t.t.iter().any(|(k, _)| k.get_ref() == "project") { Some(t.bool(cx, "project", false)?) } else { None };
    let editable = t.bool(cx, "editable", false)?;
    let package = t.str(cx, "package")?;
    if let Some(p) = &package {
        if p.value.is_empty() || !p.value.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b)) {
            return Err(Diagnostic::new(p.span.clone(), format!("invalid package name \"{}\": letters, digits, . _ -", p.value)));
        }
    }
    let installer = match t.str(cx, "installer")? {
        None => Sp::new(Installer::Uv, span.start..span.start),
        Some(i) => match i.value.as_str() {
            "pip" => Sp::new(Installer::Pip, i.span),
            "uv" => Sp::new(Installer::Uv, i.span),
            other => {
                return Err(Diagnostic::new(i.span, format!("unknown installer \"{other}\"; accepted: {}", schema::INSTALLERS.join(", "))))
            }
        },
    };
    let venv = t.str(cx, "venv")?.unwrap_or_else(|| Sp::new("/opt/venv".into(), span.clone()));
    if !venv.value.starts_with('/') {
        return Err(Diagnostic::new(venv.span, "`python.venv` must be an absolute path"));
    }
    if venv.value.trim_end_matches('/').is_empty() {
        return Err(Diagnostic::new(venv.span, "`python.venv` cannot be `/`: the venv needs a directory of its own"));
    }
    let index_url = t.str(cx, "index-url")?.map(|s| s.value);
    let extra_index_urls = t.str_list(cx, "extra-index-urls")?.into_iter().map(|s| s.value).collect();
    let wheels = t.str(cx, "wheels")?;
    if let Some(w) = &wheels {
        if w.value.is_empty() || !w.value.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-/".contains(&b)) || w.value.contains("..") {
            return Err(Diagnostic::new(w.span.clone(), "`python.wheels` must name a build context (letters, digits, . _ - /)"));
        }
    }
    let uv_version = t.str(cx, "uv-version")?;
    if let Some(v) = &uv_version {
        let ok = !v.value.is_empty()
            && v.value.len() <= 32
            && v.value.split('.').all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
            && v.value.split('.').count() <= 4;
        if !ok {
            return Err(Diagnostic::new(
                v.span.clone(),
                format!("`python.uv-version` must be a release number like \"0.9.5\", not \"{}\"", v.value),
            ));
        }
        if installer.value != Installer::Uv {
            return Err(Diagnostic::new(v.span.clone(), "`python.uv-version` picks the uv strata installs: it needs the uv installer"));
        }
    }
    let keep_pip = t.bool(cx, "keep-pip", false)?;
    let compile = t.bool(cx, "compile", true)?;
    let system_site_packages = t.bool(cx, "system-site-packages", false)?;
    let prune_tests = t.bool(cx, "prune-tests", true)?;
    let layers =
        if t.t.iter().any(|(k, _)| k.get_ref() == "layers") { Some(name_groups(cx, &mut t, "layers", "python.layers")?) } else { None };
    t.finish(schema::PYTHON)?;
    if let (Some(l), None) = (&lock, &pyproject) {
        return Err(Diagnostic::new(l.span.clone(), "`python.lock` needs `python.pyproject` (the project the lock was made for)"));
    }
    if let (Some(p), Some(r)) = (&pyproject, requirements.first()) {
        return Err(Diagnostic::new(
            r.span.clone(),
            format!("use either `requirements` or `pyproject` (`{}`), not both; list extra packages in `packages`", p.value),
        ));
    }
    if lock_kind == Some(LockKind::Uv) && installer.value != Installer::Uv {
        return Err(Diagnostic::new(installer.span.clone(), "a uv.lock is installed with uv: set `installer = \"uv\"`"));
    }
    if let Some(p) = &package {
        if lock_kind != Some(LockKind::Uv) {
            return Err(Diagnostic::new(
                p.span.clone(),
                "`python.package` picks a member of a uv workspace: it needs `lock = \"uv.lock\"`",
            ));
        }
    }
    if editable && (pyproject.is_none() || project == Some(false)) {
        return Err(Diagnostic::new(
            span.start..span.start,
            "`python.editable` installs the project: it needs `python.pyproject` (and not `project = false`)",
        ));
    }
    if project == Some(true) && pyproject.is_none() {
        return Err(Diagnostic::new(span.start..span.start, "`python.project = true` needs `python.pyproject` (the project to install)"));
    }
    if pyproject.is_none() && requirements.is_empty() && packages.is_empty() {
        return Err(Diagnostic::new(
            span.start..span.start,
            "[python] needs `requirements = [\"requirements.txt\"]`, `pyproject` (+ `lock`) or `packages`",
        ));
    }
    Ok(Python {
        requirements,
        packages,
        pyproject,
        lock,
        lock_kind,
        extras,
        groups,
        project,
        editable,
        package,
        installer,
        uv_version: uv_version.map(|v| v.value),
        venv: venv.value,
        index_url,
        extra_index_urls,
        wheels,
        keep_pip,
        compile,
        system_site_packages,
        prune_tests,
        layers,
        span,
    })
}

/// A requirement specifier of `python.packages`: written into a generated
/// requirements file, so it must be one line and not an option.
fn check_specifier(p: &Sp<String>) -> Result<()> {
    let v = p.value.trim();
    let bad = |why: &str| Err(Diagnostic::new(p.span.clone(), format!("invalid requirement \"{}\": {why}", p.value)));
    if v.is_empty() {
        return bad("empty");
    }
    if v.starts_with('-') {
        return bad("options go in a requirements file, not in `packages`");
    }
    if v.contains(['\n', '\r', '\0', '\\']) {
        return bad("one requirement per entry, on one line");
    }
    if !v.as_bytes()[0].is_ascii_alphanumeric() {
        return bad("a requirement starts with the package name");
    }
    Ok(())
}

/// A list of package-name lists (`layers`); empty when absent.
fn name_groups(cx: &Cx, t: &mut Table, key: &str, what: &str) -> Result<Vec<Vec<Sp<String>>>> {
    let Some(v) = t.raw(key) else { return Ok(vec![]) };
    let bad = || {
        Diagnostic::new(
            v.span(),
            format!("`{what}` must be a list of package-name lists, e.g. [[\"torch\", \"torchvision\"], [\"numpy\"]]"),
        )
    };
    let DeValue::Array(groups) = v.get_ref() else { return Err(bad()) };
    let mut out = Vec::new();
    for g in groups.iter() {
        let DeValue::Array(names) = g.get_ref() else { return Err(bad()) };
        let mut group = Vec::new();
        for n in names.iter() {
            let name = string_value(cx, n, what)?;
            if name.value.is_empty() || !name.value.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.+".contains(&b)) {
                return Err(Diagnostic::new(name.span, format!("invalid package name \"{}\" in `{what}`", name.value)));
            }
            group.push(name);
        }
        out.push(group);
    }
    Ok(out)
}

/// A list of context-relative paths, normalised and checked.
fn paths(cx: &Cx, t: &mut Table, key: &str, what: &str) -> Result<Vec<Sp<String>>> {
    t.str_list(cx, key)?.into_iter().map(|p| context_path(&p, what)).collect()
}

fn read_app(cx: &Cx, mut t: Table) -> Result<App> {
    let copy = paths(cx, &mut t, "copy", "app.copy")?;
    if let Some(c) = copy.get(MAX_COPIES) {
        return Err(Diagnostic::new(
            c.span.clone(),
            format!(
                "`app.copy` has {} entries; each is a layer, and strata accepts up to {MAX_COPIES} (copy a parent directory instead)",
                copy.len()
            ),
        ));
    }
    let exclude = t.str_list(cx, "exclude")?;
    for e in &exclude {
        if e.value.is_empty() {
            return Err(Diagnostic::new(e.span.clone(), "empty exclude pattern"));
        }
        if let Some(c) = invisible(&e.value) {
            return Err(Diagnostic::new(
                e.span.clone(),
                format!("exclude pattern contains an invisible or bidirectional control character (U+{:04X})", c as u32),
            ));
        }
    }
    let dest = t.str(cx, "dest")?;
    if let Some(d) = &dest {
        if !d.value.starts_with('/') {
            return Err(Diagnostic::new(d.span.clone(), "`app.dest` must be an absolute path"));
        }
    }
    let chown = match t.str(cx, "chown")? {
        None => None,
        Some(c) => Some(Sp::new(parse_user(&c)?, c.span)),
    };
    t.finish(schema::APP)?;
    Ok(App { copy, exclude, dest: dest.map(|d| d.value), chown })
}

/// `if = "ARG"` / `"!ARG"`: the arg must be declared; true for
/// 1/true/yes/on. Missing `if` is true.
fn eval_if(cx: &Cx, t: &mut Table) -> Result<bool> {
    let q = t.qualified("if");
    let Some(v) = t.raw("if") else { return Ok(true) };
    let DeValue::String(raw) = v.get_ref() else {
        return Err(Diagnostic::new(v.span(), format!("`{q}` must be an arg name, e.g. \"WITH_R\" or \"!WITH_R\"")));
    };
    let (neg, name) = match raw.strip_prefix('!') {
        Some(n) => (true, n.trim()),
        None => (false, raw.trim()),
    };
    let Some(value) = cx.args.get(name) else {
        let known: Vec<&str> = cx.args.keys().map(String::as_str).collect();
        let hint = match did_you_mean(name, &known) {
            Some(k) => format!(" (did you mean `{k}`?)"),
            None => " (declare it under [args])".into(),
        };
        return Err(Diagnostic::new(v.span(), format!("`{q}` names unknown arg `{name}`{hint}")));
    };
    let on = truthy(value).ok_or_else(|| {
        Diagnostic::new(v.span(), format!("arg `{name}` = \"{value}\" is not a boolean; use 1/true/yes/on or 0/false/no/off"))
    })?;
    Ok(on != neg)
}

fn u32_opt(t: &mut Table, key: &str, octal_string: bool) -> Result<Option<u32>> {
    let q = t.qualified(key);
    let Some(v) = t.raw(key) else { return Ok(None) };
    let parsed = match v.get_ref() {
        DeValue::Integer(i) => {
            let digits = i.as_str().replace('_', "");
            let (radix, body) = match digits.strip_prefix("0o") {
                Some(b) => (8, b.to_string()),
                None => (i.radix(), digits.trim_start_matches("0x").trim_start_matches("0b").to_string()),
            };
            u32::from_str_radix(&body, radix).ok()
        }
        DeValue::String(s) if octal_string => u32::from_str_radix(s.trim_start_matches("0o"), 8).ok(),
        _ => None,
    };
    match parsed {
        Some(n) => Ok(Some(n)),
        None if octal_string => Err(Diagnostic::new(v.span(), format!("`{q}` must be a mode like 0o755 or \"0755\""))),
        None => Err(Diagnostic::new(v.span(), format!("`{q}` must be a non-negative integer"))),
    }
}

fn parse_sharing(s: &Sp<String>) -> Result<Sharing> {
    match s.value.as_str() {
        "shared" => Ok(Sharing::Shared),
        "locked" => Ok(Sharing::Locked),
        "private" => Ok(Sharing::Private),
        other => Err(Diagnostic::new(s.span.clone(), format!("unknown sharing \"{other}\"; accepted: {}", schema::SHARING.join(", ")))),
    }
}

fn read_caches(cx: &Cx, v: &Spanned<DeValue<'_>>) -> Result<BTreeMap<String, CacheDef>> {
    let mut out = BTreeMap::new();
    for (name, name_span, val) in named_tables(v, "caches", "cache")? {
        let mut c = table_of(val, &format!("caches.{name}"))?;
        let target = match c.str(cx, "target")? {
            Some(t) if t.value.starts_with('/') => t.value,
            Some(t) => return Err(Diagnostic::new(t.span, format!("`caches.{name}.target` must be an absolute path"))),
            None if CACHE_PRESETS.contains(&name.as_str()) => String::new(),
            None => return Err(Diagnostic::new(name_span, format!("missing required key `caches.{name}.target`"))),
        };
        let sharing = match c.str(cx, "sharing")? {
            Some(s) => parse_sharing(&s)?,
            None => Sharing::Shared,
        };
        let id = c.str(cx, "id")?.map(|s| s.value);
        let mode = u32_opt(&mut c, "mode", true)?;
        let uid = u32_opt(&mut c, "uid", false)?;
        let gid = u32_opt(&mut c, "gid", false)?;
        c.finish(schema::CACHE)?;
        out.insert(name, CacheDef { target, sharing, id, mode, uid, gid, span: val.span() });
    }
    Ok(out)
}

fn check_cache_refs(refs: &[Sp<String>], caches: &BTreeMap<String, CacheDef>, what: &str) -> Result<()> {
    for c in refs {
        if !CACHE_PRESETS.contains(&c.value.as_str()) && !caches.contains_key(&c.value) {
            let mut known: Vec<&str> = CACHE_PRESETS.to_vec();
            known.extend(caches.keys().map(String::as_str));
            let hint = match did_you_mean(&c.value, &known) {
                Some(k) => format!("did you mean `{k}`?"),
                None => format!("presets: {}; or define [caches.{}]", CACHE_PRESETS.join(", "), c.value),
            };
            return Err(Diagnostic::new(c.span.clone(), format!("unknown cache `{}` in `{what}`; {hint}", c.value)));
        }
    }
    Ok(())
}

fn read_steps(cx: &Cx, v: &Spanned<DeValue<'_>>, caches: &BTreeMap<String, CacheDef>) -> Result<Vec<Step>> {
    let DeValue::Array(items) = v.get_ref() else {
        return Err(Diagnostic::new(v.span(), "`step` must be an array of tables: write each as [[step]]"));
    };
    if items.len() > MAX_STEPS {
        return Err(Diagnostic::new(v.span(), format!("{} steps; strata accepts up to {MAX_STEPS}", items.len())));
    }
    let mut steps: Vec<Step> = Vec::new();
    let mut all_names: BTreeMap<String, Span> = BTreeMap::new();
    for item in items.iter() {
        let mut t = table_of(item, "step")?;
        let span = item.span();
        let name = t.str(cx, "name")?.ok_or_else(|| Diagnostic::new(span.start..span.start, "missing required key `step.name`"))?;
        if !valid_name(&name.value) {
            return Err(Diagnostic::new(
                name.span,
                format!("invalid step name \"{}\": use lowercase letters, digits, `-` and `_`", name.value),
            ));
        }
        if all_names.contains_key(&name.value) {
            return Err(Diagnostic::new(name.span.clone(), format!("duplicate step name \"{}\": step names must be unique", name.value)));
        }
        all_names.insert(name.value.clone(), name.span.clone());
        t.path = format!("step.{}", name.value);
        let run = t
            .str(cx, "run")?
            .ok_or_else(|| Diagnostic::new(name.span.clone(), format!("missing required key `step.{}.run`", name.value)))?;
        let stage = match t.str(cx, "stage")? {
            None => StepStage::Build,
            Some(s) => match s.value.as_str() {
                "build" => StepStage::Build,
                "runtime" => StepStage::Runtime,
                other => {
                    return Err(Diagnostic::new(s.span, format!("unknown stage \"{other}\"; accepted: {}", schema::STAGES.join(", "))))
                }
            },
        };
        let inputs = paths(cx, &mut t, "inputs", "step.inputs")?;
        let outputs = t.str_list(cx, "outputs")?;
        for o in &outputs {
            if o.value.split('/').any(|p| p == "..") || o.value.is_empty() {
                return Err(Diagnostic::new(o.span.clone(), format!("output path \"{}\" must not contain `..`", o.value)));
            }
        }
        if stage == StepStage::Runtime && !outputs.is_empty() {
            return Err(Diagnostic::new(
                outputs[0].span.clone(),
                "`outputs` apply to build steps; a stage = \"runtime\" step's changes are already in the image",
            ));
        }
        let step_caches = t.str_list(cx, "caches")?;
        check_cache_refs(&step_caches, caches, "step.caches")?;
        let secrets = t.str_list(cx, "secrets")?;
        for s in &secrets {
            if s.value.is_empty() || !s.value.bytes().all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b)) {
                return Err(Diagnostic::new(s.span.clone(), format!("invalid secret id \"{}\": letters, digits, `_`, `.`, `-`", s.value)));
            }
        }
        let ssh = match t.raw("ssh") {
            None => vec![],
            Some(sv) => match sv.get_ref() {
                DeValue::Boolean(true) => vec![Sp::new("default".to_string(), sv.span())],
                DeValue::Boolean(false) => vec![],
                _ => t.str_list(cx, "ssh")?,
            },
        };
        let network = match t.str(cx, "network")? {
            None => Network::Default,
            Some(n) => match n.value.as_str() {
                "default" => Network::Default,
                "none" => Network::None,
                "host" => Network::Host,
                other => {
                    return Err(Diagnostic::new(n.span, format!("unknown network \"{other}\"; accepted: {}", schema::NETWORKS.join(", "))))
                }
            },
        };
        let env = t.str_map(cx, "env")?;
        let after = t.str_list(cx, "after")?;
        let packages = t.str_list(cx, "packages")?;
        for p in &packages {
            check_package(p)?;
        }
        if stage == StepStage::Runtime && !packages.is_empty() {
            return Err(Diagnostic::new(
                packages[0].span.clone(),
                "`packages` apply to build steps; for a stage = \"runtime\" step, put them in `system.packages`",
            ));
        }
        let enabled = eval_if(cx, &mut t)?;
        t.finish(schema::STEP)?;
        if enabled {
            steps.push(Step { name, run, stage, inputs, outputs, caches: step_caches, secrets, ssh, network, env, after, packages, span });
        }
    }
    // `after` must name steps (disabled ones are skipped silently, so an
    // optional step can be depended on) and must not form a cycle.
    for s in &steps {
        for a in &s.after {
            if !all_names.contains_key(&a.value) {
                let known: Vec<&str> = all_names.keys().map(String::as_str).collect();
                let hint = did_you_mean(&a.value, &known).map(|k| format!(" (did you mean \"{k}\"?)")).unwrap_or_default();
                return Err(Diagnostic::new(a.span.clone(), format!("`after` names unknown step \"{}\"{hint}", a.value)));
            }
            if a.value == s.name.value {
                return Err(Diagnostic::new(a.span.clone(), format!("step \"{}\" cannot run after itself", a.value)));
            }
        }
    }
    check_cycles(&steps)?;
    Ok(steps)
}

fn check_cycles(steps: &[Step]) -> Result<()> {
    let index: BTreeMap<&str, usize> = steps.iter().enumerate().map(|(i, s)| (s.name.value.as_str(), i)).collect();
    // 0 = unvisited, 1 = on the stack, 2 = done
    let mut state = vec![0u8; steps.len()];
    fn visit(i: usize, steps: &[Step], index: &BTreeMap<&str, usize>, state: &mut [u8], path: &mut Vec<usize>) -> Option<Vec<usize>> {
        if state[i] == 2 {
            return None;
        }
        if state[i] == 1 {
            let from = path.iter().position(|&p| p == i).unwrap_or(0);
            return Some(path[from..].to_vec());
        }
        state[i] = 1;
        path.push(i);
        for a in &steps[i].after {
            if let Some(&j) = index.get(a.value.as_str()) {
                if let Some(c) = visit(j, steps, index, state, path) {
                    return Some(c);
                }
            }
        }
        path.pop();
        state[i] = 2;
        None
    }
    for i in 0..steps.len() {
        let mut path = Vec::new();
        if let Some(cycle) = visit(i, steps, &index, &mut state, &mut path) {
            let names: Vec<&str> = cycle.iter().chain(cycle.first()).map(|&j| steps[j].name.value.as_str()).collect();
            let at = steps[cycle[0]].after.first().map(|a| a.span.clone()).unwrap_or(steps[cycle[0]].span.clone());
            return Err(Diagnostic::new(at, format!("steps depend on each other in a cycle: {}", names.join(" → "))));
        }
    }
    Ok(())
}

fn read_r(cx: &Cx, mut t: Table) -> Result<Option<RLang>> {
    let span = t.span.clone();
    let enabled = eval_if(cx, &mut t)?;
    let mut packages = t.str_list(cx, "packages")?;
    for p in &packages {
        check_package(p)?;
    }
    if packages.is_empty() {
        packages.push(Sp::new("r-base-core".into(), span.start..span.start));
    }
    let cran = t.str_list(cx, "cran")?;
    for c in &cran {
        let ok = !c.value.is_empty() && c.value.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.');
        if !ok {
            return Err(Diagnostic::new(c.span.clone(), format!("invalid CRAN package name \"{}\": letters, digits and `.`", c.value)));
        }
    }
    let repos = t.str_list(cx, "repos")?;
    for r in &repos {
        let v = &r.value;
        let ok = if let Some(name) = v.strip_prefix("context:") {
            !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
        } else {
            (v.starts_with("https://") || v.starts_with("http://") || v.starts_with("file:///")) && !v.contains(['\'', '"', '\\', ' '])
        };
        if !ok {
            return Err(Diagnostic::new(
                r.span.clone(),
                format!("invalid repo \"{v}\": expected an http(s):// or file:/// URL, or context:NAME"),
            ));
        }
    }
    t.finish(schema::R)?;
    Ok(enabled.then_some(RLang { packages, cran, repos, span }))
}

fn read_test(cx: &Cx, mut t: Table, caches: &BTreeMap<String, CacheDef>) -> Result<TestSpec> {
    let span = t.span.clone();
    let run = t.str(cx, "run")?.ok_or_else(|| Diagnostic::new(span.start..span.start, "missing required key `test.run`"))?;
    let requirements = paths(cx, &mut t, "requirements", "test.requirements")?;
    let inputs = paths(cx, &mut t, "inputs", "test.inputs")?;
    let test_caches = t.str_list(cx, "caches")?;
    check_cache_refs(&test_caches, caches, "test.caches")?;
    t.finish(schema::TEST)?;
    Ok(TestSpec { run, requirements, inputs, caches: test_caches, span })
}

/// Normalises a context-relative path and refuses anything that could reach
/// outside the build context (absolute paths, `..` escaping the root).
pub fn context_path(p: &Sp<String>, what: &str) -> Result<Sp<String>> {
    let raw = p.value.as_str();
    if raw.starts_with('/') || raw.starts_with('\\') {
        return Err(Diagnostic::new(p.span.clone(), format!("`{what}` paths are relative to the build context; \"{raw}\" is absolute")));
    }
    if raw.contains('\0') || raw.contains('\\') {
        return Err(Diagnostic::new(p.span.clone(), format!("invalid path \"{}\" in `{what}`", raw.escape_default())));
    }
    if let Some(c) = invisible(raw) {
        return Err(Diagnostic::new(
            p.span.clone(),
            format!(
                "path \"{}\" in `{what}` contains an invisible or bidirectional control character (U+{:04X})",
                raw.escape_default(),
                c as u32
            ),
        ));
    }
    let dir = raw.ends_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for part in raw.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if parts.pop().is_none() {
                    return Err(Diagnostic::new(p.span.clone(), format!("path \"{raw}\" in `{what}` leaves the build context")));
                }
            }
            other => parts.push(other),
        }
    }
    let mut norm = parts.join("/");
    if norm.is_empty() {
        norm = ".".into();
    } else if dir {
        norm.push('/');
    }
    Ok(Sp::new(norm, p.span.clone()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load_ok(src: &str) -> Spec {
        load(src, &BTreeMap::new()).unwrap_or_else(|d| panic!("{d:?}"))
    }

    fn err(src: &str) -> (usize, usize, String) {
        let d = load(src, &BTreeMap::new()).unwrap_err();
        let (l, c) = crate::diag::line_col(src, d.span.start);
        (l, c, d.message)
    }

    #[test]
    fn minimal_spec_gets_defaults() {
        let s = load_ok("version = 1\n[image]\nbase = \"busybox\"\n");
        assert_eq!(s.image.workdir.value, "/app");
        assert_eq!(s.image.user.value, User::Named { name: "app".into(), uid: 1000, gid: 1000 });
        assert!(s.python.is_none());
    }

    #[test]
    fn args_expand_and_build_args_override() {
        let src = "version = 1\n[args]\nBASE = \"a:1\"\n[image]\nbase = \"${BASE}\"\nenv = { X = \"v${BASE}\" }\n";
        assert_eq!(load_ok(src).image.base.value, "a:1");
        let over: BTreeMap<_, _> = [("BASE".to_string(), "b:2".to_string())].into();
        let s = load(src, &over).unwrap();
        assert_eq!(s.image.base.value, "b:2");
        assert_eq!(s.image.env, vec![("X".to_string(), "vb:2".to_string())]);
    }

    #[test]
    fn errors_point_at_the_key() {
        assert_eq!(
            err("version = 1\n[image]\nbase = \"x\"\nentrypont = [\"a\"]\n"),
            (4, 1, "unknown key `entrypont` in [image]; did you mean `entrypoint`?".into())
        );
        assert_eq!(err("version = 2\n"), (1, 11, "unsupported version: this strata reads version = 1".into()));
        assert_eq!(err("version = 1\n[image]\nbase = \"${NOPE}\"\n"), (3, 9, "unknown arg `${NOPE}` (declare it under [args])".into()));
        assert_eq!(
            err("version = 1\n[image]\nbase = \"x\"\n[app]\ncopy = [\"../etc\"]\n"),
            (5, 9, "path \"../etc\" in `app.copy` leaves the build context".into())
        );
        let (l, _, m) = err("version = 1\n[image]\nbase = \"x\"\n[system]\npackages = [\"curl; rm -rf /\"]\n");
        assert_eq!(l, 5);
        assert!(m.starts_with("invalid package name"), "{m}");
    }

    /// Every key of the schema, set: the reader must read each (a debug
    /// assertion in `finish` catches a schema key the reader ignores).
    #[test]
    fn every_schema_key_is_read() {
        let src = r#"version = 1
[args]
WITH_R = "1"
[image]
base = "python:3.12-slim"
builder = "python:3.12"
deps-image = "registry.example.com/team/app-deps"
workdir = "/srv"
user = "svc:1001"
entrypoint = ["python"]
cmd = "serve"
env = { A = "1" }
expose = ["8000"]
labels = { team = "ml" }
init = true
healthcheck = { cmd = ["true"], interval = "30s", timeout = "5s", retries = 3 }
stopsignal = "SIGINT"
platforms = ["linux/amd64"]
[system]
packages = ["libpq5"]
build-packages = ["gcc"]
manager = "apt"
layers = [["libpq5"]]
[python]
requirements = ["requirements.txt"]
installer = "uv"
uv-version = "0.13.9"
venv = "/opt/v"
index-url = "https://pypi.example/simple"
extra-index-urls = ["https://extra.example/simple"]
wheels = "wheels"
keep-pip = true
compile = false
system-site-packages = true
prune-tests = false
layers = [["numpy"]]
[r]
if = "WITH_R"
packages = ["r-base-core"]
cran = ["data.table"]
repos = ["context:cran"]
[app]
copy = ["src/"]
exclude = ["tests/"]
dest = "/srv/app"
chown = "svc:1001"
[caches.models]
target = "/models"
sharing = "locked"
id = "models"
mode = 0o755
uid = 1001
gid = 1001
[[step]]
name = "a"
run = "true"
stage = "build"
inputs = ["web/"]
outputs = ["web/dist"]
caches = ["npm", "models"]
secrets = ["token"]
ssh = true
network = "none"
env = { B = "2" }
after = []
if = "WITH_R"
[variants.gpu]
base = "cuda:12"
python = { requirements = ["gpu.txt"] }
[test]
run = "pytest"
requirements = ["dev.txt"]
inputs = ["tests/"]
caches = ["pip"]
"#;
        let s = load_ok(src);
        assert_eq!(s.steps.len(), 1);
        assert!(s.r.is_some());
        // Every key of every table is set above, so the debug assertion in
        // `finish` has seen each one read.
        // pyproject + lock exclude requirements: a second spec has them.
        let lock_src =
            "version = 1\n[image]\nbase = \"x\"\n[python]\npyproject = \"pyproject.toml\"\nlock = \"uv.lock\"\ninstaller = \"uv\"\nextras = [\"web\"]\ngroups = [\"postgres\"]\nproject = true\neditable = true\npackage = \"app\"\npackages = [\"uwsgi\"]\n";
        assert!(load_ok(lock_src).python.unwrap().lock.is_some());
        let both = format!("{src}\n{lock_src}");
        fn walk(keys: &[super::schema::Key], src: &str) {
            use super::schema::Ty;
            for k in keys {
                let set = src.contains(&format!("\n{} = ", k.name))
                    || src.contains(&format!(" {} = ", k.name))
                    || src.contains(&format!("[{}", k.name))
                    || src.contains(&format!("[[{}]]", k.name))
                    || src.starts_with(k.name);
                assert!(set, "the kitchen-sink spec lacks `{}`", k.name);
                if let Ty::Table(sub) | Ty::TableArray(sub) | Ty::NamedTables(sub) = k.ty {
                    walk(sub, src);
                }
            }
        }
        walk(super::schema::TOP, &both);
    }

    #[test]
    fn x_keys_are_ignored() {
        load_ok("version = 1\nx-team = \"ml\"\n[image]\nbase = \"x\"\nx-note = 1\n");
        // ... in the tables of names too: no arg, cache or variant comes of them
        let s = load_ok("version = 1\n[args]\nx-note = \"why\"\nA = \"1\"\n[image]\nbase = \"x\"\n[caches.x-later]\nsharing = \"nope\"\n[variants.x-gpu]\nbase = 1\n");
        assert_eq!(s.args.keys().collect::<Vec<_>>(), ["A"]);
        assert!(s.caches.keys().all(|k| !k.starts_with("x-")), "{:?}", s.caches.keys());
        assert!(s.variants.is_empty());
    }

    /// A default may use the args above it, with their final values (as
    /// `ARG B=${A}` in a Dockerfile); document order, not key order.
    #[test]
    fn arg_defaults_use_earlier_args() {
        let src = "version = 1\n[args]\nREGISTRY = \"ghcr.io/acme\"\nIMAGE = \"${REGISTRY}/app:1\"\n[image]\nbase = \"${IMAGE}\"\n";
        assert_eq!(load_ok(src).image.base.value, "ghcr.io/acme/app:1");
        let over: BTreeMap<_, _> = [("REGISTRY".to_string(), "localhost:5000".to_string())].into();
        assert_eq!(load(src, &over).unwrap().image.base.value, "localhost:5000/app:1");
        // an override of the dependent arg is taken as it is
        let over: BTreeMap<_, _> = [("IMAGE".to_string(), "busybox".to_string())].into();
        assert_eq!(load(src, &over).unwrap().image.base.value, "busybox");
    }

    #[test]
    fn if_takes_an_arg_or_its_negation() {
        let src = |cond: &str| {
            format!("version = 1\n[args]\nWITH_R = \"0\"\n[image]\nbase = \"x\"\n[[step]]\nname = \"s\"\nrun = \"true\"\nif = \"{cond}\"\n")
        };
        assert!(load_ok(&src("WITH_R")).steps.is_empty());
        assert_eq!(load_ok(&src("!WITH_R")).steps.len(), 1);
        let on: BTreeMap<_, _> = [("WITH_R".to_string(), "yes".to_string())].into();
        assert_eq!(load(&src("WITH_R"), &on).unwrap().steps.len(), 1);
        assert!(load(&src("!WITH_R"), &on).unwrap().steps.is_empty());
    }

    #[test]
    fn context_paths_normalise() {
        let p = |s: &str| context_path(&Sp::new(s.to_string(), 0..0), "t").map(|p| p.value);
        assert_eq!(p("./src/").unwrap(), "src/");
        assert_eq!(p("a/../b").unwrap(), "b");
        assert_eq!(p(".").unwrap(), ".");
        assert!(p("a/../../b").is_err());
        assert!(p("/etc/passwd").is_err());
    }

    #[test]
    fn users() {
        let u = |s: &str| parse_user(&Sp::new(s.to_string(), 0..0));
        assert_eq!(u("root").unwrap(), User::Root);
        assert_eq!(u("svc:1001").unwrap(), User::Named { name: "svc".into(), uid: 1001, gid: 1001 });
        assert!(u("app:0").is_err());
        assert!(u("Bad Name").is_err());
    }
}
