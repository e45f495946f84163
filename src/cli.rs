//! The `strata` command line (clap). With no arguments inside BuildKit (the
//! gateway env is set) it runs as the frontend.
//!
//! Exit codes: 0 success (for `check`: clean), 1 an error in the spec or a
//! file (for `check`: errors or warnings), 2 a usage error or an unknown
//! target.

use std::collections::BTreeMap;
use std::path::PathBuf;

use clap::{Args, CommandFactory, Parser, Subcommand, ValueEnum};

use crate::llb::lower;
use crate::request::{self, Request, RequestError, Resolved};

#[derive(Parser, Debug)]
#[command(name = "strata", version, about = "A BuildKit frontend for strata.toml", propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run as a BuildKit gateway frontend (what `# syntax=` starts).
    Frontend,
    /// Validate and lint a spec: errors and warnings as FILE:LINE:COL.
    ///
    /// Exit 0 when clean, 1 on errors or warnings.
    Check(SpecArgs),
    /// Print the stages and layers the spec builds, and what each layer's
    /// cache key depends on.
    Plan {
        #[command(flatten)]
        spec: SpecArgs,
        #[command(flatten)]
        target: TargetArgs,
        /// Print the strata.deps.digest label the deps image would get.
        #[arg(long)]
        deps_digest: bool,
        /// Print the tag `[image] deps-image` looks for (REPO:deps-DIGEST):
        /// push `--target deps` there.
        #[arg(long, conflicts_with = "deps_digest")]
        deps_image: bool,
        #[arg(long, value_enum, default_value_t = Format::Tree)]
        format: Format,
        /// Every op's commands, env and copy paths as well.
        #[arg(long, conflicts_with = "format")]
        detailed: bool,
        /// Plan as for an engine with MergeOp/DiffOp (containerd store).
        #[arg(long)]
        mergeop: bool,
    },
    /// Write the LLB definition (protobuf) to stdout, for `buildctl build`.
    Llb {
        #[command(flatten)]
        spec: SpecArgs,
        #[command(flatten)]
        target: TargetArgs,
        /// The platform to lower for.
        #[arg(long, default_value = "linux/amd64", value_name = "OS/ARCH")]
        platform: String,
        /// Lower as for an engine with MergeOp/DiffOp.
        #[arg(long)]
        mergeop: bool,
    },
    /// Write an equivalent Dockerfile for the built-in Dockerfile frontend.
    Dockerfile {
        #[command(flatten)]
        spec: SpecArgs,
        #[command(flatten)]
        target: TargetArgs,
        /// Write PATH (and PATH.dockerignore with the context excludes)
        /// instead of stdout.
        #[arg(short, long, value_name = "PATH")]
        output: Option<PathBuf>,
    },
    /// Look at a project and write DIR/strata.toml.
    Init {
        /// The project directory.
        #[arg(default_value = ".")]
        dir: PathBuf,
        /// Overwrite an existing strata.toml.
        #[arg(long)]
        force: bool,
    },
    /// Print the JSON Schema of strata.toml, or the key reference.
    Schema {
        #[arg(long, value_enum, default_value_t = SchemaFormat::Json)]
        format: SchemaFormat,
    },
    /// Print a shell completion script.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the version.
    Version,
}

#[derive(Args, Debug, Clone)]
struct SpecArgs {
    /// The spec file.
    #[arg(short = 'f', long = "file", default_value = "strata.toml", value_name = "FILE")]
    file: String,
    /// A build arg, as `docker build --build-arg`.
    #[arg(long = "build-arg", value_name = "KEY=VALUE", value_parser = parse_build_arg)]
    build_args: Vec<(String, String)>,
    /// The build context directory (default: the spec's directory), as the
    /// last argument of `docker build`; a spec file here is read as `-f`.
    #[arg(value_name = "CONTEXT")]
    context: Option<PathBuf>,
    /// The build context directory (the same as CONTEXT).
    #[arg(long = "context", value_name = "DIR", conflicts_with = "context", hide = true)]
    context_flag: Option<PathBuf>,
}

#[derive(Args, Debug, Clone, Default)]
struct TargetArgs {
    /// The target: a stage (runtime, deps, builder, test) or a variant.
    #[arg(long, default_value = "")]
    target: String,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum Format {
    Tree,
    Json,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum SchemaFormat {
    Json,
    Markdown,
}

fn parse_build_arg(s: &str) -> Result<(String, String), String> {
    s.split_once('=').map(|(k, v)| (k.to_string(), v.to_string())).ok_or_else(|| format!("expects KEY=VALUE, got \"{s}\""))
}

impl SpecArgs {
    fn request(&self, target: &str, merge: bool) -> Request {
        // `strata check strata.toml`: a spec file where the context goes
        // is the spec, with its directory as the context.
        let (file, context) = match &self.context {
            Some(c) if c.is_file() && self.file == "strata.toml" => (c.to_string_lossy().to_string(), None),
            _ => (self.file.clone(), self.context.clone().or_else(|| self.context_flag.clone())),
        };
        Request {
            file,
            context,
            build_args: self.build_args.iter().cloned().collect::<BTreeMap<_, _>>(),
            target: target.to_string(),
            merge,
            check_context: true,
        }
    }
}

pub fn main(args: Vec<String>) -> i32 {
    if args.is_empty() && std::env::var_os("BUILDKIT_SESSION_ID").is_some() {
        return crate::frontend::main();
    }
    let cli = match Cli::try_parse_from(std::iter::once("strata".to_string()).chain(args)) {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { 2 } else { 0 };
        }
    };
    match cli.command {
        Command::Frontend => crate::frontend::main(),
        Command::Version => {
            println!("strata {}", env!("CARGO_PKG_VERSION"));
            println!(
                "  uv {} (installer), poetry {} + poetry-plugin-export {}, pdm {} (lock exports)",
                crate::plan::UV_VERSION,
                crate::plan::POETRY_VERSION,
                crate::plan::POETRY_EXPORT_VERSION,
                crate::plan::PDM_VERSION
            );
            println!("  tini {} (init = true on apt images, sha256-pinned .deb)", crate::plan::TINI.files[0].version);
            0
        }
        Command::Completions { shell } => {
            clap_complete::generate(shell, &mut Cli::command(), "strata", &mut std::io::stdout());
            0
        }
        Command::Schema { format } => schema(format),
        Command::Init { dir, force } => init(&dir, force),
        Command::Check(spec) => with_request("check", &spec.request("", false), check),
        Command::Plan { spec, target, deps_digest, deps_image, format, detailed, mergeop } => {
            with_request("plan", &spec.request(&target.target, mergeop), |r| {
                if deps_digest || deps_image {
                    let repo = r.spec.image.deps_image.as_ref().map(|d| d.value.clone());
                    if deps_image && repo.is_none() {
                        eprintln!("strata plan: {} sets no `[image] deps-image`", r.file);
                        return 1;
                    }
                    return match r.deps_digest() {
                        Ok(d) => {
                            match repo.filter(|_| deps_image) {
                                Some(repo) => println!("{}", crate::deps::tag(&repo, &d)),
                                None => println!("{d}"),
                            }
                            0
                        }
                        Err(e) => {
                            eprintln!("strata plan: {e}");
                            1
                        }
                    };
                }
                match (format, detailed) {
                    (Format::Json, _) => {
                        println!("{}", serde_json::to_string_pretty(&crate::plan::render::json(&r.plan, r.stage)).unwrap_or_default())
                    }
                    (Format::Tree, false) => print!("{}", crate::plan::render::tree(&r.plan, r.stage)),
                    (Format::Tree, true) => print!("{}", crate::plan::render::detailed(&r.plan, r.stage)),
                }
                0
            })
        }
        Command::Llb { spec, target, platform, mergeop } => {
            let platform = match crate::platform::parse(&platform) {
                Ok(p) => p,
                Err(e) => {
                    eprintln!("strata llb: {e}");
                    return 2;
                }
            };
            with_request("llb", &spec.request(&target.target, mergeop), |r| {
                let inputs = lower::Inputs::offline(platform.clone(), Some((&spec.file, &r.source)), mergeop);
                let def = lower::lower(&r.plan, &inputs, r.stage).definition;
                use std::io::Write;
                match std::io::stdout().write_all(&prost::Message::encode_to_vec(&def)) {
                    Ok(()) => 0,
                    Err(e) => {
                        eprintln!("strata llb: {e}");
                        1
                    }
                }
            })
        }
        // A Dockerfile has no DiffOp/MergeOp for dependency layers: eject
        // the linear plan (the same file tree).
        Command::Dockerfile { spec, target, output } => {
            with_request("dockerfile", &spec.request(&target.target, false), |r| dockerfile(r, &spec.file, output.as_deref()))
        }
    }
}

/// Resolves the request and runs `f` on it, or prints why it cannot be.
fn with_request(cmd: &str, req: &Request, f: impl FnOnce(&Resolved) -> i32) -> i32 {
    match request::resolve_dir(req) {
        Ok(r) => f(&r),
        Err(RequestError::Spec(e)) => {
            eprintln!("error: {e}");
            1
        }
        Err(e @ RequestError::UnknownTarget(_)) => {
            eprintln!("strata {cmd}: {e}");
            2
        }
        Err(e @ RequestError::Io(_)) => {
            eprintln!("{e}");
            1
        }
    }
}

fn check(r: &Resolved) -> i32 {
    let file = &r.file;
    let warnings = crate::lint::check(&r.spec, &r.source, &r.dockerignore);
    for w in &warnings {
        let (line, col) = crate::diag::line_col(&r.source, w.span.start);
        println!("{file}:{line}:{col}: warning[{}]: {}", w.rule, w.detail);
    }
    if warnings.is_empty() {
        println!("{file}: ok");
        0
    } else {
        println!("{file}: {} warning(s)", warnings.len());
        1
    }
}

fn dockerfile(r: &Resolved, file: &str, output: Option<&std::path::Path>) -> i32 {
    let e = crate::eject::eject(&r.plan, r.stage, file);
    let Some(path) = output else {
        print!("{}", e.dockerfile);
        if !e.dockerignore.is_empty() {
            eprintln!("strata dockerfile: the context excludes belong in <Dockerfile>.dockerignore; use -o PATH to write both");
        }
        return 0;
    };
    let ignore_path = format!("{}.dockerignore", path.display());
    let mut result = std::fs::write(path, &e.dockerfile);
    if result.is_ok() && !e.dockerignore.is_empty() {
        result = std::fs::write(&ignore_path, e.dockerignore.join("\n") + "\n");
    }
    match result {
        Ok(()) => 0,
        Err(err) => {
            eprintln!("strata dockerfile: {}: {err}", path.display());
            1
        }
    }
}

fn schema(format: SchemaFormat) -> i32 {
    match format {
        SchemaFormat::Json => {
            // Pretty and newline-terminated: it is committed to the repo.
            let text = serde_json::to_string_pretty(&crate::spec::schema::json_schema()).expect("a json Value serialises");
            println!("{text}");
        }
        SchemaFormat::Markdown => print!("{}", crate::spec::schema::markdown()),
    }
    0
}

fn init(dir: &std::path::Path, force: bool) -> i32 {
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
            for (key, why) in &found.why {
                println!("  {key}: {why}");
            }
            for n in &found.notes {
                println!("  note: {n}");
            }
            0
        }
        Err(e) => {
            eprintln!("strata init: {}: {e}", target.display());
            1
        }
    }
}
