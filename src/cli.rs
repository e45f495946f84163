//! The `strata` command line. With no arguments inside BuildKit (the
//! gateway env is set) it runs as the frontend.

use std::collections::BTreeMap;

use crate::diag::SpecError;
use crate::llb::lower;
use crate::{context, plan, spec};

const USAGE: &str = "strata — a BuildKit frontend for strata.toml

usage:
  strata frontend                 run as a BuildKit gateway frontend (what `# syntax=` starts)
  strata check [-f FILE] [--build-arg K=V]...
                                  validate and lint a spec; errors and warnings as FILE:LINE:COL;
                                  exit 0 clean, 1 errors or warnings, 2 usage
  strata plan  [-f FILE] [--build-arg K=V]... [--target T] [--deps-digest] [--context DIR] [--format tree|json] [--mergeop]
                                  print the stages and layers the spec builds, or (--deps-digest)
                                  the strata.deps.digest label the deps image would get
  strata llb   [-f FILE] [--build-arg K=V]... [--target T] [--platform OS/ARCH] [--mergeop]
                                  write the LLB definition (protobuf) to stdout, for `buildctl build`
  strata dockerfile [-f FILE] [--build-arg K=V]... [--target T] [-o PATH]
                                  write an equivalent Dockerfile (stdout, or PATH plus PATH.dockerignore
                                  holding the context excludes) for the built-in Dockerfile frontend
  strata init  [DIR] [--force]    look at a project and write DIR/strata.toml (never over an existing one
                                  without --force)
  strata schema [--format json|markdown]
                                  print the JSON Schema of strata.toml (for taplo / Even Better TOML)
                                  or the key reference (docs/reference.md)
  strata version
";

pub fn main(args: Vec<String>) -> i32 {
    if args.is_empty() && std::env::var_os("BUILDKIT_SESSION_ID").is_some() {
        return crate::frontend::main();
    }
    let Some((cmd, rest)) = args.split_first() else {
        eprint!("{USAGE}");
        return 2;
    };
    match cmd.as_str() {
        "frontend" => crate::frontend::main(),
        "version" | "--version" => {
            println!("strata {}", env!("CARGO_PKG_VERSION"));
            0
        }
        "help" | "--help" | "-h" => {
            print!("{USAGE}");
            0
        }
        "init" => init(rest),
        "schema" => schema(rest),
        "check" | "plan" | "llb" | "dockerfile" => match Common::parse(rest) {
            Ok(c) => run(cmd, &c),
            Err(e) => {
                eprintln!("strata {cmd}: {e}\n\n{USAGE}");
                2
            }
        },
        other => {
            eprintln!("strata: unknown command `{other}`\n\n{USAGE}");
            2
        }
    }
}

fn schema(args: &[String]) -> i32 {
    let format = match args {
        [] => "json",
        [f, v] if f == "--format" => v.as_str(),
        _ => "",
    };
    match format {
        "json" => {
            // Pretty and newline-terminated: it is committed to the repo.
            let text = serde_json::to_string_pretty(&spec::schema::json_schema()).expect("a json Value serialises");
            println!("{text}");
            0
        }
        "markdown" => {
            print!("{}", spec::schema::markdown());
            0
        }
        _ => {
            eprintln!("strata schema: usage: strata schema [--format json|markdown]");
            2
        }
    }
}

fn init(args: &[String]) -> i32 {
    let mut dir = ".".to_string();
    let mut force = false;
    for a in args {
        match a.as_str() {
            "--force" => force = true,
            s if s.starts_with('-') => {
                eprintln!("strata init: unknown argument `{s}`\n\n{USAGE}");
                return 2;
            }
            s => dir = s.to_string(),
        }
    }
    let dir = std::path::Path::new(&dir);
    let target = dir.join("strata.toml");
    if target.exists() && !force {
        eprintln!("strata init: {} exists; pass --force to overwrite it", target.display());
        return 1;
    }
    let found = match crate::init::inspect(dir) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("strata init: {}: {e}", dir.display());
            return 1;
        }
    };
    match std::fs::write(&target, crate::init::render(&found)) {
        Ok(()) => {
            println!("wrote {}", target.display());
            0
        }
        Err(e) => {
            eprintln!("strata init: {}: {e}", target.display());
            1
        }
    }
}

struct Common {
    file: String,
    build_args: BTreeMap<String, String>,
    platform: Option<String>,
    target: String,
    deps_digest: bool,
    mergeop: bool,
    format: String,
    /// The build context directory (default: the spec's directory).
    context: Option<std::path::PathBuf>,
    /// `dockerfile -o PATH`.
    output: Option<String>,
}

impl Common {
    fn parse(args: &[String]) -> Result<Self, String> {
        let mut c = Common {
            file: "strata.toml".into(),
            build_args: BTreeMap::new(),
            platform: None,
            target: String::new(),
            deps_digest: false,
            mergeop: false,
            format: "tree".into(),
            context: None,
            output: None,
        };
        let mut it = args.iter();
        while let Some(a) = it.next() {
            let mut value = |name: &str| it.next().cloned().ok_or_else(|| format!("{name} needs a value"));
            match a.as_str() {
                "-f" | "--file" => c.file = value(a)?,
                "--build-arg" => {
                    let v = value(a)?;
                    let (k, val) = v.split_once('=').ok_or_else(|| format!("--build-arg expects KEY=VALUE, got \"{v}\""))?;
                    c.build_args.insert(k.to_string(), val.to_string());
                }
                "--platform" => c.platform = Some(value(a)?),
                "--target" => c.target = value(a)?,
                "--context" => c.context = Some(value(a)?.into()),
                "-o" | "--output" => c.output = Some(value(a)?),
                "--deps-digest" => c.deps_digest = true,
                "--mergeop" => c.mergeop = true,
                "--format" => {
                    c.format = value(a)?;
                    if !matches!(c.format.as_str(), "tree" | "json") {
                        return Err(format!("--format takes tree or json, not \"{}\"", c.format));
                    }
                }
                other => return Err(format!("unknown argument `{other}`")),
            }
        }
        Ok(c)
    }
}

fn run(cmd: &str, c: &Common) -> i32 {
    let source = match std::fs::read(&c.file) {
        Ok(b) => match String::from_utf8(b) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("{}: not valid UTF-8 (byte {})", c.file, e.utf8_error().valid_up_to());
                return 1;
            }
        },
        Err(e) => {
            eprintln!("{}: {e}", c.file);
            return 1;
        }
    };
    let fail = |d| {
        eprintln!("error: {}", SpecError::new(&c.file, &source, d));
        1
    };
    let mut spec = match spec::load(&source, &c.build_args) {
        Ok(s) => s,
        Err(d) => return fail(d),
    };
    let mut stage = c.target.clone();
    if spec.variants.iter().any(|v| v.value == c.target) {
        spec = match spec::load_target(&source, &c.build_args, Some(&c.target)) {
            Ok(s) => s,
            Err(d) => return fail(d),
        };
        stage = "runtime".into();
    }
    // The CLI reads .dockerignore beside the spec, as a build from the
    // spec's directory would.
    let dir = c.context.clone().unwrap_or_else(|| std::path::Path::new(&c.file).parent().map(|p| p.to_path_buf()).unwrap_or_default());
    let ignore_file =
        std::fs::read_to_string(format!("{}.dockerignore", c.file)).or_else(|_| std::fs::read_to_string(dir.join(".dockerignore")));
    let ignore = ignore_file.map(|t| context::parse_dockerignore(&t)).unwrap_or_default();
    let mut files = BTreeMap::new();
    if let Some(py) = &spec.python {
        for r in &py.requirements {
            if let Ok(d) = std::fs::read(dir.join(&r.value)) {
                files.insert(r.value.clone(), d);
            }
        }
    }
    // A Dockerfile has no DiffOp/MergeOp for dependency layers: eject the
    // linear plan (the same file tree).
    let merge = c.mergeop && cmd != "dockerfile";
    let plan = plan::build_with(&spec, &ignore, &plan::PlanEnv { files, merge });
    let Some(target) = plan.stage_index(&stage) else {
        let mut names: Vec<String> = plan.targets().iter().map(|(n, _)| n.to_string()).collect();
        names.extend(spec.variants.iter().map(|v| v.value.clone()));
        eprintln!("strata {cmd}: unknown target \"{}\"; this spec has: {}", c.target, names.join(", "));
        return 2;
    };
    match cmd {
        "check" => {
            let warnings = crate::lint::check(&spec, &source, &ignore);
            for w in &warnings {
                let (line, col) = crate::diag::line_col(&source, w.span.start);
                println!("{}:{line}:{col}: warning[{}]: {}", c.file, w.rule, w.detail);
            }
            if warnings.is_empty() {
                println!("{}: ok", c.file);
                0
            } else {
                println!("{}: {} warning(s)", c.file, warnings.len());
                1
            }
        }
        "plan" if c.deps_digest => {
            let mut files = Vec::new();
            for f in &plan.deps_files {
                match std::fs::read(dir.join(f)) {
                    Ok(d) => files.push((f.clone(), d)),
                    Err(e) => {
                        eprintln!("strata plan: {}: {e}", dir.join(f).display());
                        return 1;
                    }
                }
            }
            println!("{}", crate::deps::digest(&spec, &files));
            0
        }
        "dockerfile" => {
            let e = crate::eject::eject(&plan, target, &c.file);
            let Some(path) = &c.output else {
                print!("{}", e.dockerfile);
                if !e.dockerignore.is_empty() {
                    eprintln!("strata dockerfile: the context excludes belong in <Dockerfile>.dockerignore; use -o PATH to write both");
                }
                return 0;
            };
            let ignore_path = format!("{path}.dockerignore");
            let mut result = std::fs::write(path, &e.dockerfile);
            if result.is_ok() && !e.dockerignore.is_empty() {
                result = std::fs::write(&ignore_path, e.dockerignore.join("\n") + "\n");
            }
            match result {
                Ok(()) => 0,
                Err(err) => {
                    eprintln!("strata dockerfile: {path}: {err}");
                    1
                }
            }
        }
        "plan" if c.format == "json" => {
            println!("{}", serde_json::to_string_pretty(&plan_json(&plan, target)).unwrap_or_default());
            0
        }
        "plan" => {
            print!("{}", render_plan(&plan, target));
            0
        }
        _ => {
            let platform = match crate::platform::parse(c.platform.as_deref().unwrap_or("linux/amd64")) {
                Ok(p) => p,
                Err(e) => {
                    eprintln!("strata llb: {e}");
                    return 2;
                }
            };
            let inputs = lower::Inputs::offline(platform, Some((&c.file, &source)), c.mergeop);
            let def = lower::lower(&plan, &inputs, target).definition;
            use std::io::Write;
            let bytes = prost::Message::encode_to_vec(&def);
            match std::io::stdout().write_all(&bytes) {
                Ok(()) => 0,
                Err(e) => {
                    eprintln!("strata llb: {e}");
                    1
                }
            }
        }
    }
}

/// What an op's cache key depends on besides the layer below it: the
/// command, the files it reads, where it copies from.
fn key_inputs(p: &plan::Plan, op: &plan::Op) -> Vec<String> {
    let source = |f: &plan::FileSource| match f {
        plan::FileSource::Context => "context".to_string(),
        plan::FileSource::App => "context (app)".to_string(),
        plan::FileSource::Named(n) => format!("context {n}"),
        plan::FileSource::Stage(i) => format!("stage {}", p.stages[*i].name),
    };
    match op {
        plan::Op::Run(r) => {
            let mut k = vec!["command".to_string()];
            for m in &r.mounts {
                match m {
                    plan::Mount::Files { paths, from, .. } => k.extend(paths.iter().map(|x| format!("{}:{x}", source(from)))),
                    plan::Mount::Source { from, .. } => k.push(format!("{} (all of it)", source(from))),
                    plan::Mount::Generated { files, .. } => k.extend(files.iter().map(|(n, _)| format!("generated {n}"))),
                    _ => {}
                }
            }
            k
        }
        plan::Op::Copy { from, src, .. } => vec![format!("{}:{src}", source(from))],
        plan::Op::Mkdir { .. } => vec![],
        plan::Op::Merge { layers, .. } => {
            layers.iter().map(|(l, u, _)| format!("diff {} → {}", p.stages[*l].name, p.stages[*u].name)).collect()
        }
    }
}

fn mount_text(m: &plan::Mount) -> String {
    match m {
        plan::Mount::Cache { target, id, sharing, .. } => format!("cache {target} (id={id}, {sharing:?})"),
        plan::Mount::Files { target, paths, .. } => format!("files {target} <- {}", paths.join(", ")),
        plan::Mount::Source { target, from } => format!("source {target} <- {from:?}"),
        plan::Mount::Secret { id } => format!("secret /run/secrets/{id}"),
        plan::Mount::Generated { target, files } => {
            format!(
                "generated {target} <- {}",
                files.iter().map(|(n, t)| format!("{n} ({})", t.lines().collect::<Vec<_>>().join(", "))).collect::<Vec<_>>().join("; ")
            )
        }
        plan::Mount::Ssh { id, index } => format!("ssh /run/buildkit/ssh_agent.{index} ({id})"),
    }
}

/// A readable tree of stages and their layers.
pub fn render_plan(p: &plan::Plan, target: usize) -> String {
    let mut s = String::new();
    for (i, st) in p.stages.iter().enumerate() {
        let from = match &st.from {
            plan::StageBase::Image(r) => format!("image {r}"),
            plan::StageBase::Stage(j) => format!("stage {}", p.stages[*j].name),
        };
        let mark = if i == target { " (target)" } else { "" };
        s.push_str(&format!("stage {}{mark} from {from}\n", st.name));
        for op in &st.ops {
            s.push_str(&format!("  - {}\n", op.name()));
            let key = key_inputs(p, op);
            if !key.is_empty() {
                s.push_str(&format!("      key: layer below + {}\n", key.join(", ")));
            }
            if let plan::Op::Run(r) = op {
                for m in &r.mounts {
                    s.push_str(&format!("      mount {}\n", mount_text(m)));
                }
            }
        }
    }
    s.push_str(&format!("context include {:?} exclude {:?}\n", p.context.include, p.context.exclude));
    s.push_str(&format!("context (app) include {:?} exclude {:?}\n", p.app.include, p.app.exclude));
    s
}

/// The same as JSON (`strata plan --format json`).
pub fn plan_json(p: &plan::Plan, target: usize) -> serde_json::Value {
    use serde_json::json;
    let stages: Vec<serde_json::Value> = p
        .stages
        .iter()
        .map(|st| {
            let from = match &st.from {
                plan::StageBase::Image(r) => json!({"image": r}),
                plan::StageBase::Stage(j) => json!({"stage": p.stages[*j].name}),
            };
            let ops: Vec<serde_json::Value> = st
                .ops
                .iter()
                .map(|op| {
                    let kind = match op {
                        plan::Op::Run(_) => "run",
                        plan::Op::Copy { .. } => "copy",
                        plan::Op::Mkdir { .. } => "mkdir",
                        plan::Op::Merge { .. } => "merge",
                    };
                    let mounts: Vec<String> = match op {
                        plan::Op::Run(r) => r.mounts.iter().map(mount_text).collect(),
                        _ => vec![],
                    };
                    json!({"kind": kind, "name": op.name(), "key": key_inputs(p, op), "mounts": mounts})
                })
                .collect();
            json!({"name": st.name, "from": from, "target": st.config.is_some(), "description": st.description, "ops": ops})
        })
        .collect();
    json!({
        "target": p.stages[target].name,
        "stages": stages,
        "context": {"include": p.context.include, "exclude": p.context.exclude},
        "app_context": {"include": p.app.include, "exclude": p.app.exclude},
        "dependency_files": p.deps_files,
    })
}
