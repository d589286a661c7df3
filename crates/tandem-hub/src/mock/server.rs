//! The mock hub server: a thread with its own tokio runtime, so it works the
//! same from sync tests, from any async test runtime, and from the binary.
//!
//! It listens on two ports, as the real hub and its CDN are two hosts: the
//! hub port answers the API and `resolve` (LFS files with a 302 to a signed
//! URL on the CDN port, renamed repos with a 307 to the new name), the CDN
//! port serves file bytes to signed URLs only, and refuses a request that
//! carries a token, as the signed storage URLs of the real CDN do.

use std::collections::BTreeMap;
use std::net::{SocketAddr, TcpListener as StdTcpListener};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use hf_hub::{Repo, RepoType};
use serde_json::json;
use sha1::Sha1;
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;

use super::repo::{Access, MockFile, MockRepo};
use super::wire::{percent_decode, read_request, write_head, Request};

/// Body bytes per write; progress and faults work at this granularity.
const WRITE_CHUNK: usize = 16 * 1024;
/// Entries per page of the tree listing, as on the real hub.
const DEFAULT_TREE_PAGE: usize = 1000;

/// A misbehaviour for the next GET that serves a file's bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Send the full headers, then only this many body bytes, then close.
    DropAfter(u64),
    /// Serve the bytes with one of them flipped (a checksum mismatch).
    Corrupt,
    /// Answer with this status instead (e.g. 500).
    Status(u16),
}

/// How LFS files are redirected to the CDN path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RedirectStyle {
    /// `Location: http://127.0.0.1:PORT/cdn/…` (as the real hub does).
    #[default]
    Absolute,
    /// `Location: /cdn/…`
    Relative,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestKind {
    /// `/api/models/{repo}/revision/{rev}`
    Info,
    /// `/{repo}/resolve/{rev}/{file}`
    Resolve,
    /// `/cdn/…`, where LFS files are redirected (on the CDN port, or on
    /// the hub's own with [`RedirectStyle::Relative`]).
    Cdn,
    /// `/api/models/{repo}/tree/{rev}[/{path}]`, the file listing.
    Tree,
    Other,
}

/// One request as the mock hub saw and answered it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedRequest {
    pub method: String,
    /// Decoded path, without the query.
    pub path: String,
    pub kind: RequestKind,
    pub repo: Option<String>,
    /// The repo file the request is about (resolve requests, whatever
    /// their answer, and CDN requests that found their file).
    pub file: Option<String>,
    /// Start of the `Range` header, when one was sent.
    pub range_start: Option<u64>,
    pub status: u16,
    /// Body bytes actually written (fewer than promised after `DropAfter`).
    pub body_bytes: u64,
    pub authorization: Option<String>,
}

impl RecordedRequest {
    /// A GET that sent (some of) a file's bytes.
    pub fn served_file_bytes(&self) -> bool {
        self.method == "GET" && matches!(self.status, 200 | 206) && self.file.is_some()
    }
}

#[derive(Debug, Default)]
struct State {
    repos: BTreeMap<String, MockRepo>,
    /// Old repo id → current one.
    renames: BTreeMap<String, String>,
    faults: Vec<(String, String, Fault)>,
    requests: Vec<RecordedRequest>,
    throttle_bytes_per_sec: Option<u64>,
    redirects: RedirectStyle,
    /// 0: the hub's own page size.
    tree_page_size: usize,
}

#[derive(Debug)]
struct Shared {
    state: Mutex<State>,
    /// Signs CDN URLs, so only URLs the hub handed out are served.
    signing_key: String,
    hub_url: String,
    cdn_url: String,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panicking test thread must not wedge the server for the others.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn take_fault(&self, repo: &str, file: &str) -> Option<Fault> {
        let mut state = self.lock();
        let index = state
            .faults
            .iter()
            .position(|(r, f, _)| r == repo && f == file)?;
        Some(state.faults.remove(index).2)
    }
}

/// A running mock hub on `127.0.0.1`; stops when dropped (or on
/// [`shutdown`](Self::shutdown)), after which connections are refused.
pub struct MockHub {
    addr: SocketAddr,
    cdn_addr: SocketAddr,
    shared: Arc<Shared>,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl MockHub {
    /// Serves `repos` on a free port of 127.0.0.1.
    pub fn start(repos: impl IntoIterator<Item = MockRepo>) -> std::io::Result<Self> {
        Self::start_on(SocketAddr::from(([127, 0, 0, 1], 0)), repos)
    }

    /// Serves `repos` on `addr` (port 0 picks a free one), with the CDN on
    /// a free port of the same address.
    pub fn start_on(
        addr: SocketAddr,
        repos: impl IntoIterator<Item = MockRepo>,
    ) -> std::io::Result<Self> {
        Self::start_with_cdn(addr, SocketAddr::new(addr.ip(), 0), repos)
    }

    /// Serves `repos` on `addr`, and LFS bytes on `cdn_addr` (port 0 picks a
    /// free one).
    pub fn start_with_cdn(
        addr: SocketAddr,
        cdn_addr: SocketAddr,
        repos: impl IntoIterator<Item = MockRepo>,
    ) -> std::io::Result<Self> {
        // Bound before returning, so the ports are listening once `start` is.
        let listener = StdTcpListener::bind(addr)?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let cdn_listener = StdTcpListener::bind(cdn_addr)?;
        cdn_listener.set_nonblocking(true)?;
        let cdn_addr = cdn_listener.local_addr()?;
        let shared = Arc::new(Shared {
            state: Mutex::default(),
            signing_key: signing_key(addr, cdn_addr),
            hub_url: format!("http://{addr}"),
            cdn_url: format!("http://{cdn_addr}"),
        });
        {
            let mut state = shared.lock();
            for repo in repos {
                state.repos.insert(repo.id.clone(), repo);
            }
        }
        let (stop, stopped) = oneshot::channel();
        let server_shared = shared.clone();
        let thread = std::thread::Builder::new()
            .name(format!("mock-hub-{}", addr.port()))
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("mock hub runtime");
                runtime.block_on(serve(listener, cdn_listener, server_shared, stopped));
            })?;
        Ok(MockHub {
            addr,
            cdn_addr,
            shared,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// `http://127.0.0.1:PORT`, for `HF_ENDPOINT` or `HubClientBuilder::endpoint`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT` of the CDN, where LFS files are redirected.
    pub fn cdn_url(&self) -> String {
        format!("http://{}", self.cdn_addr)
    }

    /// Makes `old_id` a former name of `new_id`: requests for it get a 307
    /// to the same path under the new name, as a renamed repo's do.
    pub fn rename_repo(&self, old_id: &str, new_id: &str) {
        self.shared
            .lock()
            .renames
            .insert(old_id.to_string(), new_id.to_string());
    }

    /// Entries per page of the tree listing (`0`: the hub's 1000), to make
    /// clients follow its `Link: <…>; rel="next"` pages.
    pub fn set_tree_page_size(&self, entries: usize) {
        self.shared.lock().tree_page_size = entries;
    }

    /// Adds or replaces a repo (replacing one with new files moves its commit).
    pub fn add_repo(&self, repo: MockRepo) {
        self.shared.lock().repos.insert(repo.id.clone(), repo);
    }

    pub fn repo(&self, id: &str) -> Option<MockRepo> {
        self.shared.lock().repos.get(id).cloned()
    }

    /// Applies `fault` to the next GET serving `file` of `repo` (once; queue
    /// several to repeat).
    pub fn inject_fault(&self, repo: &str, file: &str, fault: Fault) {
        self.shared
            .lock()
            .faults
            .push((repo.to_string(), file.to_string(), fault));
    }

    /// Limits every file body to about this many bytes per second (`None`:
    /// unlimited), e.g. to watch progress in a UI or to cancel mid-file.
    pub fn set_throttle(&self, bytes_per_sec: Option<u64>) {
        self.shared.lock().throttle_bytes_per_sec = bytes_per_sec;
    }

    pub fn set_redirect_style(&self, style: RedirectStyle) {
        self.shared.lock().redirects = style;
    }

    /// Every request so far, in arrival order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.lock().requests.clone()
    }

    pub fn clear_requests(&self) {
        self.shared.lock().requests.clear();
    }

    /// GETs that sent bytes of `file` (from resolve or the CDN).
    pub fn file_transfers(&self, file: &str) -> Vec<RecordedRequest> {
        self.requests()
            .into_iter()
            .filter(|r| r.served_file_bytes() && r.file.as_deref() == Some(file))
            .collect()
    }

    /// Stops serving and waits for the server thread.
    pub fn shutdown(mut self) {
        self.stop_now();
    }

    /// Blocks until the server stops (for the binary, which runs until killed).
    pub fn join(mut self) {
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }

    fn stop_now(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for MockHub {
    fn drop(&mut self) {
        self.stop_now();
    }
}

/// A key no client can guess, different for every hub.
fn signing_key(addr: SocketAddr, cdn_addr: SocketAddr) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    hex_sha256(format!("{addr}|{cdn_addr}|{nanos}|{}", std::process::id()).as_bytes())
}

fn hex_sha256(bytes: &[u8]) -> String {
    format!("{:x}", Sha256::digest(bytes))
}

/// The signature of a CDN path, as the `X-Amz-Signature` query parameter.
fn sign(key: &str, cdn_path: &str) -> String {
    hex_sha256(format!("{key}\n{cdn_path}").as_bytes())
}

/// Which port a request came in on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Hub,
    Cdn,
}

async fn serve(
    listener: StdTcpListener,
    cdn_listener: StdTcpListener,
    shared: Arc<Shared>,
    mut stopped: oneshot::Receiver<()>,
) {
    let listener = TcpListener::from_std(listener).expect("mock hub listener");
    let cdn_listener = TcpListener::from_std(cdn_listener).expect("mock CDN listener");
    loop {
        let (accepted, side) = tokio::select! {
            _ = &mut stopped => return,
            accepted = listener.accept() => (accepted, Side::Hub),
            accepted = cdn_listener.accept() => (accepted, Side::Cdn),
        };
        if let Ok((stream, _)) = accepted {
            tokio::spawn(handle_connection(stream, shared.clone(), side));
        }
    }
}

/// What to answer.
enum Reply {
    Plain {
        status: u16,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    },
    /// (A range of) a file's bytes.
    Content {
        headers: Vec<(String, String)>,
        repo: String,
        file_name: String,
        file: MockFile,
    },
}

async fn handle_connection(mut stream: TcpStream, shared: Arc<Shared>, side: Side) {
    let Ok(Some(request)) = read_request(&mut stream).await else {
        return;
    };
    let path = percent_decode(&request.path);
    let Routed {
        kind,
        repo,
        file,
        reply,
    } = route(&shared, &request, side);
    let index = {
        let mut state = shared.lock();
        state.requests.push(RecordedRequest {
            method: request.method.clone(),
            path,
            kind,
            repo,
            file,
            range_start: request.byte_range().map(|(start, _)| start),
            status: 0,
            body_bytes: 0,
            authorization: request.header("authorization").map(str::to_string),
        });
        state.requests.len() - 1
    };
    let head_only = request.method == "HEAD";
    // Records are updated before each write, so a client that has read the
    // bytes always finds them recorded.
    let record = |status: Option<u16>, bytes: u64| {
        let mut state = shared.lock();
        let entry = &mut state.requests[index];
        if let Some(status) = status {
            entry.status = status;
        }
        entry.body_bytes += bytes;
    };
    match reply {
        Reply::Plain {
            status,
            mut headers,
            body,
        } => {
            headers.push(("Content-Length".into(), body.len().to_string()));
            record(Some(status), if head_only { 0 } else { body.len() as u64 });
            if write_head(&mut stream, status, &headers).await.is_err() {
                return;
            }
            if !head_only {
                let _ = stream.write_all(&body).await;
            }
        }
        Reply::Content {
            headers,
            repo,
            file_name,
            file,
        } => {
            let fault = if head_only {
                None
            } else {
                shared.take_fault(&repo, &file_name)
            };
            if let Some(Fault::Status(status)) = fault {
                record(Some(status), 0);
                let _ = write_head(
                    &mut stream,
                    status,
                    &[("Content-Length".into(), "0".into())],
                )
                .await;
            } else {
                let throttle = shared.lock().throttle_bytes_per_sec;
                let _ = send_content(
                    &mut stream,
                    &request,
                    headers,
                    &file,
                    fault,
                    throttle,
                    head_only,
                    &record,
                )
                .await;
            }
        }
    }
    let _ = stream.shutdown().await;
}

#[allow(clippy::too_many_arguments)]
async fn send_content(
    stream: &mut TcpStream,
    request: &Request,
    mut headers: Vec<(String, String)>,
    file: &MockFile,
    fault: Option<Fault>,
    throttle: Option<u64>,
    head_only: bool,
    record: &impl Fn(Option<u16>, u64),
) -> std::io::Result<()> {
    let len = file.data.len() as u64;
    let (status, start, end) = match request.byte_range() {
        Some((start, _)) if start >= len && len > 0 => {
            headers.push(("Content-Range".into(), format!("bytes */{len}")));
            headers.push(("Content-Length".into(), "0".into()));
            record(Some(416), 0);
            return write_head(stream, 416, &headers).await;
        }
        Some((start, end)) => {
            let end = end.map_or(len, |end| (end + 1).min(len));
            let last = end.saturating_sub(1);
            headers.push((
                "Content-Range".into(),
                format!("bytes {start}-{last}/{len}"),
            ));
            (206, start, end)
        }
        None => (200, 0, len),
    };
    headers.push(("Content-Length".into(), (end - start).to_string()));
    headers.push(("Accept-Ranges".into(), "bytes".into()));
    record(Some(status), 0);
    write_head(stream, status, &headers).await?;
    if head_only {
        return Ok(());
    }

    let mut body = file.data[start as usize..end as usize].to_vec();
    if fault == Some(Fault::Corrupt) && !body.is_empty() {
        let middle = body.len() / 2;
        body[middle] ^= 0xff;
    }
    let limit = match fault {
        Some(Fault::DropAfter(bytes)) => bytes.min(body.len() as u64) as usize,
        _ => body.len(),
    };
    for chunk in body[..limit].chunks(WRITE_CHUNK) {
        record(None, chunk.len() as u64);
        stream.write_all(chunk).await?;
        if let Some(rate) = throttle.filter(|rate| *rate > 0) {
            tokio::time::sleep(Duration::from_secs_f64(chunk.len() as f64 / rate as f64)).await;
        }
    }
    stream.flush().await
}

/// A request's target as the hub sees it, and the answer.
struct Routed {
    kind: RequestKind,
    repo: Option<String>,
    file: Option<String>,
    reply: Reply,
}

fn route(shared: &Shared, request: &Request, side: Side) -> Routed {
    let routed = |kind, repo: Option<&str>, file: Option<&str>, reply| Routed {
        kind,
        repo: repo.map(str::to_string),
        file: file.map(str::to_string),
        reply,
    };
    if !matches!(request.method.as_str(), "GET" | "HEAD") {
        return routed(RequestKind::Other, None, None, plain(405, &[], Vec::new()));
    }
    let state = shared.lock();
    let path = request.path.as_str();
    if let Some(rest) = path.strip_prefix("/cdn/") {
        let reply = cdn_reply(shared, &state, request, rest, side);
        let (repo, file) = match &reply {
            Reply::Content {
                repo, file_name, ..
            } => (Some(repo.clone()), Some(file_name.clone())),
            Reply::Plain { .. } => (None, None),
        };
        return routed(RequestKind::Cdn, repo.as_deref(), file.as_deref(), reply);
    }
    if side == Side::Cdn {
        // The storage host knows nothing of the hub's API.
        return routed(
            RequestKind::Other,
            None,
            None,
            plain(404, &[], b"not found".to_vec()),
        );
    }
    if let Some(rest) = path.strip_prefix("/api/models/") {
        let Some((raw_repo, endpoint, tail)) = split_api_path(rest) else {
            return routed(RequestKind::Info, None, None, repo_not_found(request));
        };
        let repo_id = decode_segments(raw_repo);
        let kind = if endpoint == "tree" {
            RequestKind::Tree
        } else {
            RequestKind::Info
        };
        let reply = match renamed_to(&state, &repo_id) {
            Some(new_id) => renamed_reply(
                request,
                "/api/models/",
                new_id,
                &format!("/{endpoint}/{tail}"),
            ),
            None if kind == RequestKind::Tree => {
                tree_reply(shared, &state, request, &repo_id, tail)
            }
            None => info_reply(&state, request, &repo_id, tail),
        };
        return routed(kind, Some(&repo_id), None, reply);
    }
    if let Some((raw_repo, rest)) = path.split_once("/resolve/") {
        let repo = decode_segments(raw_repo.trim_start_matches('/'));
        let file = rest.split_once('/').map(|(_, file)| decode_segments(file));
        let reply = match renamed_to(&state, &repo) {
            Some(new_id) => renamed_reply(request, "/", new_id, &format!("/resolve/{rest}")),
            None => resolve_reply(shared, &state, request, &repo, rest),
        };
        return routed(RequestKind::Resolve, Some(&repo), file.as_deref(), reply);
    }
    routed(
        RequestKind::Other,
        None,
        None,
        plain(404, &[], b"not found".to_vec()),
    )
}

/// `{repo}/{revision|tree}/{tail}` → (repo, "revision" or "tree", tail); the
/// repo is `org/name` or a bare `name`.
fn split_api_path(rest: &str) -> Option<(&str, &'static str, &str)> {
    let endpoint_at = |segment: &str| match segment {
        "revision" => Some("revision"),
        "tree" => Some("tree"),
        _ => None,
    };
    let parts: Vec<&str> = rest.splitn(4, '/').collect();
    if let [org, name, segment, tail] = parts.as_slice() {
        if let Some(endpoint) = endpoint_at(segment) {
            let repo_len = org.len() + 1 + name.len();
            return Some((&rest[..repo_len], endpoint, tail));
        }
    }
    let (name, after) = rest.split_once('/')?;
    let (segment, tail) = after.split_once('/')?;
    Some((name, endpoint_at(segment)?, tail))
}

fn decode_segments(path: &str) -> String {
    path.split('/')
        .map(percent_decode)
        .collect::<Vec<_>>()
        .join("/")
}

fn query_param<'a>(request: &'a Request, name: &str) -> Option<&'a str> {
    request
        .query
        .as_deref()?
        .split('&')
        .find_map(|pair| pair.strip_prefix(name)?.strip_prefix('='))
}

fn plain(status: u16, headers: &[(&str, String)], body: Vec<u8>) -> Reply {
    Reply::Plain {
        status,
        headers: headers
            .iter()
            .map(|(name, value)| (name.to_string(), value.clone()))
            .collect(),
        body,
    }
}

/// An error the way the hub sends it: code and message headers plus JSON.
fn hub_error(status: u16, code: &str, message: &str) -> Reply {
    plain(
        status,
        &[
            ("X-Error-Code", code.to_string()),
            ("X-Error-Message", message.to_string()),
            ("Content-Type", "application/json".to_string()),
        ],
        json!({ "error": message }).to_string().into_bytes(),
    )
}

/// An error the way signed-URL storage (S3) sends it.
fn storage_error(status: u16, code: &str, message: &str) -> Reply {
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code><Message>{message}</Message></Error>"
    );
    plain(
        status,
        &[("Content-Type", "application/xml".to_string())],
        body.into_bytes(),
    )
}

/// The hub hides a missing repo behind 401 from anonymous callers.
fn repo_not_found(request: &Request) -> Reply {
    let status = if request.header("authorization").is_some() {
        404
    } else {
        401
    };
    hub_error(status, "RepoNotFound", "Repository not found")
}

fn revision_matches(repo: &MockRepo, revision: &str) -> bool {
    revision == "main" || revision == repo.commit()
}

/// The current id of a repo asked for by a former name.
fn renamed_to<'a>(state: &'a State, repo_id: &str) -> Option<&'a str> {
    if state.repos.contains_key(repo_id) {
        return None;
    }
    state.renames.get(repo_id).map(String::as_str)
}

/// The hub's answer to a renamed repo's old name: 307 to the same path and
/// query under the new name, as a relative `Location`.
fn renamed_reply(request: &Request, prefix: &str, new_id: &str, suffix: &str) -> Reply {
    let query = request
        .query
        .as_deref()
        .map(|query| format!("?{query}"))
        .unwrap_or_default();
    plain(
        307,
        &[("Location", format!("{prefix}{new_id}{suffix}{query}"))],
        Vec::new(),
    )
}

fn info_reply(state: &State, request: &Request, repo_id: &str, raw_revision: &str) -> Reply {
    let revision = percent_decode(raw_revision);
    let Some(repo) = state.repos.get(repo_id) else {
        return repo_not_found(request);
    };
    if !revision_matches(repo, &revision) {
        return hub_error(404, "RevisionNotFound", "Invalid rev id");
    }
    let with_blobs = request
        .query
        .as_deref()
        .is_some_and(|q| q.split('&').any(|pair| pair == "blobs=true"));
    let siblings: Vec<_> = repo
        .files
        .iter()
        .map(|(name, file)| {
            if !with_blobs {
                return json!({ "rfilename": name });
            }
            let mut sibling = json!({
                "rfilename": name,
                "size": file.data.len(),
                "blobId": if file.lfs { file.pointer_git_sha1() } else { file.git_sha1.clone() },
            });
            if file.lfs {
                sibling["lfs"] = json!({
                    "sha256": file.sha256,
                    "size": file.data.len(),
                    "pointerSize": file.pointer_text().len(),
                });
            }
            sibling
        })
        .collect();
    let gated = match repo.access {
        Access::Public => json!(false),
        Access::Gated { .. } => json!("manual"),
    };
    let body = json!({
        "_id": repo.commit().chars().take(24).collect::<String>(),
        "id": repo.id,
        "modelId": repo.id,
        "sha": repo.commit(),
        "private": false,
        "gated": gated,
        "siblings": siblings,
    });
    plain(
        200,
        &[("Content-Type", "application/json".to_string())],
        body.to_string().into_bytes(),
    )
}

/// `GET /api/models/{repo}/tree/{rev}[/{path}]?recursive=…&cursor=…`: the
/// files (and folders) under `path`, a page at a time with a `Link` header
/// to the next page, as the hub lists them (public even for gated repos).
fn tree_reply(
    shared: &Shared,
    state: &State,
    request: &Request,
    repo_id: &str,
    tail: &str,
) -> Reply {
    let Some(repo) = state.repos.get(repo_id) else {
        return repo_not_found(request);
    };
    let (raw_revision, raw_dir) = tail.split_once('/').unwrap_or((tail, ""));
    if !revision_matches(repo, &percent_decode(raw_revision)) {
        return hub_error(404, "RevisionNotFound", "Invalid rev id");
    }
    let dir = decode_segments(raw_dir.trim_matches('/'));
    let recursive = query_param(request, "recursive")
        .is_some_and(|value| matches!(value, "true" | "True" | "1"));
    let cursor: usize = query_param(request, "cursor")
        .and_then(|value| value.parse().ok())
        .unwrap_or(0);

    let mut entries: BTreeMap<String, serde_json::Value> = BTreeMap::new();
    let folder = |path: &str| {
        json!({
            "type": "directory",
            "oid": format!("{:x}", Sha1::digest(format!("tree {path}").as_bytes())),
            "size": 0,
            "path": path,
        })
    };
    for (name, file) in &repo.files {
        let relative = if dir.is_empty() {
            name.as_str()
        } else {
            match name.strip_prefix(&format!("{dir}/")) {
                Some(relative) => relative,
                None => continue,
            }
        };
        let base = name.len() - relative.len();
        // Folders between `dir` and the file.
        for (at, _) in relative.match_indices('/') {
            let folder_path = &name[..base + at];
            entries.insert(folder_path.to_string(), folder(folder_path));
            if !recursive {
                break;
            }
        }
        if !recursive && relative.contains('/') {
            continue;
        }
        let mut entry = json!({
            "type": "file",
            "oid": if file.lfs { file.pointer_git_sha1() } else { file.git_sha1.clone() },
            "size": file.data.len(),
            "path": name,
        });
        if file.lfs {
            entry["lfs"] = json!({
                "oid": file.sha256,
                "size": file.data.len(),
                "pointerSize": file.pointer_text().len(),
            });
        }
        entries.insert(name.clone(), entry);
    }

    let page_size = match state.tree_page_size {
        0 => DEFAULT_TREE_PAGE,
        size => size,
    };
    let page: Vec<_> = entries
        .into_values()
        .skip(cursor)
        .take(page_size + 1)
        .collect();
    let mut headers = vec![("Content-Type", "application/json".to_string())];
    let more = page.len() > page_size;
    if more {
        let dir_part = if dir.is_empty() {
            String::new()
        } else {
            format!("/{raw_dir}")
        };
        headers.push((
            "Link",
            format!(
                "<{}/api/models/{repo_id}/tree/{raw_revision}{dir_part}?recursive={recursive}&expand=false&cursor={}>; rel=\"next\"",
                shared.hub_url,
                cursor + page_size
            ),
        ));
    }
    let page = &page[..page.len().min(page_size)];
    plain(200, &headers, serde_json::to_vec(page).expect("JSON"))
}

fn resolve_reply(
    shared: &Shared,
    state: &State,
    request: &Request,
    repo_id: &str,
    rest: &str,
) -> Reply {
    let Some(repo) = state.repos.get(repo_id) else {
        return repo_not_found(request);
    };
    if let Access::Gated { granted_token } = &repo.access {
        let sent = request.header("authorization");
        let granted = granted_token
            .as_ref()
            .is_some_and(|token| sent == Some(format!("Bearer {token}").as_str()));
        if !granted {
            let status = if sent.is_some() { 403 } else { 401 };
            let message = format!(
                "Access to model {repo_id} is restricted. You must have access to it and be authenticated to access it. Please log in."
            );
            return hub_error(status, "GatedRepo", &message);
        }
    }
    let (revision, file_path) = rest.split_once('/').unwrap_or((rest, ""));
    let revision = percent_decode(revision);
    if !revision_matches(repo, &revision) {
        return hub_error(404, "RevisionNotFound", "Invalid rev id");
    }
    let file_name = decode_segments(file_path);
    let commit = repo.commit();
    let Some(file) = repo.files.get(&file_name) else {
        return plain(
            404,
            &[
                ("X-Error-Code", "EntryNotFound".to_string()),
                ("X-Error-Message", format!("{file_name} does not exist")),
                ("X-Repo-Commit", commit),
                ("Content-Type", "application/json".to_string()),
            ],
            json!({ "error": format!("{file_name} does not exist") })
                .to_string()
                .into_bytes(),
        );
    };
    if file.lfs {
        // A signed URL on the storage host; HEAD answers this redirect
        // itself, with the file's metadata, and does not follow it.
        let folder = Repo::new(repo_id.to_string(), RepoType::Model).folder_name();
        let cdn_path = format!("/cdn/{folder}/{}", file.sha256);
        let query = format!(
            "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Expires=3600&X-Amz-Signature={}",
            sign(&shared.signing_key, &cdn_path)
        );
        let location = match state.redirects {
            RedirectStyle::Absolute => format!("{}{cdn_path}?{query}", shared.cdn_url),
            RedirectStyle::Relative => format!("{cdn_path}?{query}"),
        };
        return plain(
            302,
            &[
                ("Location", location),
                ("X-Repo-Commit", commit),
                ("X-Linked-Etag", format!("\"{}\"", file.sha256)),
                ("X-Linked-Size", file.data.len().to_string()),
                ("ETag", format!("\"{}\"", file.pointer_git_sha1())),
            ],
            Vec::new(),
        );
    }
    Reply::Content {
        headers: vec![
            ("ETag".into(), format!("\"{}\"", file.git_sha1)),
            ("X-Repo-Commit".into(), commit),
        ],
        repo: repo_id.to_string(),
        file_name,
        file: file.clone(),
    }
}

/// `/cdn/models--{org}--{name}/{sha256}?…X-Amz-Signature=…`: LFS contents
/// for a URL the hub signed. On the CDN port a request that also carries a
/// token is refused, as signed storage URLs are: the token must not leave
/// the hub.
fn cdn_reply(shared: &Shared, state: &State, request: &Request, rest: &str, side: Side) -> Reply {
    if side == Side::Cdn && request.header("authorization").is_some() {
        return storage_error(
            400,
            "InvalidArgument",
            "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, \
             Signature query string parameter or the Authorization header should be specified",
        );
    }
    let cdn_path = format!("/cdn/{rest}");
    if query_param(request, "X-Amz-Signature")
        != Some(sign(&shared.signing_key, &cdn_path).as_str())
    {
        return storage_error(
            403,
            "SignatureDoesNotMatch",
            "The request signature we calculated does not match the signature you provided.",
        );
    }
    let mut parts = rest.splitn(2, '/');
    let folder = parts.next().unwrap_or_default();
    let sha256 = parts.next().unwrap_or_default();
    for repo in state.repos.values() {
        if Repo::new(repo.id.clone(), RepoType::Model).folder_name() != folder {
            continue;
        }
        if let Some((name, file)) = repo.files.iter().find(|(_, f)| f.sha256 == sha256) {
            return Reply::Content {
                headers: vec![("ETag".into(), format!("\"{}\"", file.sha256))],
                repo: repo.id.clone(),
                file_name: name.clone(),
                file: file.clone(),
            };
        }
    }
    storage_error(404, "NoSuchKey", "The specified key does not exist.")
}
