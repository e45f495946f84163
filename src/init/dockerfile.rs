//! A reader of Dockerfiles for `strata init`: what an existing Dockerfile
//! says about a project (stages, environment, start command, ports, system
//! and Python packages), read the way Docker's parser reads it.
//!
//! The reader follows Docker's rules: parser directives (`# syntax=`,
//! `# escape=`) at the top, line continuations (comment and blank lines
//! inside a continuation are dropped), heredocs for `RUN`/`COPY`/`ADD`, exec
//! (JSON) vs shell form, and `$VAR`/`${VAR}`/`${VAR:-default}` substitution
//! with the ARG and ENV values known at that point. Where Docker would stop
//! with an error on something harmless (an unknown instruction, an `ENV`
//! without a value) this reader skips it: it reads, it doesn't validate.
//!
//! One deliberate difference: a variable with no known value (an `ARG`
//! without default, `$PATH` from the base image) is left as written instead
//! of becoming empty, so `ENV PATH=/venv/bin:$PATH` reads as
//! `/venv/bin:$PATH`.
//!
//! The work is linear in the input: variable expansion and stage inheritance
//! draw on one budget proportional to the input size, and a Dockerfile that
//! exceeds it is an error, not a hang.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

/// A parsed Dockerfile.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Dockerfile {
    /// The build stages, in file order (index = Docker's stage index).
    pub stages: Vec<Stage>,
    /// `ARG`s before the first `FROM`, with their defaults (after substitution).
    pub global_args: Vec<(String, Option<String>)>,
    /// The `# syntax=` parser directive, if any.
    pub syntax: Option<String>,
}

/// One build stage: a `FROM` and the instructions up to the next one.
///
/// The image-config facts (`workdir`, `env`, `user`, `shell`, `cmd`,
/// `entrypoint`, `expose`, `healthcheck`, `labels`, `volumes`,
/// `stopsignal`) include what the stage inherits from an earlier stage it is
/// built `FROM`; `args`, `runs`, `copies` and the package lists are this
/// stage's own.
/// The distribution whose package names a stage uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OsFamily {
    #[default]
    Debian,
    Alpine,
    Fedora,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Stage {
    /// The `AS` name, as written.
    pub name: Option<String>,
    /// The `FROM` reference after substitution of the global ARGs.
    pub base: String,
    /// The earlier stage `base` names, when it names one.
    pub base_stage: Option<usize>,
    /// `FROM --platform=...`, after substitution.
    pub platform: Option<String>,
    /// 1-based line of the `FROM`.
    pub line: usize,
    /// `ARG`s declared in this stage, with their value (the default, or the
    /// global ARG's default when the stage redeclares a global ARG).
    pub args: Vec<(String, Option<String>)>,
    /// The working directory (absolute, normalized) when a `WORKDIR` set it.
    pub workdir: Option<String>,
    /// Environment variables, each key once in the order it was first set;
    /// a later `ENV` replaces the value in place, as in the image config.
    pub env: Vec<(String, String)>,
    /// `USER name[:group]`.
    pub user: Option<String>,
    /// The `SHELL` for shell-form commands, when set.
    pub shell: Option<Vec<String>>,
    /// `CMD`; an `ENTRYPOINT` in this stage resets a `CMD` inherited from the
    /// parent stage, as Docker does.
    pub cmd: Option<Command>,
    /// `ENTRYPOINT`; `ENTRYPOINT []` is `Some(Exec([]))` (explicitly reset).
    pub entrypoint: Option<Command>,
    /// Exposed ports, `"8000"` (tcp) or `"53/udp"`, each once.
    pub expose: Vec<String>,
    /// The `HEALTHCHECK CMD`; `HEALTHCHECK NONE` clears it.
    pub healthcheck: Option<Command>,
    /// The healthcheck's options without `--`, e.g. `("interval", "30s")`.
    pub healthcheck_flags: Vec<(String, String)>,
    /// Labels, each key once (a later `LABEL` replaces the value in place).
    pub labels: Vec<(String, String)>,
    /// `VOLUME` paths, each once.
    pub volumes: Vec<String>,
    /// `STOPSIGNAL`.
    pub stopsignal: Option<String>,
    /// The `RUN` instructions, in order.
    pub runs: Vec<Run>,
    /// The `COPY` and `ADD` instructions, in order.
    pub copies: Vec<Copy>,
    /// Every package named by `apt-get`/`apt install`, `apk add`,
    /// `dnf`/`yum`/`microdnf`/`tdnf install` in this stage's `RUN`s, each once:
    /// options dropped, `$VAR`s expanded (ARG, ENV and shell assignments
    /// earlier in the same `RUN`), version pins (`pkg=1.2`) kept as written.
    /// Words whose value is unknown (an unset variable, `$(...)`) and local
    /// paths are left out.
    pub apt_packages: Vec<String>,
    /// Whose names `apt_packages` are: Alpine's when the stage installs
    /// with `apk`, Fedora's with `dnf`/`yum`, else Debian's.
    pub os_family: OsFamily,
    /// Requirement specifiers installed by `pip`/`pip3`/`python -m pip`/
    /// `uv pip` `install` or built by `pip wheel` in this stage, each once and
    /// as written (`minio==7.2.20`, `psycopg[c]`); `-r`/`-c`/`-e` arguments,
    /// local paths (`.`, `/wheels/*`, `*.whl`) and pip itself left out.
    pub pip_packages: Vec<String>,
    /// The files named by `-r`/`--requirement`, as written.
    pub pip_requirement_files: Vec<String>,
}

/// A command of `CMD`, `ENTRYPOINT`, `HEALTHCHECK CMD`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Exec (JSON) form: the argv as written.
    Exec(Vec<String>),
    /// Shell form: the text, run by the stage's shell.
    Shell(String),
}

/// A `RUN` instruction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Run {
    /// The shell text: shell form as written (continuations joined), exec
    /// form joined with spaces. A lone heredoc (`RUN <<EOF`) is its body;
    /// a command with heredocs (`RUN python <<EOF`) is the line followed by
    /// each body and terminator, the text Docker hands to the shell.
    pub command: String,
    /// The raw `--mount=` values, e.g. `type=cache,target=/root/.cache/pip`.
    pub mounts: Vec<String>,
    /// 1-based line of the instruction.
    pub line: usize,
}

/// A `COPY` or `ADD` instruction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Copy {
    /// The sources after substitution (`<<EOF` for a heredoc source).
    pub sources: Vec<String>,
    /// The destination, absolute, resolved against the WORKDIR (`/` when
    /// none); a trailing `/` is kept when the destination names a directory
    /// (`./`, `.`, `dir/`).
    pub dest: String,
    /// `--from=`: a stage name, a stage index or an image reference.
    pub from: Option<String>,
    /// `--chown=`.
    pub chown: Option<String>,
    /// `--chmod=`.
    pub chmod: Option<String>,
    /// `ADD` rather than `COPY`.
    pub is_add: bool,
    /// 1-based line of the instruction.
    pub line: usize,
}

impl Dockerfile {
    /// The stage `docker build` builds by default: the last one.
    pub fn final_stage(&self) -> Option<&Stage> {
        self.stages.last()
    }

    /// A stage by name (case-insensitive) or index string.
    pub fn stage(&self, name: &str) -> Option<&Stage> {
        self.stage_index(name).map(|i| &self.stages[i])
    }

    /// The index of the stage `name` names (case-insensitive), or of the
    /// index string `name`.
    pub fn stage_index(&self, name: &str) -> Option<usize> {
        self.stages
            .iter()
            .position(|s| s.name.as_deref().is_some_and(|n| n.eq_ignore_ascii_case(name)))
            .or_else(|| name.parse::<usize>().ok().filter(|&i| i < self.stages.len()))
    }

    /// The stage whose `FROM` is an image at the root of `idx`'s chain of
    /// `FROM stage` (itself when it starts from an image).
    pub fn root_stage(&self, idx: usize) -> &Stage {
        let mut at = &self.stages[idx];
        for _ in 0..self.stages.len() {
            match at.base_stage {
                Some(b) => at = &self.stages[b],
                None => break,
            }
        }
        at
    }

    /// The stages `idx` depends on through `FROM` and `COPY --from` /
    /// `RUN --mount=...,from=`, including itself, in ascending order. Names
    /// and indices resolve to earlier stages only; anything else is an image.
    pub fn needed_stages(&self, idx: usize) -> Vec<usize> {
        if idx >= self.stages.len() {
            return Vec::new();
        }
        let mut names: HashMap<String, Vec<usize>> = HashMap::new();
        for (i, s) in self.stages.iter().enumerate() {
            if let Some(n) = &s.name {
                names.entry(n.to_ascii_lowercase()).or_default().push(i);
            }
        }
        let resolve = |r: &str, before: usize| -> Option<usize> {
            if let Some(v) = names.get(&r.to_ascii_lowercase()) {
                let k = v.partition_point(|&i| i < before);
                if k > 0 {
                    return Some(v[k - 1]);
                }
            }
            r.parse::<usize>().ok().filter(|&i| i < before)
        };
        let mut seen = vec![false; self.stages.len()];
        let mut todo = vec![idx];
        while let Some(i) = todo.pop() {
            if seen[i] {
                continue;
            }
            seen[i] = true;
            let s = &self.stages[i];
            todo.extend(s.base_stage.filter(|&b| b < i));
            for c in &s.copies {
                todo.extend(c.from.as_deref().and_then(|f| resolve(f, i)));
            }
            for r in &s.runs {
                for m in &r.mounts {
                    for kv in m.split(',') {
                        if let Some((k, v)) = kv.split_once('=') {
                            if k.trim().eq_ignore_ascii_case("from") {
                                todo.extend(resolve(v.trim(), i));
                            }
                        }
                    }
                }
            }
        }
        (0..seen.len()).filter(|&i| seen[i]).collect()
    }
}

impl Stage {
    /// A Node (or bun) image: `node:20`, `docker.io/library/node:20-slim`,
    /// `REGISTRY/…/node:20`, `oven/bun:1`. init turns such a stage into an
    /// asset step, so its packages are not the builder's.
    pub fn is_node(&self) -> bool {
        let b = self.base.trim_start_matches("docker.io/").trim_start_matches("library/");
        b.starts_with("node") || b.starts_with("oven/bun") || self.base.contains("/node:")
    }

    /// The value of environment variable `key`.
    pub fn env_var(&self, key: &str) -> Option<&str> {
        self.env.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    /// The argv of `c` in this stage: shell form runs through the stage's
    /// `SHELL` (`/bin/sh -c` by default).
    pub fn argv(&self, c: &Command) -> Vec<String> {
        match (c, &self.shell) {
            (Command::Shell(s), Some(sh)) => sh.iter().cloned().chain([s.clone()]).collect(),
            _ => c.argv(),
        }
    }

    /// What a container of this stage runs, as Docker combines them:
    /// a shell-form `ENTRYPOINT` alone, an exec-form one followed by the
    /// `CMD`, or the `CMD`. `None` when this Dockerfile sets neither (the base
    /// image's own then applies) or the result is empty.
    pub fn start_argv(&self) -> Option<Vec<String>> {
        let v = match (&self.entrypoint, &self.cmd) {
            (Some(ep @ Command::Shell(_)), _) => self.argv(ep),
            (Some(Command::Exec(ep)), cmd) => {
                let mut v = ep.clone();
                if let Some(c) = cmd {
                    v.extend(self.argv(c));
                }
                v
            }
            (None, Some(c)) => self.argv(c),
            (None, None) => return None,
        };
        (!v.is_empty()).then_some(v)
    }
}

impl Command {
    /// The argv Docker runs: exec form as is, shell form as
    /// `["/bin/sh", "-c", text]` (see [`Stage::argv`] for a stage's `SHELL`).
    pub fn argv(&self) -> Vec<String> {
        match self {
            Command::Exec(v) => v.clone(),
            Command::Shell(s) => vec!["/bin/sh".to_string(), "-c".to_string(), s.clone()],
        }
    }

    /// The words of the command: exec form as is; shell form split on
    /// whitespace with simple shell quoting (`'...'`, `"..."`, `\`), no
    /// expansion and no shell operators recognized.
    pub fn words(&self) -> Vec<String> {
        match self {
            Command::Exec(v) => v.clone(),
            Command::Shell(s) => shell_words(s),
        }
    }
}

/// Splits `s` into words with simple shell quoting rules.
fn shell_words(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut it = s.chars().peekable();
    while let Some(c) = it.next() {
        match c {
            c if c.is_whitespace() => {
                if in_word {
                    out.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            '\'' => {
                in_word = true;
                for c in it.by_ref() {
                    if c == '\'' {
                        break;
                    }
                    cur.push(c);
                }
            }
            '"' => {
                in_word = true;
                while let Some(c) = it.next() {
                    match c {
                        '"' => break,
                        '\\' if matches!(it.peek(), Some('"' | '\\' | '$' | '`')) => cur.extend(it.next()),
                        c => cur.push(c),
                    }
                }
            }
            '\\' => {
                in_word = true;
                cur.extend(it.next());
            }
            c => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    if in_word {
        out.push(cur);
    }
    out
}

/// The candidate Dockerfiles of the project at `dir`: `Dockerfile`,
/// `Containerfile`, `dockerfile`, `*.Dockerfile`, `Dockerfile.*` (any case,
/// not `*.dockerignore`) at the top and in `docker/`, `deploy/`, `build/`,
/// `.docker/`. Sorted best first: names that look like development, test or
/// CI files last; then the top before the folders; then `Dockerfile`,
/// `Containerfile`, `dockerfile`, names saying `default`/`prod`/`release`,
/// the rest by name.
pub fn find(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for (depth, sub) in [(0u8, ""), (1, "docker"), (1, "deploy"), (1, "build"), (1, ".docker")] {
        let d = if sub.is_empty() { dir.to_path_buf() } else { dir.join(sub) };
        let Ok(rd) = std::fs::read_dir(&d) else { continue };
        for e in rd.flatten() {
            let Some(name) = e.file_name().to_str().map(str::to_string) else { continue };
            let p = e.path();
            if is_dockerfile_name(&name) && p.is_file() {
                found.push(((devish(&name), depth, name_rank(&name), name.to_ascii_lowercase()), p));
            }
        }
    }
    found.sort();
    found.into_iter().map(|(_, p)| p).collect()
}

fn is_dockerfile_name(name: &str) -> bool {
    let l = name.to_ascii_lowercase();
    if l.ends_with(".dockerignore") {
        return false;
    }
    ["dockerfile", "containerfile"].iter().any(|b| l == *b || l.ends_with(&format!(".{b}")) || l.starts_with(&format!("{b}.")))
}

fn devish(name: &str) -> bool {
    let l = name.to_ascii_lowercase();
    l.contains("dev") || l.contains("test") || l.split(|c: char| !c.is_ascii_alphanumeric()).any(|t| t == "ci")
}

fn name_rank(name: &str) -> u8 {
    match name {
        "Dockerfile" => 0,
        "Containerfile" => 1,
        "dockerfile" => 2,
        _ => {
            let l = name.to_ascii_lowercase();
            let good = ["default", "prod", "production", "release", "main"];
            if l.split(|c: char| !c.is_ascii_alphanumeric()).any(|t| good.contains(&t)) {
                3
            } else {
                4
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Parsing

/// The expansion budget: bytes that substitution and stage inheritance may
/// produce beyond the input itself.
struct Budget {
    left: usize,
    out: bool,
}

impl Budget {
    fn take(&mut self, n: usize) -> bool {
        if n > self.left {
            self.out = true;
            self.left = 0;
            return false;
        }
        self.left -= n;
        true
    }
}

/// A heredoc of an instruction.
struct Heredoc {
    name: String,
    body: String,
}

/// One instruction: its continuation lines joined, its heredocs read.
struct Instr {
    line: usize,
    keyword: String,
    rest: String,
    heredocs: Vec<Heredoc>,
}

/// The stage being read, with indexes for its lists.
#[derive(Default)]
struct Building {
    stage: Stage,
    env_idx: HashMap<String, usize>,
    label_idx: HashMap<String, usize>,
    expose_set: HashSet<String>,
    volume_set: HashSet<String>,
    arg_vals: HashMap<String, String>,
    cmd_set: bool,
    apt_set: HashSet<String>,
    pip_set: HashSet<String>,
    req_set: HashSet<String>,
}

impl Building {
    fn lookup(&self, name: &str) -> Option<String> {
        match self.env_idx.get(name) {
            Some(&i) => Some(self.stage.env[i].1.clone()),
            None => self.arg_vals.get(name).cloned(),
        }
    }
}

fn set_kv(list: &mut Vec<(String, String)>, idx: &mut HashMap<String, usize>, k: String, v: String) {
    match idx.get(&k) {
        Some(&i) => list[i].1 = v,
        None => {
            idx.insert(k.clone(), list.len());
            list.push((k, v));
        }
    }
}

fn push_unique(list: &mut Vec<String>, set: &mut HashSet<String>, v: String) {
    if !v.is_empty() && set.insert(v.clone()) {
        list.push(v);
    }
}

struct Parser<'a> {
    lines: Vec<&'a str>,
    pos: usize,
    escape: char,
    budget: Budget,
    df: Dockerfile,
    global_vals: HashMap<String, String>,
    names: HashMap<String, usize>,
    cur: Option<Building>,
}

/// Parses a Dockerfile. Errors (`line N: ...`) are for an unterminated
/// heredoc, an unterminated JSON array (`CMD ["a", "b"`), and input whose
/// variable expansion or stage inheritance grows beyond a bound linear in
/// its size; anything else unreadable is skipped. Never panics.
pub fn parse(text: &str) -> Result<Dockerfile, String> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let lines: Vec<&str> = text.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l)).collect();
    let mut p = Parser {
        lines,
        pos: 0,
        escape: '\\',
        budget: Budget { left: text.len().saturating_mul(8).saturating_add(8 << 20), out: false },
        df: Dockerfile::default(),
        global_vals: HashMap::new(),
        names: HashMap::new(),
        cur: None,
    };
    p.directives();
    while let Some(ins) = p.next_instruction()? {
        p.dispatch(&ins)?;
        if p.budget.out {
            return Err(format!("line {}: too much variable expansion or stage inheritance to read", ins.line));
        }
    }
    p.finish_stage();
    Ok(p.df)
}

/// A parser directive line: `# key=value`.
fn directive(line: &str) -> Option<(String, String)> {
    let rest = line.trim_start().strip_prefix('#')?.trim_start_matches([' ', '\t']);
    let end = rest.find(|c: char| !c.is_ascii_alphanumeric()).unwrap_or(rest.len());
    let key = &rest[..end];
    if !key.starts_with(|c: char| c.is_ascii_alphabetic()) {
        return None;
    }
    let value = rest[end..].trim_start_matches([' ', '\t']).strip_prefix('=')?.trim_matches([' ', '\t']);
    (!value.is_empty()).then(|| (key.to_ascii_lowercase(), value.to_string()))
}

/// `line` without a trailing continuation character, and whether it had one.
fn trim_continuation(line: &str, escape: char) -> (&str, bool) {
    let t = line.trim_end_matches([' ', '\t']);
    match t.strip_suffix(escape) {
        Some(s) => (s, true),
        None => (line, false),
    }
}

impl Parser<'_> {
    fn directives(&mut self) {
        let mut seen = HashSet::new();
        while let Some((k, v)) = self.lines.get(self.pos).and_then(|l| directive(l)) {
            if !matches!(k.as_str(), "syntax" | "escape" | "check") || !seen.insert(k.clone()) {
                break;
            }
            self.pos += 1;
            match k.as_str() {
                "escape" if v == "`" => self.escape = '`',
                "syntax" => self.df.syntax = Some(v),
                _ => {}
            }
        }
    }

    fn next_instruction(&mut self) -> Result<Option<Instr>, String> {
        while self.pos < self.lines.len() {
            let first = self.lines[self.pos];
            self.pos += 1;
            let line_no = self.pos;
            let t = first.trim_start();
            if t.is_empty() || t.starts_with('#') {
                continue;
            }
            let (piece, mut cont) = trim_continuation(t, self.escape);
            let mut line = piece.to_string();
            while cont && self.pos < self.lines.len() {
                let l = self.lines[self.pos];
                self.pos += 1;
                let lt = l.trim_start();
                if lt.is_empty() || lt.starts_with('#') {
                    continue;
                }
                let (piece, c) = trim_continuation(l, self.escape);
                line.push_str(piece);
                cont = c;
            }
            let line = line.trim();
            if line.is_empty() {
                continue;
            }
            let (kw, rest) = match line.find(char::is_whitespace) {
                Some(i) => (&line[..i], line[i..].trim_start()),
                None => (line, ""),
            };
            let keyword = kw.to_ascii_lowercase();
            let mut heredocs = Vec::new();
            if matches!(keyword.as_str(), "run" | "copy" | "add") {
                for (name, chomp) in heredoc_markers(rest, self.escape) {
                    let mut body = String::new();
                    let mut done = false;
                    while self.pos < self.lines.len() {
                        let l = self.lines[self.pos];
                        self.pos += 1;
                        let cand = if chomp { l.trim_start_matches('\t') } else { l };
                        if cand == name {
                            done = true;
                            break;
                        }
                        body.push_str(if chomp { cand } else { l });
                        body.push('\n');
                    }
                    if !done {
                        return Err(format!("line {line_no}: unterminated heredoc <<{name}"));
                    }
                    heredocs.push(Heredoc { name, body });
                }
            }
            return Ok(Some(Instr { line: line_no, keyword, rest: rest.to_string(), heredocs }));
        }
        Ok(None)
    }

    fn finish_stage(&mut self) {
        if let Some(b) = self.cur.take() {
            let i = self.df.stages.len();
            if let Some(n) = &b.stage.name {
                self.names.insert(n.to_ascii_lowercase(), i);
            }
            self.df.stages.push(b.stage);
        }
    }

    /// Expands `text` with the current stage's ARG/ENV values (the global
    /// ARGs before the first FROM): one word, or words when `split`.
    fn expand(&mut self, text: &str, split: bool) -> Vec<String> {
        let Parser { budget, cur, global_vals, escape, .. } = self;
        let lookup = |n: &str| match cur.as_ref() {
            Some(b) => b.lookup(n),
            None => global_vals.get(n).cloned(),
        };
        expand_text(text, &lookup, Mode::Dockerfile(*escape), split, budget).into_iter().map(|f| f.text).collect()
    }

    fn expand1(&mut self, text: &str) -> String {
        self.expand(text, false).pop().unwrap_or_default()
    }

    fn dispatch(&mut self, ins: &Instr) -> Result<(), String> {
        let rest = ins.rest.as_str();
        match ins.keyword.as_str() {
            "from" => {
                self.from(ins);
                return Ok(());
            }
            "arg" => {
                self.arg(rest);
                return Ok(());
            }
            _ => {}
        }
        if self.cur.is_none() {
            return Ok(());
        }
        match ins.keyword.as_str() {
            "env" | "label" => {
                let pairs: Vec<(String, String)> =
                    name_values(rest, self.escape).into_iter().map(|(k, v)| (self.expand1(&k), self.expand1(&v))).collect();
                let b = self.building();
                for (k, v) in pairs.into_iter().filter(|(k, _)| !k.is_empty()) {
                    if ins.keyword == "env" {
                        set_kv(&mut b.stage.env, &mut b.env_idx, k, v);
                    } else {
                        set_kv(&mut b.stage.labels, &mut b.label_idx, k, v);
                    }
                }
            }
            "workdir" => {
                let w = self.expand1(rest);
                if !w.is_empty() {
                    let b = self.building();
                    let base = b.stage.workdir.as_deref().unwrap_or("/");
                    b.stage.workdir = Some(clean_path(&join_path(base, &w)));
                }
            }
            "user" => {
                let u = self.expand1(rest);
                if !u.is_empty() {
                    self.building().stage.user = Some(u);
                }
            }
            "stopsignal" => {
                let s = self.expand1(rest);
                if !s.is_empty() {
                    self.building().stage.stopsignal = Some(s);
                }
            }
            "expose" => {
                for p in self.expand(rest, true) {
                    let mut p = p.to_ascii_lowercase();
                    if let Some(s) = p.strip_suffix("/tcp") {
                        p = s.to_string();
                    }
                    let b = self.building();
                    push_unique(&mut b.stage.expose, &mut b.expose_set, p);
                }
            }
            "volume" => {
                let raw = match parse_json_array(rest) {
                    Json::Strings(v) => v,
                    Json::Unterminated => return Err(unterminated(ins)),
                    Json::Not => parse_words(rest, self.escape),
                };
                for v in raw {
                    let v = self.expand1(&v);
                    let b = self.building();
                    push_unique(&mut b.stage.volumes, &mut b.volume_set, v);
                }
            }
            "cmd" | "entrypoint" => {
                let c = command(rest).ok_or_else(|| unterminated(ins))?;
                let b = self.building();
                if ins.keyword == "cmd" {
                    b.stage.cmd = Some(c);
                    b.cmd_set = true;
                } else {
                    b.stage.entrypoint = Some(c);
                    if !b.cmd_set {
                        b.stage.cmd = None;
                    }
                }
            }
            "shell" => match parse_json_array(rest) {
                Json::Strings(v) if !v.is_empty() => self.building().stage.shell = Some(v),
                Json::Unterminated => return Err(unterminated(ins)),
                _ => {}
            },
            "healthcheck" => {
                let (flags, r) = extract_flags(rest);
                let (word, after) = match r.find(char::is_whitespace) {
                    Some(i) => (&r[..i], r[i..].trim_start()),
                    None => (r, ""),
                };
                if word.eq_ignore_ascii_case("none") {
                    let b = self.building();
                    b.stage.healthcheck = None;
                    b.stage.healthcheck_flags.clear();
                } else if word.eq_ignore_ascii_case("cmd") {
                    let c = command(after).ok_or_else(|| unterminated(ins))?;
                    let b = self.building();
                    b.stage.healthcheck = Some(c);
                    b.stage.healthcheck_flags = flags.into_iter().map(|(k, v)| (k, v.unwrap_or_default())).collect();
                }
            }
            "run" => self.run(ins)?,
            "copy" | "add" => self.copy(ins)?,
            _ => {}
        }
        Ok(())
    }

    fn building(&mut self) -> &mut Building {
        self.cur.get_or_insert_with(Building::default)
    }

    fn from(&mut self, ins: &Instr) {
        self.finish_stage();
        let (flags, r) = extract_flags(&ins.rest);
        let words = parse_words(r, self.escape);
        let base = words.first().map(|w| self.expand1(w)).unwrap_or_default();
        let name = match words.as_slice() {
            [_, as_, n, ..] if as_.eq_ignore_ascii_case("as") => Some(n.clone()),
            _ => None,
        };
        let platform = flags.iter().find(|(k, _)| k == "platform").and_then(|(_, v)| v.clone()).map(|v| self.expand1(&v));
        let base_stage = self.names.get(&base.to_ascii_lowercase()).copied();
        let mut b = Building::default();
        if let Some(pi) = base_stage {
            let p = &self.df.stages[pi];
            let size = p.env.iter().chain(&p.labels).map(|(k, v)| k.len() + v.len() + 16).sum::<usize>()
                + p.expose.iter().chain(&p.volumes).chain(p.shell.iter().flatten()).map(|s| s.len() + 16).sum::<usize>()
                + [&p.cmd, &p.entrypoint, &p.healthcheck].iter().map(|c| command_cost(c)).sum::<usize>()
                + [&p.workdir, &p.user, &p.stopsignal].iter().map(|o| o.as_ref().map_or(0, String::len)).sum::<usize>()
                + p.apt_packages.iter().map(|a| a.len() + 16).sum::<usize>()
                + 256;
            if self.budget.take(size) {
                let s = &mut b.stage;
                s.workdir = p.workdir.clone();
                s.env = p.env.clone();
                s.user = p.user.clone();
                s.shell = p.shell.clone();
                s.cmd = p.cmd.clone();
                s.entrypoint = p.entrypoint.clone();
                s.expose = p.expose.clone();
                s.healthcheck = p.healthcheck.clone();
                s.healthcheck_flags = p.healthcheck_flags.clone();
                s.labels = p.labels.clone();
                s.volumes = p.volumes.clone();
                s.stopsignal = p.stopsignal.clone();
                // what the base stage installed is in this stage's image
                s.apt_packages = p.apt_packages.clone();
                s.os_family = p.os_family;
                b.env_idx = s.env.iter().enumerate().map(|(i, (k, _))| (k.clone(), i)).collect();
                b.label_idx = s.labels.iter().enumerate().map(|(i, (k, _))| (k.clone(), i)).collect();
                b.expose_set = s.expose.iter().cloned().collect();
                b.volume_set = s.volumes.iter().cloned().collect();
            }
        }
        b.stage.name = name;
        b.stage.base = base;
        b.stage.base_stage = base_stage;
        b.stage.platform = platform;
        b.stage.line = ins.line;
        self.cur = Some(b);
    }

    fn arg(&mut self, rest: &str) {
        for w in parse_words(rest, self.escape) {
            let (name, default) = match w.split_once('=') {
                Some((n, d)) => (n.to_string(), Some(self.expand1(d))),
                None => (w, None),
            };
            if name.is_empty() {
                continue;
            }
            match &mut self.cur {
                None => {
                    if let Some(d) = &default {
                        self.global_vals.insert(name.clone(), d.clone());
                    }
                    self.df.global_args.push((name, default));
                }
                Some(b) => {
                    let value = default.or_else(|| self.global_vals.get(&name).cloned());
                    if let Some(v) = &value {
                        b.arg_vals.insert(name.clone(), v.clone());
                    }
                    b.stage.args.push((name, value));
                }
            }
        }
    }

    fn run(&mut self, ins: &Instr) -> Result<(), String> {
        let (flags, r) = extract_flags(&ins.rest);
        let mounts = flags.into_iter().filter(|(k, _)| k == "mount").filter_map(|(_, v)| v).collect();
        let mut found = Found::default();
        let Parser { budget, cur, .. } = self;
        let Some(b) = cur else { return Ok(()) };
        let lookup = |n: &str| b.lookup(n);
        let mut env = ShellEnv { base: &lookup, local: HashMap::new() };
        let command = match parse_json_array(r) {
            Json::Unterminated => return Err(unterminated(ins)),
            Json::Strings(v) => {
                let argv: Vec<Field> = v.iter().map(|s| Field { text: s.clone(), known: true }).collect();
                handle_argv(&argv, &mut env, &mut found, budget, 0);
                v.join(" ")
            }
            Json::Not if !ins.heredocs.is_empty() && heredoc_marker(r.trim()).is_some() => {
                let body = ins.heredocs[0].body.clone();
                let shebang = body.lines().next().and_then(|l| l.strip_prefix("#!"));
                let shells = ["sh", "bash", "ash", "dash", "zsh", "ksh"];
                if shebang.is_none_or(|l| l.split_whitespace().any(|w| shells.contains(&basename(w)))) {
                    analyze_script(&body, &mut env, &mut found, budget, 0);
                }
                body
            }
            Json::Not => {
                let mut full = r.to_string();
                for h in &ins.heredocs {
                    full.push('\n');
                    full.push_str(&h.body);
                    full.push_str(&h.name);
                }
                analyze_script(&full, &mut env, &mut found, budget, 0);
                full
            }
        };
        let s = &mut b.stage;
        if let Some(family) = found.family {
            s.os_family = family;
        }
        for p in found.apt {
            push_unique(&mut s.apt_packages, &mut b.apt_set, p);
        }
        for p in found.pip {
            push_unique(&mut s.pip_packages, &mut b.pip_set, p);
        }
        for p in found.reqs {
            push_unique(&mut s.pip_requirement_files, &mut b.req_set, p);
        }
        s.runs.push(Run { command, mounts, line: ins.line });
        Ok(())
    }

    fn copy(&mut self, ins: &Instr) -> Result<(), String> {
        let (flags, r) = extract_flags(&ins.rest);
        let raw = match parse_json_array(r) {
            Json::Strings(v) => v,
            Json::Unterminated => return Err(unterminated(ins)),
            Json::Not => parse_words(r, self.escape),
        };
        if raw.len() < 2 {
            return Ok(());
        }
        let mut args: Vec<String> = raw.iter().map(|w| if heredoc_marker(w).is_some() { w.clone() } else { self.expand1(w) }).collect();
        let dest = args.pop().unwrap_or_default();
        let mut flag = |name: &str| flags.iter().find(|(k, _)| k == name).and_then(|(_, v)| v.clone()).map(|v| self.expand1(&v));
        let (from, chown, chmod) = (flag("from"), flag("chown"), flag("chmod"));
        let b = self.building();
        let wd = b.stage.workdir.as_deref().unwrap_or("/");
        let dir = dest.ends_with('/') || dest == "." || dest.ends_with("/.") || dest == ".." || dest.ends_with("/..");
        let mut d = clean_path(&join_path(wd, &dest));
        if dir && d != "/" {
            d.push('/');
        }
        b.stage.copies.push(Copy { sources: args, dest: d, from, chown, chmod, is_add: ins.keyword == "add", line: ins.line });
        Ok(())
    }
}

/// The bytes a copy of `c` takes, for the budget.
fn command_cost(c: &Option<Command>) -> usize {
    match c {
        Some(Command::Exec(v)) => v.iter().map(|s| s.len() + 16).sum(),
        Some(Command::Shell(s)) => s.len(),
        None => 0,
    }
}

fn unterminated(ins: &Instr) -> String {
    format!("line {}: unterminated JSON array in {}", ins.line, ins.keyword.to_ascii_uppercase())
}

/// A CMD/ENTRYPOINT/HEALTHCHECK command; `None` for an unterminated JSON array.
fn command(rest: &str) -> Option<Command> {
    match parse_json_array(rest) {
        Json::Strings(v) => Some(Command::Exec(v)),
        Json::Unterminated => None,
        Json::Not if rest.trim().is_empty() => Some(Command::Exec(Vec::new())),
        Json::Not => Some(Command::Shell(rest.trim().to_string())),
    }
}

/// `base` joined with `p` unless `p` is absolute.
fn join_path(base: &str, p: &str) -> String {
    if p.starts_with('/') {
        p.to_string()
    } else {
        format!("{base}/{p}")
    }
}

/// An absolute path with `.`, `..` and repeated or trailing `/` resolved.
fn clean_path(p: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for c in p.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    format!("/{}", parts.join("/"))
}

/// The heredoc markers (`<<EOF`, `<<-EOF`, `<<"EOF"`) among the words of
/// an instruction line: (name, strip leading tabs).
fn heredoc_markers(rest: &str, escape: char) -> Vec<(String, bool)> {
    parse_words(rest, escape).iter().filter_map(|w| heredoc_marker(w)).collect()
}

/// A word that is a heredoc marker, as Docker matches `^\d*<<(-?)([^<]*)$`.
fn heredoc_marker(word: &str) -> Option<(String, bool)> {
    let w = word.trim_start_matches(|c: char| c.is_ascii_digit());
    let w = w.strip_prefix("<<")?;
    let (chomp, w) = match w.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, w),
    };
    if w.is_empty() || w.contains('<') {
        return None;
    }
    let name: String = w.chars().filter(|c| !matches!(c, '"' | '\'' | '\\')).collect();
    if name.is_empty() || name.contains(char::is_whitespace) {
        return None;
    }
    Some((name, chomp))
}

/// Docker's `parseWords`: whitespace-separated words, quotes and escapes
/// kept for the later expansion to remove.
fn parse_words(rest: &str, escape: char) -> Vec<String> {
    let s: Vec<char> = rest.chars().collect();
    let mut words = Vec::new();
    let mut word = String::new();
    let mut blank_ok = false;
    let mut quote: Option<char> = None;
    let mut i = 0;
    while i < s.len() {
        let c = s[i];
        match quote {
            None if c.is_whitespace() => {
                if blank_ok || !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                }
                blank_ok = false;
            }
            None => {
                if c == '\'' || c == '"' {
                    quote = Some(c);
                    blank_ok = true;
                }
                if c == escape {
                    if i + 1 == s.len() {
                        break;
                    }
                    word.push(c);
                    i += 1;
                }
                word.push(s[i]);
            }
            Some(q) => {
                if c == q {
                    quote = None;
                }
                if c == escape && q != '\'' {
                    if i + 1 == s.len() {
                        break;
                    }
                    word.push(c);
                    i += 1;
                }
                word.push(s[i]);
            }
        }
        i += 1;
    }
    if blank_ok || !word.is_empty() {
        words.push(word);
    }
    words
}

/// ENV/LABEL `k=v k2="v 2"` pairs (raw, for expansion), or the legacy
/// `K value` form (the rest of the line is the value).
fn name_values(rest: &str, escape: char) -> Vec<(String, String)> {
    let words = parse_words(rest, escape);
    let Some(first) = words.first() else { return Vec::new() };
    if !first.contains('=') {
        let rest = rest.trim();
        return match rest.find(char::is_whitespace) {
            Some(i) => vec![(rest[..i].to_string(), rest[i..].trim_start().to_string())],
            None => Vec::new(),
        };
    }
    words.iter().filter_map(|w| w.split_once('=')).map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

/// Docker's `extractBuilderFlags`: the leading `--name[=value]` words
/// (quotes removed) and the rest of the line.
fn extract_flags(line: &str) -> (Vec<(String, Option<String>)>, &str) {
    let mut flags = Vec::new();
    let mut it = line.char_indices().peekable();
    let add = |flags: &mut Vec<(String, Option<String>)>, w: &str| {
        let w = &w[2..];
        match w.split_once('=') {
            Some((k, v)) => flags.push((k.to_ascii_lowercase(), Some(v.to_string()))),
            None => flags.push((w.to_ascii_lowercase(), None)),
        }
    };
    loop {
        while it.next_if(|(_, c)| c.is_whitespace()).is_some() {}
        let Some(&(start, _)) = it.peek() else { return (flags, "") };
        if !line[start..].starts_with("--") {
            return (flags, &line[start..]);
        }
        let mut word = String::new();
        let mut quote: Option<char> = None;
        while let Some(&(_, c)) = it.peek() {
            if quote.is_none() && c.is_whitespace() {
                break;
            }
            it.next();
            match (quote, c) {
                (None, '\'' | '"') => quote = Some(c),
                (Some(q), c) if c == q => quote = None,
                (_, '\\') => word.extend(it.next().map(|(_, c)| c)),
                (_, c) => word.push(c),
            }
        }
        if word == "--" {
            let rest = it.peek().map_or("", |&(i, _)| line[i..].trim_start());
            return (flags, rest);
        }
        add(&mut flags, &word);
    }
}

// ---------------------------------------------------------------------------
// JSON arrays of strings

enum Json {
    Strings(Vec<String>),
    /// Looks like a JSON array but ends before it closes.
    Unterminated,
    /// Not a JSON array of strings: the shell form.
    Not,
}

fn parse_json_array(text: &str) -> Json {
    let t = text.trim();
    let mut it = t.chars().peekable();
    if it.next() != Some('[') {
        return Json::Not;
    }
    let skip_ws = |it: &mut std::iter::Peekable<std::str::Chars>| while it.next_if(|c| c.is_whitespace()).is_some() {};
    let mut out = Vec::new();
    skip_ws(&mut it);
    if it.next_if_eq(&']').is_some() {
        return if it.next().is_none() { Json::Strings(out) } else { Json::Not };
    }
    loop {
        skip_ws(&mut it);
        match it.next() {
            None => return Json::Unterminated,
            Some('"') => {}
            Some(_) => return Json::Not,
        }
        let mut s = String::new();
        loop {
            match it.next() {
                None => return Json::Unterminated,
                Some('"') => break,
                Some('\\') => match it.next() {
                    None => return Json::Unterminated,
                    Some('"') => s.push('"'),
                    Some('\\') => s.push('\\'),
                    Some('/') => s.push('/'),
                    Some('b') => s.push('\u{8}'),
                    Some('f') => s.push('\u{c}'),
                    Some('n') => s.push('\n'),
                    Some('r') => s.push('\r'),
                    Some('t') => s.push('\t'),
                    Some('u') => {
                        let Some(hi) = hex4(&mut it) else { return Json::Not };
                        let c = if (0xD800..0xDC00).contains(&hi) {
                            let mut look = it.clone();
                            match (look.next(), look.next(), hex4(&mut look)) {
                                (Some('\\'), Some('u'), Some(lo)) if (0xDC00..0xE000).contains(&lo) => {
                                    it = look;
                                    char::from_u32(0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00))
                                }
                                _ => None,
                            }
                        } else {
                            char::from_u32(hi)
                        };
                        s.push(c.unwrap_or('\u{fffd}'));
                    }
                    Some(_) => return Json::Not,
                },
                Some(c) if (c as u32) < 0x20 => return Json::Not,
                Some(c) => s.push(c),
            }
        }
        out.push(s);
        skip_ws(&mut it);
        match it.next() {
            None => return Json::Unterminated,
            Some(',') => {}
            Some(']') => return if it.next().is_none() { Json::Strings(out) } else { Json::Not },
            Some(_) => return Json::Not,
        }
    }
}

fn hex4(it: &mut std::iter::Peekable<std::str::Chars>) -> Option<u32> {
    let mut v = 0;
    for _ in 0..4 {
        v = v * 16 + it.next()?.to_digit(16)?;
    }
    Some(v)
}

// ---------------------------------------------------------------------------
// Variable expansion: Docker's word processing, and a shell's for RUN

/// Deepest `${a:-${b:-...}}` nesting expanded; deeper is kept literally.
const MAX_DEPTH: usize = 16;

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    /// Docker's rules with this escape character: unknown variables left as
    /// written, `$(` literal.
    Dockerfile(char),
    /// A POSIX shell's: unknown variables and `$(...)` give nothing and mark
    /// the word unknown.
    Shell,
}

/// An expanded word; `known` is false when part of it had no known value.
#[derive(Debug, Clone)]
struct Field {
    text: String,
    known: bool,
}

struct Words {
    split: bool,
    out: Vec<Field>,
    cur: String,
    known: bool,
    in_word: bool,
}

impl Words {
    fn new(split: bool) -> Words {
        Words { split, out: Vec::new(), cur: String::new(), known: true, in_word: false }
    }
    fn push(&mut self, c: char, quoted: bool) {
        if self.split && !quoted && c.is_whitespace() {
            self.brk();
        } else {
            self.cur.push(c);
            self.in_word = true;
        }
    }
    fn push_str(&mut self, s: &str, quoted: bool) {
        for c in s.chars() {
            self.push(c, quoted);
        }
    }
    fn unknown(&mut self) {
        self.known = false;
        self.in_word = true;
    }
    fn brk(&mut self) {
        if self.in_word {
            self.out.push(Field { text: std::mem::take(&mut self.cur), known: self.known });
        }
        self.in_word = false;
        self.known = true;
    }
    fn finish(mut self) -> Vec<Field> {
        if self.split {
            self.brk();
            self.out
        } else {
            vec![Field { text: self.cur, known: self.known }]
        }
    }
}

struct Lexer<'a> {
    s: Vec<char>,
    pos: usize,
    mode: Mode,
    lookup: &'a dyn Fn(&str) -> Option<String>,
    budget: &'a mut Budget,
}

/// Expands `text`: one word, or words split on unquoted whitespace.
fn expand_text(text: &str, lookup: &dyn Fn(&str) -> Option<String>, mode: Mode, split: bool, budget: &mut Budget) -> Vec<Field> {
    let mut lx = Lexer { s: text.chars().collect(), pos: 0, mode, lookup, budget };
    let mut w = Words::new(split);
    lx.run(&mut w, None, 0);
    w.finish()
}

impl Lexer<'_> {
    fn escape(&self) -> char {
        match self.mode {
            Mode::Dockerfile(e) => e,
            Mode::Shell => '\\',
        }
    }

    fn raw(&self, from: usize, out: &mut Words) {
        for &c in &self.s[from..self.pos.min(self.s.len())] {
            out.push(c, true);
        }
    }

    /// Processes until the unquoted `stop` (consumed) or the end.
    fn run(&mut self, out: &mut Words, stop: Option<char>, depth: usize) {
        let esc = self.escape();
        while let Some(&c) = self.s.get(self.pos) {
            if Some(c) == stop {
                self.pos += 1;
                return;
            }
            match c {
                '\'' => {
                    self.pos += 1;
                    out.in_word = true;
                    while let Some(&c) = self.s.get(self.pos) {
                        self.pos += 1;
                        if c == '\'' {
                            break;
                        }
                        out.push(c, true);
                    }
                }
                '"' => {
                    self.pos += 1;
                    out.in_word = true;
                    self.double_quoted(out, depth);
                }
                '$' => self.dollar(out, false, depth),
                '`' if self.mode == Mode::Shell => self.backtick(out),
                c if c == esc => {
                    self.pos += 1;
                    if let Some(&n) = self.s.get(self.pos) {
                        self.pos += 1;
                        if !(self.mode == Mode::Shell && n == '\n') {
                            out.push(n, true);
                        }
                    }
                }
                c => {
                    self.pos += 1;
                    out.push(c, false);
                }
            }
        }
    }

    fn double_quoted(&mut self, out: &mut Words, depth: usize) {
        let esc = self.escape();
        while let Some(&c) = self.s.get(self.pos) {
            match c {
                '"' => {
                    self.pos += 1;
                    return;
                }
                '$' => self.dollar(out, true, depth),
                '`' if self.mode == Mode::Shell => self.backtick(out),
                c if c == esc => {
                    let n = self.s.get(self.pos + 1).copied();
                    match n {
                        Some(n) if n == '"' || n == '$' || n == esc || (self.mode == Mode::Shell && n == '`') => {
                            out.push(n, true);
                            self.pos += 2;
                        }
                        Some('\n') if self.mode == Mode::Shell => self.pos += 2,
                        _ => {
                            out.push(c, true);
                            self.pos += 1;
                        }
                    }
                }
                c => {
                    out.push(c, true);
                    self.pos += 1;
                }
            }
        }
    }

    fn backtick(&mut self, out: &mut Words) {
        self.pos += 1;
        while let Some(&c) = self.s.get(self.pos) {
            self.pos += 1;
            if c == '\\' {
                self.pos += 1;
            } else if c == '`' {
                break;
            }
        }
        out.unknown();
    }

    fn value(&mut self, v: String, quoted: bool, out: &mut Words, raw_from: usize) {
        if self.budget.take(v.len()) {
            out.push_str(&v, quoted);
        } else {
            self.unknown(out, raw_from);
        }
    }

    fn unknown(&mut self, out: &mut Words, raw_from: usize) {
        match self.mode {
            Mode::Dockerfile(_) => self.raw(raw_from, out),
            Mode::Shell => out.unknown(),
        }
    }

    fn name(&mut self) -> String {
        let start = self.pos;
        while self.s.get(self.pos).is_some_and(|c| c.is_ascii_alphanumeric() || *c == '_') {
            self.pos += 1;
        }
        self.s[start..self.pos].iter().collect()
    }

    fn dollar(&mut self, out: &mut Words, quoted: bool, depth: usize) {
        let start = self.pos;
        self.pos += 1;
        match self.s.get(self.pos).copied() {
            Some('{') if depth < MAX_DEPTH => {
                self.pos += 1;
                let name = self.name();
                let Some(&c) = self.s.get(self.pos) else {
                    self.raw(start, out);
                    return;
                };
                if name.is_empty() {
                    // `${#X}`, `${!X}`, `${@}`...: not expanded
                    self.skip_braces();
                    self.unknown(out, start);
                    return;
                }
                if c == '}' {
                    self.pos += 1;
                    match (self.lookup)(&name) {
                        Some(v) => self.value(v, quoted, out, start),
                        None => self.unknown(out, start),
                    }
                    return;
                }
                let colon = c == ':';
                if colon {
                    self.pos += 1;
                }
                let op = self.s.get(self.pos).copied().unwrap_or('}');
                if !matches!(op, '-' | '+' | '?' | '=') {
                    self.skip_braces();
                    self.unknown(out, start);
                    return;
                }
                self.pos += 1;
                let mut w = Words::new(false);
                self.run(&mut w, Some('}'), depth + 1);
                let word = w.finish().pop().unwrap_or(Field { text: String::new(), known: true });
                let v = (self.lookup)(&name).filter(|v| !(colon && v.is_empty()));
                match (op, v) {
                    ('-' | '=' | '?', Some(v)) => self.value(v, quoted, out, start),
                    ('-' | '=', None) | ('+', Some(_)) => {
                        if !word.known {
                            out.unknown();
                        }
                        out.push_str(&word.text, quoted);
                        out.in_word = true;
                    }
                    ('+', None) => out.in_word |= quoted,
                    _ => self.unknown(out, start),
                }
            }
            Some('(') if self.mode == Mode::Shell => {
                self.skip_balanced('(', ')');
                out.unknown();
            }
            Some(c) if c.is_ascii_alphabetic() || c == '_' => {
                let name = self.name();
                match (self.lookup)(&name) {
                    Some(v) => self.value(v, quoted, out, start),
                    None => self.unknown(out, start),
                }
            }
            Some(c) if self.mode == Mode::Shell && (c.is_ascii_digit() || "@*#?$!-".contains(c)) => {
                self.pos += 1;
                out.unknown();
            }
            _ => out.push('$', quoted),
        }
    }

    /// Skips to after the `}` closing the current `${`.
    fn skip_braces(&mut self) {
        let mut depth = 1usize;
        while let Some(&c) = self.s.get(self.pos) {
            self.pos += 1;
            match c {
                '{' => depth += 1,
                '}' => {
                    depth -= 1;
                    if depth == 0 {
                        return;
                    }
                }
                '\\' => self.pos += 1,
                _ => {}
            }
        }
    }

    /// At `$` of `$(`: skips to after the matching `)`.
    fn skip_balanced(&mut self, open: char, close: char) {
        self.pos = skip_balanced(&self.s, self.pos + 1, open, close);
    }
}

/// From `s[i] == open`: the index after the matching `close`, skipping
/// quoted text and escapes (the end of `s` when unmatched).
fn skip_balanced(s: &[char], mut i: usize, open: char, close: char) -> usize {
    let mut depth = 0usize;
    while let Some(&c) = s.get(i) {
        i += 1;
        match c {
            '\\' => i += 1,
            '\'' => {
                while s.get(i).is_some_and(|&c| c != '\'') {
                    i += 1;
                }
                i += 1;
            }
            '"' => {
                while let Some(&c) = s.get(i) {
                    i += 1;
                    if c == '\\' {
                        i += 1;
                    } else if c == '"' {
                        break;
                    }
                }
            }
            c if c == open => depth += 1,
            c if c == close => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    return i;
                }
            }
            _ => {}
        }
    }
    s.len()
}

// ---------------------------------------------------------------------------
// RUN: the shell commands, and the packages they install

#[derive(Default)]
struct Found {
    apt: Vec<String>,
    family: Option<OsFamily>,
    pip: Vec<String>,
    reqs: Vec<String>,
}

/// The shell variables of one RUN over the stage's ARG/ENV values.
struct ShellEnv<'a> {
    base: &'a dyn Fn(&str) -> Option<String>,
    local: HashMap<String, String>,
}

impl ShellEnv<'_> {
    fn get(&self, n: &str) -> Option<String> {
        self.local.get(n).cloned().or_else(|| (self.base)(n))
    }
}

/// The tokenizer state of [`split_commands`].
#[derive(Default)]
struct Tokens {
    cmds: Vec<Vec<String>>,
    cmd: Vec<String>,
    word: String,
    in_word: bool,
    skip_word: bool,
}

impl Tokens {
    fn end_word(&mut self) {
        if self.in_word {
            if self.skip_word {
                self.skip_word = false;
                self.word.clear();
            } else {
                self.cmd.push(std::mem::take(&mut self.word));
            }
            self.in_word = false;
        }
    }
    fn end_cmd(&mut self) {
        self.end_word();
        self.skip_word = false;
        if !self.cmd.is_empty() {
            self.cmds.push(std::mem::take(&mut self.cmd));
        }
    }
}

/// Splits a shell script into simple commands (raw words): separated by
/// newlines, `;`, `&`, `|`, `(`, `)`; comments, redirections and heredoc
/// bodies dropped.
fn split_commands(script: &str) -> Vec<Vec<String>> {
    let s: Vec<char> = script.chars().collect();
    let n = s.len();
    let mut t = Tokens::default();
    let mut heredocs: Vec<(String, bool)> = Vec::new();
    let mut i = 0;
    while i < n {
        let c = s[i];
        match c {
            '\n' => {
                t.end_cmd();
                i += 1;
                for (delim, chomp) in std::mem::take(&mut heredocs) {
                    while i < n {
                        let end = s[i..].iter().position(|&c| c == '\n').map_or(n, |p| i + p);
                        let line: String = s[i..end].iter().collect();
                        i = (end + 1).min(n);
                        let cand = if chomp { line.trim_start_matches('\t') } else { &line };
                        if cand == delim {
                            break;
                        }
                    }
                }
            }
            ' ' | '\t' | '\r' => {
                t.end_word();
                i += 1;
            }
            ';' | '&' | '|' | '(' | ')' => {
                t.end_cmd();
                i += 1;
            }
            '<' | '>' => {
                if t.in_word && t.word.chars().all(|c| c.is_ascii_digit()) {
                    t.word.clear();
                    t.in_word = false;
                } else {
                    t.end_word();
                }
                if c == '<' && s.get(i + 1) == Some(&'<') && s.get(i + 2) != Some(&'<') {
                    i += 2;
                    let chomp = s.get(i) == Some(&'-');
                    if chomp {
                        i += 1;
                    }
                    while i < n && (s[i] == ' ' || s[i] == '\t') {
                        i += 1;
                    }
                    let start = i;
                    while i < n && !s[i].is_whitespace() && !";&|<>()".contains(s[i]) {
                        i += 1;
                    }
                    let delim: String = s[start..i].iter().filter(|c| !matches!(c, '\'' | '"' | '\\')).collect();
                    if !delim.is_empty() {
                        heredocs.push((delim, chomp));
                    }
                } else {
                    while i < n && matches!(s[i], '<' | '>' | '&' | '|') {
                        i += 1;
                    }
                    t.skip_word = true;
                }
            }
            '#' if !t.in_word => {
                while i < n && s[i] != '\n' {
                    i += 1;
                }
            }
            '\\' if s.get(i + 1) == Some(&'\n') => i += 2,
            _ => {
                let end = match c {
                    '\'' => s[i + 1..].iter().position(|&c| c == '\'').map_or(n, |p| i + p + 2),
                    '"' => {
                        let mut j = i + 1;
                        while j < n && s[j] != '"' {
                            j = match s[j] {
                                '\\' => j + 2,
                                '$' if s.get(j + 1) == Some(&'(') => skip_balanced(&s, j + 1, '(', ')'),
                                _ => j + 1,
                            };
                        }
                        j + 1
                    }
                    '\\' => i + 2,
                    '$' if s.get(i + 1) == Some(&'(') => skip_balanced(&s, i + 1, '(', ')'),
                    '$' if s.get(i + 1) == Some(&'{') => skip_balanced(&s, i + 1, '{', '}'),
                    '`' => {
                        let mut j = i + 1;
                        while j < n && s[j] != '`' {
                            j += if s[j] == '\\' { 2 } else { 1 };
                        }
                        j + 1
                    }
                    _ => i + 1,
                };
                let end = end.min(n);
                t.word.extend(&s[i..end]);
                t.in_word = true;
                i = end;
            }
        }
    }
    t.end_cmd();
    t.cmds
}

fn is_name(s: &str) -> bool {
    s.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_') && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn shell_expand(word: &str, env: &ShellEnv, split: bool, budget: &mut Budget) -> Vec<Field> {
    let lookup = |n: &str| env.get(n);
    expand_text(word, &lookup, Mode::Shell, split, budget)
}

/// Finds the package installs of a shell script.
fn analyze_script(script: &str, env: &mut ShellEnv, found: &mut Found, budget: &mut Budget, depth: usize) {
    for words in split_commands(script) {
        let mut i = 0;
        while let Some(w) = words.get(i) {
            match w.as_str() {
                "if" | "then" | "else" | "elif" | "fi" | "do" | "done" | "while" | "until" | "!" | "{" | "}" | "esac" => i += 1,
                "for" | "case" | "select" | "function" => i = words.len(),
                _ => break,
            }
        }
        while let Some((k, v)) = words.get(i).and_then(|w| w.split_once('=')).filter(|(k, _)| is_name(k)) {
            let v = shell_expand(v, env, false, budget).pop().map(|f| f.text).unwrap_or_default();
            env.local.insert(k.to_string(), v);
            i += 1;
        }
        let argv: Vec<Field> = words[i.min(words.len())..].iter().flat_map(|w| shell_expand(w, env, true, budget)).collect();
        handle_argv(&argv, env, found, budget, depth);
    }
}

fn basename(p: &str) -> &str {
    p.rsplit('/').next().unwrap_or(p)
}

/// `prefix` followed by a version (`pip3.12`, `python3`).
fn versioned(cmd: &str, prefix: &str) -> bool {
    cmd.strip_prefix(prefix).is_some_and(|v| v.chars().all(|c| c.is_ascii_digit() || c == '.'))
}

const APT_VALUE_OPTS: &[&str] = &["-o", "-c", "-t", "--option", "--config-file", "--target-release", "--default-release"];
const APK_VALUE_OPTS: &[&str] = &[
    "-t",
    "--virtual",
    "-X",
    "--repository",
    "-p",
    "--root",
    "--arch",
    "--keys-dir",
    "--cache-dir",
    "--repositories-file",
    "--cache-max-age",
    "--timeout",
];
const DNF_VALUE_OPTS: &[&str] = &[
    "-x",
    "--exclude",
    "-c",
    "--config",
    "--installroot",
    "--releasever",
    "--setopt",
    "--repo",
    "--repoid",
    "--enablerepo",
    "--disablerepo",
    "--forcearch",
    "--downloaddir",
    "--destdir",
    "-d",
    "-e",
    "--debuglevel",
    "--errorlevel",
    "--rpmverbosity",
];
/// Options of pip and `uv pip` that take a value (besides -r/-c/-e).
const PIP_VALUE_OPTS: &[&str] = &[
    "-c",
    "--constraint",
    "-e",
    "--editable",
    "-t",
    "--target",
    "--platform",
    "--python-version",
    "--implementation",
    "--abi",
    "--root",
    "--prefix",
    "--src",
    "-i",
    "--index-url",
    "--extra-index-url",
    "--index",
    "--default-index",
    "-f",
    "--find-links",
    "--no-binary",
    "--only-binary",
    "--progress-bar",
    "--upgrade-strategy",
    "--global-option",
    "--install-option",
    "--build-option",
    "-C",
    "--config-settings",
    "--config-setting",
    "--report",
    "-w",
    "--wheel-dir",
    "-b",
    "--build",
    "--log",
    "--proxy",
    "--retries",
    "--timeout",
    "--exists-action",
    "--trusted-host",
    "--cert",
    "--client-cert",
    "--cache-dir",
    "--python",
    "-p",
    "--root-user-action",
    "--use-feature",
    "--use-deprecated",
    "--keyring-provider",
    "--group",
    "--override",
    "--extra",
    "--python-platform",
    "--index-strategy",
    "--resolution",
    "--prerelease",
    "--reinstall-package",
    "--upgrade-package",
    "-P",
    "--exclude-newer",
    "--link-mode",
    "--build-constraint",
    "--no-build-isolation-package",
    "--directory",
    "--project",
    "--config-file",
    "--color",
    "--allow-insecure-host",
];
const UV_VALUE_OPTS: &[&str] =
    &["--directory", "--project", "--cache-dir", "--config-file", "--python", "-p", "--color", "--allow-insecure-host"];

fn handle_argv(argv: &[Field], env: &mut ShellEnv, found: &mut Found, budget: &mut Budget, depth: usize) {
    let mut a = argv;
    loop {
        let Some(first) = a.first() else { return };
        if !first.known {
            return;
        }
        match basename(&first.text) {
            "sudo" => {
                a = &a[1..];
                while let Some(f) = a.first().filter(|f| f.text.starts_with('-')) {
                    let n = if matches!(f.text.as_str(), "-u" | "-g" | "-h" | "-p" | "-C") { 2 } else { 1 };
                    a = a.get(n..).unwrap_or(&[]);
                }
            }
            "env" => {
                a = &a[1..];
                while a.first().is_some_and(|f| f.text.starts_with('-') || f.text.split_once('=').is_some_and(|(k, _)| is_name(k))) {
                    a = &a[1..];
                }
            }
            "command" | "exec" | "nohup" | "time" | "eatmydata" => a = &a[1..],
            "export" | "local" | "declare" | "readonly" | "typeset" => {
                for f in &a[1..] {
                    if let Some((k, v)) = f.text.split_once('=').filter(|(k, _)| is_name(k)) {
                        env.local.insert(k.to_string(), v.to_string());
                    }
                }
                return;
            }
            "sh" | "bash" | "ash" | "dash" | "zsh" | "ksh" => {
                let mut i = 1;
                while let Some(f) = a.get(i) {
                    let t = f.text.as_str();
                    if (t.starts_with('-') || t.starts_with('+')) && (t == "-o" || t == "+o") {
                        i += 2;
                    } else if t.starts_with('-') && !t.starts_with("--") && t.contains('c') {
                        if let Some(script) = a.get(i + 1).filter(|f| f.known) {
                            if depth < 4 {
                                analyze_script(&script.text, env, found, budget, depth + 1);
                            }
                        }
                        return;
                    } else if t.starts_with('-') {
                        i += 1;
                    } else {
                        return;
                    }
                }
                return;
            }
            _ => break,
        }
    }
    let cmd = basename(&a[0].text);
    let rest = &a[1..];
    match cmd {
        "apt-get" | "apt" => found.apt.extend(os_packages(rest, "install", APT_VALUE_OPTS)),
        "apk" => {
            let p = os_packages(rest, "add", APK_VALUE_OPTS);
            found.family = found.family.or(Some(OsFamily::Alpine).filter(|_| !p.is_empty()));
            found.apt.extend(p);
        }
        "dnf" | "yum" | "microdnf" | "tdnf" => {
            let p = os_packages(rest, "install", DNF_VALUE_OPTS);
            found.family = found.family.or(Some(OsFamily::Fedora).filter(|_| !p.is_empty()));
            found.apt.extend(p);
        }
        "uv" => uv(rest, found),
        c if versioned(c, "pip") => pip(rest, found),
        c if versioned(c, "python") => {
            let mut i = 0;
            while let Some(f) = rest.get(i) {
                let t = f.text.as_str();
                let module =
                    if t == "-m" { rest.get(i + 1).map(|f| (f.text.as_str(), i + 2)) } else { t.strip_prefix("-m").map(|m| (m, i + 1)) };
                match module {
                    Some(("pip", j)) => return pip(&rest[j..], found),
                    Some(("uv", j)) => return uv(&rest[j..], found),
                    Some(_) => return,
                    None if t == "-X" || t == "-W" => i += 2,
                    None if t.starts_with('-') && t != "-c" => i += 1,
                    None => return,
                }
            }
        }
        _ => {}
    }
}

fn is_path(t: &str) -> bool {
    t.starts_with(['.', '/', '~'])
}

/// The packages after subcommand `sub` of an OS package manager.
fn os_packages(rest: &[Field], sub: &str, value_opts: &[&str]) -> Vec<String> {
    let mut out = Vec::new();
    let mut seen_sub = false;
    let mut i = 0;
    while let Some(f) = rest.get(i) {
        i += 1;
        let t = f.text.as_str();
        if t.starts_with('-') {
            if value_opts.contains(&t) {
                i += 1;
            }
            continue;
        }
        if !seen_sub {
            if f.known && t == sub {
                seen_sub = true;
                continue;
            }
            return out;
        }
        if f.known && !t.is_empty() && !is_path(t) {
            out.push(t.to_string());
        }
    }
    out
}

fn uv(rest: &[Field], found: &mut Found) {
    let mut i = 0;
    while let Some(f) = rest.get(i) {
        let t = f.text.as_str();
        if t.starts_with('-') {
            i += if UV_VALUE_OPTS.contains(&t) { 2 } else { 1 };
        } else {
            if t == "pip" {
                pip(&rest[i + 1..], found);
            }
            return;
        }
    }
}

/// The requirement's project name, normalized.
fn req_name(t: &str) -> String {
    t.chars().take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')).collect::<String>().to_ascii_lowercase()
}

fn is_local_requirement(t: &str) -> bool {
    let l = t.to_ascii_lowercase();
    is_path(t)
        || l.starts_with("file:")
        || (t.contains('/') && !t.contains("://"))
        || t.contains('*')
        || [".whl", ".tar.gz", ".zip", ".tgz", ".tar.bz2"].iter().any(|e| l.ends_with(e))
}

/// `pip` arguments: the global options, `install`/`wheel`, its arguments.
fn pip(rest: &[Field], found: &mut Found) {
    let mut i = 0;
    while rest.get(i).is_some_and(|f| f.text.starts_with('-')) {
        i += if PIP_VALUE_OPTS.contains(&rest[i].text.as_str()) { 2 } else { 1 };
    }
    if !rest.get(i).is_some_and(|f| f.known && matches!(f.text.as_str(), "install" | "wheel")) {
        return;
    }
    i += 1;
    while let Some(f) = rest.get(i) {
        i += 1;
        let t = f.text.as_str();
        let req = if t == "-r" || t == "--requirement" {
            i += 1;
            rest.get(i - 1).filter(|f| f.known).map(|f| f.text.clone())
        } else if let Some(v) = t.strip_prefix("--requirement=") {
            Some(v.to_string())
        } else if t.len() > 2 && t.starts_with("-r") && !t.starts_with("--") {
            Some(t[2..].to_string())
        } else {
            None
        };
        if let Some(r) = req {
            if f.known && !r.is_empty() {
                found.reqs.push(r);
            }
            continue;
        }
        if let Some(short) = t.strip_prefix('-') {
            let combined = short.len() > 1 && short.chars().all(|c| c.is_ascii_alphabetic());
            if combined && t.ends_with('r') {
                found.reqs.extend(rest.get(i).filter(|f| f.known).map(|f| f.text.clone()));
                i += 1;
            } else if PIP_VALUE_OPTS.contains(&t) || (combined && t.ends_with(['c', 'e', 'i', 'f', 't', 'w', 'b'])) {
                i += 1;
            }
            continue;
        }
        if f.known && !t.is_empty() && !is_local_requirement(t) && req_name(t) != "pip" {
            found.pip.push(t.to_string());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn final_of(text: &str) -> Stage {
        parse(text).unwrap().final_stage().unwrap().clone()
    }

    fn env(s: &Stage) -> Vec<(&str, &str)> {
        s.env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
    }

    #[test]
    fn continuation_lines_and_comments() {
        let df = parse(
            "# syntax=docker/dockerfile:1\nFROM debian\nRUN apt-get update && \\\n    apt-get install -y \\\n    # the compiler\n    gcc \\\n\n    make\nCMD echo \\\n  hi\n",
        )
        .unwrap();
        assert_eq!(df.syntax.as_deref(), Some("docker/dockerfile:1"));
        // an unknown directive ends the directives: the escape below is a comment
        let df2 = parse("# foo=bar\n# escape=`\nFROM a\nRUN x \\\n  y\n").unwrap();
        assert_eq!(df2.stages[0].runs[0].command, "x   y");
        let s = &df.stages[0];
        assert_eq!(s.runs.len(), 1);
        assert_eq!(s.runs[0].line, 3);
        assert_eq!(s.runs[0].command, "apt-get update &&     apt-get install -y     gcc     make");
        assert_eq!(s.apt_packages, ["gcc", "make"]);
        assert_eq!(s.cmd, Some(Command::Shell("echo   hi".into())));
    }

    #[test]
    fn escape_directive() {
        let s = final_of("# escape=`\nFROM mcr.microsoft.com/windows\nRUN dir `\n  C:\\ \nWORKDIR C:\\app\n");
        assert_eq!(s.runs[0].command, "dir   C:\\");
    }

    #[test]
    fn heredoc_run() {
        let df = parse(
            "FROM debian\nRUN <<EOF\napt-get update\napt-get install -y --no-install-recommends git\nEOF\nRUN python3 <<-'PY'\n\timport os\n\tPY\nRUN cat <<EOF > /etc/x && apt-get install -y curl\napt-get install -y notme\nEOF\nCMD [\"x\"]\n",
        )
        .unwrap();
        let s = &df.stages[0];
        assert_eq!(s.runs[0].command, "apt-get update\napt-get install -y --no-install-recommends git\n");
        assert_eq!(s.runs[1].command, "python3 <<-'PY'\nimport os\nPY");
        assert_eq!(s.runs[2].line, 9);
        assert_eq!(s.apt_packages, ["git", "curl"]);
        assert_eq!(s.cmd, Some(Command::Exec(vec!["x".into()])));
        assert!(parse("FROM a\nRUN <<EOF\necho\n").unwrap_err().starts_with("line 2: unterminated heredoc"));
    }

    #[test]
    fn multi_stage_inheritance() {
        let df = parse(
            "FROM python:3.12 AS base\nENV A=1 B=2\nWORKDIR /app\nUSER app\nEXPOSE 80\nCMD [\"serve\"]\nFROM base AS dev\nENV A=dev\nFROM base AS final\nENV B=3\nWORKDIR sub\n",
        )
        .unwrap();
        let f = df.final_stage().unwrap();
        assert_eq!(f.name.as_deref(), Some("final"));
        assert_eq!(f.base, "base");
        assert_eq!(f.base_stage, Some(0));
        assert_eq!(env(f), [("A", "1"), ("B", "3")]);
        assert_eq!(f.workdir.as_deref(), Some("/app/sub"));
        assert_eq!(f.user.as_deref(), Some("app"));
        assert_eq!(f.expose, ["80"]);
        assert_eq!(f.cmd, Some(Command::Exec(vec!["serve".into()])));
        assert_eq!(env(df.stage("DEV").unwrap()), [("A", "dev"), ("B", "2")]);
        assert_eq!(df.stage("1").unwrap().name.as_deref(), Some("dev"));
        // an ENTRYPOINT resets the inherited CMD
        let s = final_of("FROM a AS b\nCMD [\"x\"]\nFROM b\nENTRYPOINT [\"/e\"]\n");
        assert_eq!(s.cmd, None);
        assert_eq!(s.start_argv(), Some(vec!["/e".to_string()]));
    }

    #[test]
    fn env_forms() {
        let s = final_of("FROM a\nENV a=b c=\"d e\" f='$a'\nENV K V with spaces\nENV P=/x:$PATH Q=${a}-$c\nENV a=z r=$a\n");
        assert_eq!(env(&s), [("a", "z"), ("c", "d e"), ("f", "$a"), ("K", "V with spaces"), ("P", "/x:$PATH"), ("Q", "b-d e"), ("r", "b")]);
        assert_eq!(s.env_var("K"), Some("V with spaces"));
    }

    #[test]
    fn arg_substitution() {
        let df = parse(
            "ARG PY=3.12\nARG REG\nFROM ${REG:-docker.io}/python:${PY}-slim AS b\nARG PY\nARG HOME_DIR=/srv\nARG NONE\nWORKDIR ${HOME_DIR}/app\nENV V=$PY W=${NONE:-def} X=${NONE} Y=${HOME_DIR:+set}\nUSER ${U:-nobody}:staff\n",
        )
        .unwrap();
        assert_eq!(df.global_args, [("PY".into(), Some("3.12".into())), ("REG".into(), None)]);
        let s = &df.stages[0];
        assert_eq!(s.base, "docker.io/python:3.12-slim");
        assert_eq!(s.args[0], ("PY".into(), Some("3.12".into())));
        assert_eq!(s.workdir.as_deref(), Some("/srv/app"));
        assert_eq!(env(s), [("V", "3.12"), ("W", "def"), ("X", "${NONE}"), ("Y", "set")]);
        assert_eq!(s.user.as_deref(), Some("nobody:staff"));
    }

    #[test]
    fn expose_ports() {
        let s = final_of("FROM a\nARG PORT=9000\nEXPOSE 8000 8000/tcp ${PORT} 53/UDP\nENV P2=\"1 2\"\nEXPOSE $P2\n");
        assert_eq!(s.expose, ["8000", "9000", "53/udp", "1", "2"]);
    }

    #[test]
    fn cmd_forms() {
        let s = final_of("FROM a\nSHELL [\"/bin/bash\", \"-c\"]\nCMD gunicorn app:app -b \"0.0.0.0:80\"\n");
        let c = s.cmd.clone().unwrap();
        assert_eq!(c, Command::Shell("gunicorn app:app -b \"0.0.0.0:80\"".into()));
        assert_eq!(c.argv(), ["/bin/sh", "-c", "gunicorn app:app -b \"0.0.0.0:80\""]);
        assert_eq!(c.words(), ["gunicorn", "app:app", "-b", "0.0.0.0:80"]);
        assert_eq!(s.argv(&c)[0], "/bin/bash");
        let s = final_of("FROM a\nENTRYPOINT [\"/entry.sh\"]\nCMD [\"uwsgi\", \"/etc/u.ini\"]\n");
        assert_eq!(s.cmd.clone().unwrap().words(), ["uwsgi", "/etc/u.ini"]);
        assert_eq!(s.start_argv().unwrap(), ["/entry.sh", "uwsgi", "/etc/u.ini"]);
        // `[ -f x ]` is shell, an unclosed JSON array is an error
        assert_eq!(final_of("FROM a\nCMD [ -f x ] && run\n").cmd, Some(Command::Shell("[ -f x ] && run".into())));
        assert!(parse("FROM a\n\nCMD [\"a\", \"b\"\n").unwrap_err().starts_with("line 3: unterminated JSON"));
        let s = final_of("FROM a\nHEALTHCHECK --interval=30s \\\n  CMD curl -f http://localhost/ || exit 1\nSTOPSIGNAL SIGINT\n");
        assert_eq!(s.healthcheck, Some(Command::Shell("curl -f http://localhost/ || exit 1".into())));
        assert_eq!(s.healthcheck_flags, [("interval".to_string(), "30s".to_string())]);
        assert_eq!(s.stopsignal.as_deref(), Some("SIGINT"));
        assert_eq!(final_of("FROM a AS b\nHEALTHCHECK CMD x\nFROM b\nHEALTHCHECK NONE\n").healthcheck, None);
    }

    #[test]
    fn apt_packages() {
        let s = final_of(
            "FROM python:3.12-slim\nRUN set -ex \\\n    && RUN_DEPS=\" \\\n        libpq5 \\\n        zlib1g \\\n    \" \\\n    && apt-get update && apt-get install -y --no-install-recommends $RUN_DEPS \\\n    && rm -rf /var/lib/apt/lists/*\nRUN apt-get -y install build-essential pkg-config libpq-dev\nRUN apt-get -o Dpkg::Options::=--force-confold install -y curl=7.88 && apt-get purge -y gcc\n",
        );
        assert_eq!(s.apt_packages, ["libpq5", "zlib1g", "build-essential", "pkg-config", "libpq-dev", "curl=7.88"]);
        let s = final_of(
            "FROM alpine\nARG EXTRA=jq\nRUN apk add --no-cache --virtual .build-deps gcc musl-dev $EXTRA linux-headers-$(uname -r) $UNSET\nRUN dnf -y install --setopt=tsflags=nodocs git && yum install -y make\nRUN [\"microdnf\", \"install\", \"tar\"]\nRUN sh -c 'apt install -y vim'\n",
        );
        assert_eq!(s.apt_packages, ["gcc", "musl-dev", "jq", "git", "make", "tar", "vim"]);
    }

    #[test]
    fn pip_packages() {
        let s = final_of(
            "FROM python\nRUN pip wheel --wheel-dir /wheels apprise uwsgi mysqlclient minio==7.2.20 \"psycopg[c]\" -r /tmp/requirements.txt\nRUN /opt/venv/bin/pip install --no-deps /httpbin\n",
        );
        assert_eq!(s.pip_packages, ["apprise", "uwsgi", "mysqlclient", "minio==7.2.20", "psycopg[c]"]);
        assert_eq!(s.pip_requirement_files, ["/tmp/requirements.txt"]);
        let s = final_of(
            "FROM python\nRUN pip install -r requirements.txt uwsgi \"psycopg[c]\" minio==7.2.20\nRUN python3.12 -m pip install -U pip && python -m pip install --no-cache-dir --requirement=/r/prod.txt -c c.txt gunicorn\nRUN uv pip install --system -e . flask 'x>=1' ./local /wheels/*.whl\nRUN pip3 install --upgrade pip wheel\nRUN pip install -Ur dev.txt -qe ./lib\n",
        );
        assert_eq!(s.pip_packages, ["uwsgi", "psycopg[c]", "minio==7.2.20", "gunicorn", "flask", "x>=1", "wheel"]);
        assert_eq!(s.pip_requirement_files, ["requirements.txt", "/r/prod.txt", "dev.txt"]);
        // a lone heredoc with a non-shell shebang is not read as shell
        let s = final_of(
            "FROM a\nRUN <<EOF\n#!/usr/bin/env python3\nprint('apt-get install -y x')\nEOF\nRUN <<EOF\n#!/bin/sh -e\napk add git\nEOF\n",
        );
        assert_eq!(s.apt_packages, ["git"]);
    }

    #[test]
    fn copy_dest_and_from() {
        let df = parse(
            "FROM node AS web\nWORKDIR /src\nCOPY package.json ./\nFROM python\nWORKDIR /app\nCOPY --from=web --chown=app:app /src/dist static/\nCOPY . .\nCOPY [\"a b\", \"c\"]\nADD --chmod=755 https://x/y.sh /usr/local/bin/\nENV D=/data\nCOPY x $D\nCOPY <<EOF /etc/conf\nk=v\nEOF\n",
        )
        .unwrap();
        assert_eq!(df.stages[0].copies[0].dest, "/src/");
        let c = &df.stages[1].copies;
        assert_eq!(c[0].from.as_deref(), Some("web"));
        assert_eq!(c[0].chown.as_deref(), Some("app:app"));
        assert_eq!(c[0].sources, ["/src/dist"]);
        assert_eq!(c[0].dest, "/app/static/");
        assert_eq!(c[1].dest, "/app/");
        assert_eq!((c[2].sources[0].as_str(), c[2].dest.as_str()), ("a b", "/app/c"));
        assert!(c[3].is_add && c[3].chmod.as_deref() == Some("755"));
        assert_eq!(c[4].dest, "/data");
        assert_eq!((c[5].sources[0].as_str(), c[5].line), ("<<EOF", 12));
    }

    #[test]
    fn final_and_needed_stages() {
        let df = parse(
            "FROM node:18 AS assets\nRUN npm ci && npm run build\nFROM python:3.12 AS deps\nRUN pip install flask\nFROM deps AS icu\nRUN make\nFROM node AS unused\nFROM python:3.12-slim AS final\nCOPY --from=assets /app/dist /static\nCOPY --from=icu /x /x\nRUN --mount=type=bind,from=deps,source=/w,target=/w true\nCOPY --from=ghcr.io/astral-sh/uv /uv /bin/\n",
        )
        .unwrap();
        let f = df.final_stage().unwrap();
        assert_eq!(f.name.as_deref(), Some("final"));
        assert_eq!(df.needed_stages(4), [0, 1, 2, 4]);
        assert_eq!(df.needed_stages(2), [1, 2]);
        assert_eq!(df.needed_stages(9), Vec::<usize>::new());
        assert_eq!(df.stages[2].base_stage, Some(1));
        assert_eq!(f.runs[0].mounts, ["type=bind,from=deps,source=/w,target=/w"]);
        let df = parse("FROM a\nFROM b\nCOPY --from=0 / /\n").unwrap();
        assert_eq!(df.needed_stages(1), [0, 1]);
    }

    #[test]
    fn junk_never_panics() {
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        for round in 0..200 {
            let mut bytes = Vec::new();
            for _ in 0..(round * 7) % 600 {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                let pick = b"FROM RUN CMD ENV ARG COPY [\"{}$\\\n\t =:-<<EOF#'`()|&;";
                bytes.push(if seed % 3 == 0 { (seed >> 8) as u8 } else { pick[(seed >> 16) as usize % pick.len()] });
            }
            let _ = parse(&String::from_utf8_lossy(&bytes));
        }
        for t in [
            "FROM a\nCMD [\"unterminated",
            "FROM a\nRUN [\"a\", ",
            "FROM a\nENV a=${b:-${c:-${d",
            "\u{feff}FROM\tx\nRUN \\",
            "FROM a\nRUN <<",
            "FROM a\nRUN cat <<EOF\nx",
            "FROM a\nRUN $(( ${ \"' `",
            "FROM a\nCMD [\"\\ud800\", \"\\u12\"]",
            "FROM a\nHEALTHCHECK --x",
            "FROM a\nCOPY --from",
            "ARG",
            "\\",
        ] {
            let _ = parse(t);
        }
        // a large CMD inherited down a long chain of stages runs out of budget instead of memory
        let mut chain = format!("FROM a AS s0\nCMD {}\n", "x".repeat(100_000));
        for i in 1..2000 {
            chain.push_str(&format!("FROM s{} AS s{i}\n", i - 1));
        }
        assert!(parse(&chain).unwrap_err().contains("too much"));
        let deep = format!("FROM a\nENV A={}x{}\n", "${B:-".repeat(5000), "}".repeat(5000));
        assert!(parse(&deep).is_ok());
        // exponential growth across ENV lines is cut off by the budget
        let mut boom = String::from("FROM a\nENV A0=xxxxxxxxxxxxxxxx\n");
        for i in 1..40 {
            boom.push_str(&format!("ENV A{i}=${{A{p}}}${{A{p}}}${{A{p}}}${{A{p}}}\n", p = i - 1));
        }
        assert!(parse(&boom).unwrap_err().contains("too much"));
    }

    #[test]
    fn find_candidates() {
        let dir = std::env::temp_dir().join(format!("strata-init-dockerfile-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("docker")).unwrap();
        for f in ["Dockerfile.dev", "Dockerfile", "app.Dockerfile", "Dockerfile.dockerignore", "README.md", "docker/Dockerfile"] {
            std::fs::write(dir.join(f), "FROM a\n").unwrap();
        }
        std::fs::create_dir_all(dir.join("Containerfile")).unwrap();
        let names: Vec<String> = find(&dir).iter().map(|p| p.strip_prefix(&dir).unwrap().to_string_lossy().into_owned()).collect();
        assert_eq!(names, ["Dockerfile", "app.Dockerfile", "docker/Dockerfile", "Dockerfile.dev"]);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
