//! Reading the spanned TOML tree into `Spec`.
//!
//! We walk `toml`'s spanned `DeTable` by hand instead of using serde derive:
//! that is what lets every error point at the exact key or value, list the
//! accepted keys, suggest the closest one for a typo and allow `x-` keys.

use std::collections::{BTreeMap, BTreeSet};

use toml::de::{DeTable, DeValue};
use toml::Spanned;

use super::expand::expand;
use super::*;
use crate::diag::{did_you_mean, Diagnostic};

type Result<T> = std::result::Result<T, Diagnostic>;

const TOP_KEYS: &[&str] = &["version", "args", "image", "system", "python", "r", "app", "step", "caches", "variants", "test"];
/// Sections the contract defines that this build cannot turn into LLB yet.
/// They are rejected with a clear message rather than silently ignored.
const NOT_YET: &[&str] = &["r", "step", "caches", "variants", "test"];
const IMAGE_KEYS: &[&str] = &[
    "base", "builder", "workdir", "user", "entrypoint", "cmd", "env", "expose", "labels", "init", "healthcheck", "stopsignal",
    "platforms",
];
const SYSTEM_KEYS: &[&str] = &["packages", "build-packages", "manager"];
const PYTHON_KEYS: &[&str] = &[
    "requirements", "pyproject", "lock", "installer", "venv", "index-url", "extra-index-urls", "wheels", "keep-pip", "compile",
];
const APP_KEYS: &[&str] = &["copy", "exclude", "dest", "chown"];
const HEALTHCHECK_KEYS: &[&str] = &["cmd", "interval", "timeout", "retries"];

/// Parses and validates a spec. `build_args` are the `--build-arg` values;
/// they override `[args]` defaults (undeclared build args are ignored, as
/// the Dockerfile frontend does).
pub fn load(source: &str, build_args: &BTreeMap<String, String>) -> Result<Spec> {
    let doc = DeTable::parse(source).map_err(|e| {
        let span = e.span().unwrap_or(0..0);
        Diagnostic::new(span, format!("invalid TOML: {}", e.message().trim()))
    })?;
    let doc_span = doc.span();
    let doc = doc.into_inner();
    let mut top = Table::new(&doc, doc_span.clone(), "");

    // version first: a spec for another format version should fail on that,
    // not on whatever key it uses that we do not know.
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

    let args = read_args(&mut top, build_args)?;
    let cx = Cx { args: &args };
    for key in top.unknown_keys(TOP_KEYS) {
        return Err(key);
    }
    for name in NOT_YET {
        if let Some(v) = top.raw(name) {
            return Err(Diagnostic::new(
                key_span(&doc, name).unwrap_or(v.span()),
                format!("[{}] is part of strata.toml v1 but not supported by this strata build yet", display_section(name)),
            ));
        }
    }

    let Some(image_v) = top.raw("image") else {
        return Err(Diagnostic::new(0..0, "missing [image] section: at least `[image] base = \"<image ref>\"` is required"));
    };
    let image = read_image(&cx, table_of(image_v, "image")?)?;
    let system = match top.raw("system") {
        Some(v) => read_system(&cx, table_of(v, "system")?)?,
        None => System { manager: Manager::Apt, packages: vec![], build_packages: vec![], span: 0..0 },
    };
    let python = match top.raw("python") {
        Some(v) => Some(read_python(&cx, table_of(v, "python")?)?),
        None => None,
    };
    let app = match top.raw("app") {
        Some(v) => read_app(&cx, table_of(v, "app")?)?,
        None => App { copy: vec![], exclude: vec![], dest: None, chown: None },
    };
    Ok(Spec { args, image, system, python, app })
}

fn list_versions() -> String {
    SUPPORTED_VERSIONS.iter().map(|v| v.to_string()).collect::<Vec<_>>().join(", ")
}

fn display_section(name: &str) -> String {
    if name == "step" {
        "[step]".into()
    } else {
        name.into()
    }
}

fn key_span(t: &DeTable<'_>, key: &str) -> Option<Span> {
    t.iter().find(|(k, _)| k.get_ref() == key).map(|(k, _)| k.span())
}

struct Cx<'a> {
    args: &'a BTreeMap<String, String>,
}

impl Cx<'_> {
    /// Expands `${NAME}` in a string value, pointing errors into the value.
    fn expand(&self, s: &str, span: &Span) -> Result<String> {
        expand(s, self.args).map_err(|(at, msg)| {
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
                DeValue::Array(items) => {
                    Ok(Some(items.iter().map(|i| string_value(cx, i, &q).map(|s| s.value)).collect::<Result<_>>()?))
                }
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
        let mut out: Vec<(String, String)> = Vec::new();
        for (k, val) in t.iter() {
            let name = k.get_ref().to_string();
            if name.is_empty() || name.contains('=') {
                return Err(Diagnostic::new(k.span(), format!("invalid name `{name}` in `{q}`")));
            }
            let value = string_value(cx, val, &format!("{q}.{name}"))?.value;
            out.push((name, value));
        }
        Ok(out)
    }

    /// Keys not consumed and not `x-` extensions, as errors.
    fn unknown_keys(&self, known: &[&str]) -> Vec<Diagnostic> {
        let mut out = vec![];
        for (k, _) in self.t.iter() {
            let key = k.get_ref();
            if known.contains(&key.as_ref()) || key.starts_with("x-") {
                continue;
            }
            let where_ = if self.path.is_empty() { "at the top level".to_string() } else { format!("in [{}]", self.path) };
            let hint = match did_you_mean(key, known) {
                Some(s) => format!("did you mean `{s}`?"),
                None => format!("accepted: {}", known.join(", ")),
            };
            out.push(Diagnostic::new(k.span(), format!("unknown key `{key}` {where_}; {hint}")));
        }
        out
    }

    fn finish(self, known: &[&str]) -> Result<()> {
        match self.unknown_keys(known).into_iter().next() {
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
        DeValue::String(s) => Ok(Sp::new(cx.expand(s, &v.span())?, v.span())),
        DeValue::Integer(i) => Ok(Sp::new(i.as_str().replace('_', ""), v.span())),
        DeValue::Boolean(b) => Ok(Sp::new(b.to_string(), v.span())),
        other => Err(Diagnostic::new(v.span(), format!("`{what}` must be a string, found {}", other.type_str()))),
    }
}

fn read_args(top: &mut Table, overrides: &BTreeMap<String, String>) -> Result<BTreeMap<String, String>> {
    let mut args = BTreeMap::new();
    let Some(v) = top.raw("args") else { return Ok(args) };
    let DeValue::Table(t) = v.get_ref() else {
        return Err(Diagnostic::new(v.span(), "`args` must be a table of NAME = \"default\""));
    };
    // Defaults cannot reference other args: the order of evaluation would be
    // a surprise, and Dockerfile users expect plain values here.
    let empty = BTreeMap::new();
    let cx = Cx { args: &empty };
    for (k, val) in t.iter() {
        let name = k.get_ref().to_string();
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            return Err(Diagnostic::new(k.span(), format!("invalid arg name `{name}`: use letters, digits and `_`")));
        }
        let default = string_value(&cx, val, &format!("args.{name}"))?.value;
        let value = overrides.get(&name).cloned().unwrap_or(default);
        args.insert(name, value);
    }
    Ok(args)
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
    if init {
        return Err(not_yet(&t, "init", "`image.init` (tini as PID 1)"));
    }
    let healthcheck = match t.raw("healthcheck") {
        None => None,
        Some(v) => {
            let mut h = table_of(v, "image.healthcheck")?;
            let cmd = h.command(cx, "cmd")?.ok_or_else(|| Diagnostic::new(v.span(), "missing required key `image.healthcheck.cmd`"))?;
            let interval = h.str(cx, "interval")?.map(|s| s.value);
            let timeout = h.str(cx, "timeout")?.map(|s| s.value);
            let retries = match h.raw("retries") {
                None => None,
                Some(r) => match r.get_ref() {
                    DeValue::Integer(i) => Some(i.as_str().parse::<i64>().map_err(|_| Diagnostic::new(r.span(), "retries out of range"))?),
                    _ => return Err(Diagnostic::new(r.span(), "`image.healthcheck.retries` must be an integer")),
                },
            };
            h.finish(HEALTHCHECK_KEYS)?;
            Some(Healthcheck { cmd, interval, timeout, retries })
        }
    };
    let stopsignal = t.str(cx, "stopsignal")?.map(|s| s.value);
    let platforms = t.str_list(cx, "platforms")?;
    if let Some(p) = platforms.first() {
        return Err(Diagnostic::new(p.span.clone(), "`image.platforms` (multi-platform builds) is not supported by this strata build yet"));
    }
    t.finish(IMAGE_KEYS)?;
    Ok(Image { base, builder, workdir, user, entrypoint, cmd, env, expose, labels, init, healthcheck, stopsignal, platforms })
}

fn not_yet(t: &Table, key: &str, what: &str) -> Diagnostic {
    let span = key_span(t.t, key).unwrap_or(t.span.clone());
    Diagnostic::new(span, format!("{what} is part of strata.toml v1 but not supported by this strata build yet"))
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
            "apk" | "dnf" => {
                return Err(Diagnostic::new(m.span, format!("`system.manager = \"{}\"` is not supported by this strata build yet", m.value)))
            }
            other => {
                return Err(Diagnostic::new(m.span, format!("unknown package manager \"{other}\"; accepted: apt, apk, dnf")));
            }
        },
    };
    let packages = t.str_list(cx, "packages")?;
    let build_packages = t.str_list(cx, "build-packages")?;
    for p in packages.iter().chain(&build_packages) {
        check_package(p)?;
    }
    t.finish(SYSTEM_KEYS)?;
    Ok(System { manager, packages, build_packages, span })
}

/// Package names go into an argv, never through a shell; still, reject
/// anything that is not a package name (or name=version) to fail early.
fn check_package(p: &Sp<String>) -> Result<()> {
    let s = &p.value;
    let ok = !s.is_empty()
        && !s.starts_with('-')
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"+-._:=~*".contains(&b));
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
    let requirements = t.str_list(cx, "requirements")?;
    let requirements = requirements.into_iter().map(|r| context_path(&r, "python.requirements")).collect::<Result<Vec<_>>>()?;
    for key in ["pyproject", "lock"] {
        if t.raw(key).is_some() {
            return Err(not_yet(&t, key, &format!("`python.{key}` (uv lock installs)")));
        }
    }
    let installer = match t.str(cx, "installer")? {
        None => Sp::new(Installer::Pip, span.start..span.start),
        Some(i) => match i.value.as_str() {
            "pip" => Sp::new(Installer::Pip, i.span),
            "uv" => return Err(Diagnostic::new(i.span, "`python.installer = \"uv\"` is not supported by this strata build yet; use \"pip\"")),
            other => return Err(Diagnostic::new(i.span, format!("unknown installer \"{other}\"; accepted: pip, uv"))),
        },
    };
    let venv = t.str(cx, "venv")?.unwrap_or_else(|| Sp::new("/opt/venv".into(), span.clone()));
    if !venv.value.starts_with('/') || venv.value == "/" {
        return Err(Diagnostic::new(venv.span, "`python.venv` must be an absolute path other than /"));
    }
    let index_url = t.str(cx, "index-url")?.map(|s| s.value);
    let extra_index_urls = t.str_list(cx, "extra-index-urls")?.into_iter().map(|s| s.value).collect();
    let wheels = t.str(cx, "wheels")?;
    if let Some(w) = &wheels {
        if w.value.is_empty() || !w.value.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-/".contains(&b)) || w.value.contains("..") {
            return Err(Diagnostic::new(w.span.clone(), "`python.wheels` must name a build context (letters, digits, . _ - /)"));
        }
    }
    let keep_pip = t.bool(cx, "keep-pip", false)?;
    let compile = t.bool(cx, "compile", true)?;
    t.finish(PYTHON_KEYS)?;
    if requirements.is_empty() {
        return Err(Diagnostic::new(span.start..span.start, "[python] needs `requirements = [\"requirements.txt\"]`"));
    }
    Ok(Python { requirements, installer, venv: venv.value, index_url, extra_index_urls, wheels, keep_pip, compile, span })
}

fn read_app(cx: &Cx, mut t: Table) -> Result<App> {
    let copy = t.str_list(cx, "copy")?.into_iter().map(|p| context_path(&p, "app.copy")).collect::<Result<Vec<_>>>()?;
    let exclude = t.str_list(cx, "exclude")?;
    for e in &exclude {
        if e.value.is_empty() {
            return Err(Diagnostic::new(e.span.clone(), "empty exclude pattern"));
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
    t.finish(APP_KEYS)?;
    Ok(App { copy, exclude, dest: dest.map(|d| d.value), chown })
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
        assert_eq!(
            err("version = 1\n[image]\nbase = \"${NOPE}\"\n"),
            (3, 9, "unknown arg `${NOPE}` (declare it under [args])".into())
        );
        assert_eq!(
            err("version = 1\n[image]\nbase = \"x\"\n[app]\ncopy = [\"../etc\"]\n"),
            (5, 9, "path \"../etc\" in `app.copy` leaves the build context".into())
        );
        let (l, _, m) = err("version = 1\n[image]\nbase = \"x\"\n[system]\npackages = [\"curl; rm -rf /\"]\n");
        assert_eq!(l, 5);
        assert!(m.starts_with("invalid package name"), "{m}");
    }

    #[test]
    fn x_keys_are_ignored() {
        load_ok("version = 1\nx-team = \"ml\"\n[image]\nbase = \"x\"\nx-note = 1\n");
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
