//! Test support: has the Docker daemon's embedded BuildKit solve an LLB
//! `pb.Definition` and export it as a named image (what `buildctl build
//! --local ... --output type=image,name=...` does), speaking BuildKit's
//! gRPC through the Docker API, as bollard's buildkit driver does:
//! `POST /session` (upgraded to h2c; we serve FileSync + Health on it) and
//! `POST /grpc` (upgraded to h2c; we call Control.Solve on it).
//!
//! bollard itself only solves Dockerfiles (its `solve` is crate-private and
//! always uses dockerfile.v0) and has no FileSync sender, so this is a
//! small port of fsutil's sending side on tonic + bollard-buildkit-proto.
use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use bollard_buildkit_proto::fsutil::types::{packet::PacketType, Packet, Stat};
use bollard_buildkit_proto::health::health_server::{Health, HealthServer};
use bollard_buildkit_proto::health::{HealthCheckRequest, HealthCheckResponse, HealthListRequest, HealthListResponse};
use bollard_buildkit_proto::moby::buildkit::v1::{control_client::ControlClient, Exporter, SolveRequest, StatusRequest};
use bollard_buildkit_proto::moby::filesync::v1::file_sync_server::{FileSync, FileSyncServer};
use bollard_buildkit_proto::pb::Definition;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;
use tokio::sync::mpsc;
use tonic::codegen::tokio_stream::{self, wrappers::ReceiverStream};
use tonic::{Request, Response, Status, Streaming};

type Error = Box<dyn std::error::Error + Send + Sync>;

/// `POST path` with `Upgrade: h2c` on the Docker socket; the raw stream once the daemon answers 101.
async fn upgrade(path: &str, headers: &[(&str, String)]) -> std::io::Result<UnixStream> {
    let host = std::env::var("DOCKER_HOST").unwrap_or_default();
    let sock = host.strip_prefix("unix://").unwrap_or("/var/run/docker.sock");
    let mut s = UnixStream::connect(sock).await?;
    let mut req = format!("POST {path} HTTP/1.1\r\nHost: docker\r\nConnection: Upgrade\r\nUpgrade: h2c\r\nContent-Length: 0\r\n");
    for (k, v) in headers {
        req += &format!("{k}: {v}\r\n");
    }
    s.write_all(format!("{req}\r\n").as_bytes()).await?;
    let mut head = Vec::new(); // byte by byte: nothing after the headers may be consumed
    while !head.ends_with(b"\r\n\r\n") {
        head.push(s.read_u8().await?);
    }
    let head = String::from_utf8_lossy(&head);
    if !head.starts_with("HTTP/1.1 101") {
        return Err(std::io::Error::other(format!("POST {path}: {}", head.trim())));
    }
    Ok(s)
}

/// Solve `def`, exporting with the daemon's `moby` exporter (`name` + `attrs`);
/// `locals` are served by name over the session. Returns the exporter response.
pub async fn solve(
    def: Definition,
    locals: HashMap<String, PathBuf>,
    mut attrs: HashMap<String, String>,
) -> Result<HashMap<String, String>, Error> {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_nanos();
    let session = format!("llbsolve{}x{nanos}", std::process::id());
    let mut hdrs = vec![
        ("X-Docker-Expose-Session-Uuid", session.clone()),
        ("X-Docker-Expose-Session-Name", "llbsolve".to_string()),
        ("X-Docker-Expose-Session-Sharedkey", "llbsolve".to_string()),
    ];
    for m in ["/moby.filesync.v1.FileSync/DiffCopy", "/grpc.health.v1.Health/Check"] {
        hdrs.push(("X-Docker-Expose-Session-Grpc-Method", m.to_string()));
    }
    let conn = upgrade("/session", &hdrs).await?;
    let router = tonic::transport::Server::builder().add_service(FileSyncServer::new(Dirs(locals))).add_service(HealthServer::new(Healthy));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    // the stream must not end: tonic starts the graceful shutdown when it does
    let incoming = tokio_stream::StreamExt::chain(tokio_stream::iter([Ok::<_, std::io::Error>(conn)]), tokio_stream::pending());
    let server = tokio::spawn(router.serve_with_incoming_shutdown(incoming, async { drop(stopped.await) }));

    let channel = tonic::transport::Endpoint::from_static("http://docker")
        .connect_with_connector(tower::service_fn(|_| async { upgrade("/grpc", &[]).await.map(hyper_util::rt::TokioIo::new) }))
        .await?;
    let mut control = ControlClient::new(channel).max_decoding_message_size(64 << 20).max_encoding_message_size(64 << 20);
    let build_ref = format!("{session}r");
    let (mut progress, status_req) = (control.clone(), StatusRequest { r#ref: build_ref.clone() });
    tokio::spawn(async move {
        let Ok(status) = progress.status(status_req).await else { return };
        let (mut status, mut done) = (status.into_inner(), std::collections::HashSet::new());
        while let Ok(Some(st)) = status.message().await {
            for v in st.vertexes.iter().filter(|v| v.completed.is_some() && done.insert((v.digest.clone(), v.error.clone()))) {
                let state = if !v.error.is_empty() {
                    format!("ERROR {}", v.error)
                } else if v.cached {
                    "CACHED".into()
                } else {
                    "DONE".into()
                };
                eprintln!("#{} {state}", v.name);
            }
            for l in st.logs {
                eprint!("{}", String::from_utf8_lossy(&l.msg));
            }
        }
    });
    attrs.entry("name".into()).or_default();
    let req = SolveRequest {
        r#ref: build_ref,
        definition: Some(def),
        exporter_deprecated: "moby".into(),
        exporter_attrs_deprecated: attrs.clone(),
        exporters: vec![Exporter { r#type: "moby".into(), attrs }],
        session,
        ..Default::default()
    };
    let res = control.solve(req).await;
    let _ = stop.send(()); // close the session (graceful h2 shutdown of our end)
    drop(server.await);
    Ok(res.map_err(|e| format!("solve: {}", e.message()))?.into_inner().exporter_response)
}

struct Healthy;

#[tonic::async_trait]
impl Health for Healthy {
    async fn check(&self, _: Request<HealthCheckRequest>) -> Result<Response<HealthCheckResponse>, Status> {
        Ok(Response::new(HealthCheckResponse { status: 1 })) // SERVING
    }
    async fn list(&self, _: Request<HealthListRequest>) -> Result<Response<HealthListResponse>, Status> {
        Err(Status::unimplemented("list"))
    }
    type WatchStream = ReceiverStream<Result<HealthCheckResponse, Status>>;
    async fn watch(&self, _: Request<HealthCheckRequest>) -> Result<Response<Self::WatchStream>, Status> {
        Err(Status::unimplemented("watch"))
    }
}

/// Local directories by name: the sending side of fsutil's DiffCopy protocol
/// (tonistiigi/fsutil send.go + the FilterFS include/exclude/followpaths rules).
struct Dirs(HashMap<String, PathBuf>);

type Tx = mpsc::Sender<Result<Packet, Status>>;

#[tonic::async_trait]
impl FileSync for Dirs {
    type DiffCopyStream = ReceiverStream<Result<Packet, Status>>;
    async fn diff_copy(&self, req: Request<Streaming<Packet>>) -> Result<Response<Self::DiffCopyStream>, Status> {
        let md = req.metadata();
        let get = |k: &str| -> Vec<String> {
            let enc = md.get(format!("{k}-encoded")).is_some_and(|v| v == "1" || v == "true");
            let vals = md.get_all(k).into_iter().filter_map(|v| v.to_str().ok());
            vals.map(|v| if enc { unescape(v) } else { v.to_string() }).collect()
        };
        let name = get("dir-name").into_iter().next().unwrap_or_default();
        let root = self.0.get(&name).ok_or_else(|| Status::not_found(format!("no access allowed to dir {name:?}")))?.clone();
        let (mut inc, follow) = (get("include-patterns"), get("followpaths"));
        for p in follow {
            let p = p.trim_start_matches('/').to_string();
            if let Ok(t) = std::fs::read_link(root.join(&p)) {
                let t = Path::new(&p).parent().unwrap_or(Path::new("")).join(t); // absolute targets replace the join
                inc.push(t.to_string_lossy().trim_start_matches('/').to_string());
            }
            inc.push(p);
        }
        let (inc, exc) = (Matcher::new(&inc)?, Matcher::new(&get("exclude-patterns"))?);
        let mut out = Vec::new();
        walk(&root, "", &inc, &exc, &mut Vec::new(), &mut HashMap::new(), &mut out)?;
        let files: HashMap<u32, String> =
            out.iter().enumerate().filter(|(_, s)| s.mode & TYPE_BITS == 0).map(|(i, s)| (i as u32, s.path.clone())).collect();

        let (tx, rx) = mpsc::channel(64);
        let stats_tx = tx.clone();
        tokio::spawn(async move {
            for stat in out.into_iter().map(Some).chain([None]) {
                let p = Packet { r#type: PacketType::PacketStat as i32, stat, ..Default::default() };
                if stats_tx.send(Ok(p)).await.is_err() {
                    return;
                }
            }
        });
        // drain the receiver's requests at once (like fsutil's reader goroutine): h2 (>= 0.4.13)
        // sends GOAWAY "too_many_data_frames" when many small DATA frames sit unread
        let (mut inbound, (in_tx, in_rx)) = (req.into_inner(), mpsc::unbounded_channel());
        tokio::spawn(async move {
            while let Some(p) = inbound.message().await.transpose() {
                if in_tx.send(p).is_err() {
                    break;
                }
            }
        });
        tokio::spawn(async move {
            if let Err(e) = serve_files(root, files, in_rx, &tx).await {
                let _ = tx.send(Err(e)).await;
            }
        });
        Ok(Response::new(ReceiverStream::new(rx)))
    }
    type TarStreamStream = ReceiverStream<Result<Packet, Status>>;
    async fn tar_stream(&self, _: Request<Streaming<Packet>>) -> Result<Response<Self::TarStreamStream>, Status> {
        Err(Status::unimplemented("tarstream"))
    }
}

/// Answer the receiver's file requests until it says FIN.
async fn serve_files(
    root: PathBuf,
    mut files: HashMap<u32, String>,
    mut inbound: mpsc::UnboundedReceiver<Result<Packet, Status>>,
    tx: &Tx,
) -> Result<(), Status> {
    let send = |p: Packet| async { tx.send(Ok(p)).await.map_err(|_| Status::cancelled("receiver gone")) };
    while let Some(p) = inbound.recv().await.transpose()? {
        match PacketType::try_from(p.r#type) {
            Ok(PacketType::PacketReq) => {
                let path = files.remove(&p.id).ok_or_else(|| Status::invalid_argument(format!("invalid file id {}", p.id)))?;
                let mut f = tokio::fs::File::open(root.join(path)).await?;
                let mut buf = vec![0u8; 32 << 10];
                loop {
                    let n = f.read(&mut buf).await?;
                    let data = buf[..n].to_vec();
                    send(Packet { r#type: PacketType::PacketData as i32, id: p.id, data, ..Default::default() }).await?;
                    if n == 0 {
                        break; // the empty DATA packet ends the file
                    }
                }
            }
            Ok(PacketType::PacketFin) => return send(Packet { r#type: PacketType::PacketFin as i32, ..Default::default() }).await,
            Ok(PacketType::PacketErr) => return Err(Status::unknown(format!("error from receiver: {}", String::from_utf8_lossy(&p.data)))),
            _ => {}
        }
    }
    Ok(())
}

// Go os.FileMode bits, as fsutil puts them in Stat.mode.
const MODE_DIR: u32 = 1 << 31;
const MODE_SYMLINK: u32 = 1 << 27;
const MODE_DEVICE: u32 = 1 << 26;
const MODE_PIPE: u32 = 1 << 25;
const MODE_CHAR: u32 = 1 << 21;
const TYPE_BITS: u32 = MODE_DIR | MODE_SYMLINK | MODE_DEVICE | MODE_PIPE | (1 << 24) | MODE_CHAR | (1 << 19);

fn mkstat(root: &Path, path: &str, md: &std::fs::Metadata, seen: &mut HashMap<(u64, u64), String>) -> std::io::Result<Stat> {
    let m = md.mode();
    let mut mode = m & 0o777;
    mode |= match m & 0o170000 {
        0o040000 => MODE_DIR,
        0o120000 => MODE_SYMLINK,
        0o010000 => MODE_PIPE,
        0o060000 => MODE_DEVICE,
        0o020000 => MODE_DEVICE | MODE_CHAR,
        _ => 0, // regular (sockets too: fsutil clears ModeSocket)
    };
    for (unix, go) in [(0o4000, 1 << 23), (0o2000, 1 << 22), (0o1000, 1 << 20)] {
        if m & unix != 0 {
            mode |= go;
        }
    }
    let mod_time = md.mtime() * 1_000_000_000 + md.mtime_nsec();
    let mut st = Stat { path: path.to_string(), mode, uid: md.uid(), gid: md.gid(), mod_time, ..Default::default() };
    if !md.is_dir() {
        if mode & MODE_DEVICE != 0 {
            let rdev = md.rdev();
            (st.devmajor, st.devminor) = (((rdev >> 8) & 0xfff) as i64, ((rdev & 0xff) | ((rdev >> 12) & 0xfff00)) as i64);
        }
        if md.nlink() > 1 {
            match seen.get(&(md.dev(), md.ino())) {
                Some(first) => st.linkname = first.clone(),
                None => drop(seen.insert((md.dev(), md.ino()), path.to_string())),
            }
        }
        st.size = md.size() as i64;
        if mode & MODE_SYMLINK != 0 {
            st.linkname = std::fs::read_link(root.join(path))?.to_string_lossy().into_owned();
        }
    }
    Ok(st)
}

/// Depth-first, names sorted bytewise (Go's filepath.WalkDir order); a directory
/// that is filtered out itself is still sent (lazily, in `pending`) before any
/// entry inside it that passes the filters.
fn walk(
    root: &Path,
    rel: &str,
    inc: &Option<Matcher>,
    exc: &Option<Matcher>,
    pending: &mut Vec<Option<Stat>>,
    seen: &mut HashMap<(u64, u64), String>,
    out: &mut Vec<Stat>,
) -> std::io::Result<()> {
    let mut names = std::fs::read_dir(root.join(rel))?.map(|e| e.map(|e| e.file_name())).collect::<Result<Vec<_>, _>>()?;
    names.sort();
    for name in names {
        let name = name.to_string_lossy();
        let path = if rel.is_empty() { name.into_owned() } else { format!("{rel}/{name}") };
        let md = std::fs::symlink_metadata(root.join(&path))?;
        let skip_inc = inc.as_ref().is_some_and(|m| !m.matches(&path));
        let skip_exc = exc.as_ref().is_some_and(|m| m.matches(&path));
        if md.is_dir() {
            // prune like fsutil: nothing below can come back in
            if skip_exc && !exc.as_ref().unwrap().has_exceptions {
                continue;
            }
            if skip_inc
                && inc.as_ref().unwrap().only_prefix
                && !inc.as_ref().unwrap().pats.iter().any(|p| p.raw.starts_with(&format!("{path}/")))
            {
                continue;
            }
        }
        let stat = if skip_inc || skip_exc {
            if !md.is_dir() {
                continue;
            }
            Some(mkstat(root, &path, &md, seen)?)
        } else {
            out.extend(pending.iter_mut().filter_map(Option::take));
            out.push(mkstat(root, &path, &md, seen)?);
            None
        };
        if md.is_dir() {
            pending.push(stat);
            walk(root, &path, inc, exc, pending, seen, out)?;
            pending.pop();
        }
    }
    Ok(())
}

/// moby/patternmatcher's MatchesOrParentMatches (dockerignore semantics).
struct Matcher {
    pats: Vec<Pat>,
    has_exceptions: bool,
    only_prefix: bool,
}

struct Pat {
    raw: String,
    excl: bool,
    kind: Kind,
}

enum Kind {
    Exact,
    Prefix,
    Suffix,
    Re(regex::Regex),
}

impl Matcher {
    fn new(patterns: &[String]) -> Result<Option<Matcher>, Status> {
        let mut pats = Vec::new();
        for p in patterns.iter().map(|p| p.trim()).filter(|p| !p.is_empty()) {
            let p = clean(p);
            let (excl, p) = match p.strip_prefix('!') {
                Some(rest) => (true, rest.to_string()),
                None => (false, p),
            };
            let kind = compile(&p).map_err(|e| Status::invalid_argument(format!("bad pattern {p:?}: {e}")))?;
            pats.push(Pat { raw: p, excl, kind });
        }
        let has_exceptions = pats.iter().any(|p| p.excl);
        let only_prefix = pats.iter().all(|p| p.excl || !p.raw.trim_end_matches("**").contains(['*', '[', ']', '?', '^', '\\']));
        Ok((!pats.is_empty()).then_some(Matcher { pats, has_exceptions, only_prefix }))
    }

    fn matches(&self, file: &str) -> bool {
        let parts: Vec<&str> = file.split('/').collect();
        let mut matched = false;
        for p in &self.pats {
            if p.excl != matched {
                continue;
            }
            if p.is_match(file) || (1..parts.len()).any(|i| p.is_match(&parts[..i].join("/"))) {
                matched = !p.excl;
            }
        }
        matched
    }
}

impl Pat {
    fn is_match(&self, path: &str) -> bool {
        match &self.kind {
            Kind::Exact => path == self.raw,
            Kind::Prefix => path.starts_with(&self.raw[..self.raw.len() - 2]),
            Kind::Suffix => {
                let suffix = &self.raw[2..];
                path.ends_with(suffix) || suffix.strip_prefix('/') == Some(path)
            }
            Kind::Re(re) => re.is_match(path),
        }
    }
}

/// Port of patternmatcher's Pattern.compile.
fn compile(p: &str) -> Result<Kind, regex::Error> {
    let (mut re, mut kind) = (String::from("^"), 0); // 0 exact, 1 prefix, 2 suffix, 3 regexp
    let mut it = p.chars().peekable();
    let mut first = true;
    while let Some(ch) = it.next() {
        match ch {
            '*' if it.peek() == Some(&'*') => {
                it.next();
                if it.peek() == Some(&'/') {
                    it.next();
                }
                if it.peek().is_none() {
                    if kind == 0 {
                        kind = 1;
                    } else {
                        re += ".*";
                        kind = 3;
                    }
                } else {
                    re += "(.*/)?";
                    kind = 3;
                }
                if first {
                    kind = 2;
                }
            }
            '*' | '?' => {
                re += if ch == '*' { "[^/]*" } else { "[^/]" };
                kind = 3;
            }
            '.' | '+' | '(' | ')' | '|' | '{' | '}' | '$' => re += &format!("\\{ch}"),
            '\\' => match it.next() {
                Some(c) => {
                    re += &format!("\\{c}");
                    kind = 3;
                }
                None => re += "\\\\",
            },
            '[' | ']' => {
                re.push(ch);
                kind = 3;
            }
            c => re.push(c),
        }
        first = false;
    }
    Ok(match kind {
        0 => Kind::Exact,
        1 => Kind::Prefix,
        2 => Kind::Suffix,
        _ => Kind::Re(regex::Regex::new(&(re + "$"))?),
    })
}

/// Go's filepath.Clean for relative slash paths.
fn clean(p: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    for seg in p.split('/') {
        match seg {
            "" | "." => {}
            ".." if out.last().is_some_and(|s| *s != "..") => drop(out.pop()),
            ".." if p.starts_with('/') => {}
            s => out.push(s),
        }
    }
    let s = out.join("/");
    match (p.starts_with('/'), s.is_empty()) {
        (true, _) => format!("/{s}"),
        (false, true) => ".".into(),
        _ => s,
    }
}

/// url.QueryUnescape, for `*-encoded` metadata.
fn unescape(s: &str) -> String {
    let (b, mut out, mut i) = (s.as_bytes(), Vec::new(), 0);
    while i < b.len() {
        match b[i] {
            b'%' if i + 2 < b.len() && b[i + 1].is_ascii_hexdigit() && b[i + 2].is_ascii_hexdigit() => {
                out.push(u8::from_str_radix(&s[i + 1..i + 3], 16).unwrap());
                i += 2;
            }
            b'+' => out.push(b' '),
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    #[test]
    fn dockerignore_semantics() {
        let m = |pats: &[&str], path: &str| {
            super::Matcher::new(&pats.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap().unwrap().matches(path)
        };
        assert!(m(&["data/*.tmp"], "data/a.tmp") && !m(&["data/*.tmp"], "data/sub/a.tmp"));
        assert!(m(&["**/__pycache__"], "a/b/__pycache__/x.pyc") && m(&["**/*.pyc"], "x.pyc"));
        assert!(m(&["data"], "data/x/y") && !m(&["data"], "database"));
        assert!(!m(&["*.md", "!README.md"], "README.md") && m(&["*.md", "!README.md"], "a.md"));
        assert!(m(&["./foo/"], "foo/bar") && m(&["a/**"], "a/b/c") && m(&["[ab]?c"], "bxc"));
    }
}
