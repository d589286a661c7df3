//! Hugging Face's own Python client (`huggingface_hub`) against the mock hub
//! and against caches Tandem wrote, so that neither the mock nor the cache
//! layout rests on our own reading of the protocol: it must download the
//! same bytes into the same layout Tandem writes, Tandem must reuse a cache
//! it wrote without downloading again, and it must read one Tandem wrote.
//!
//! The interpreter is `TANDEM_HF_PYTHON` (scripts/test.sh makes a venv with
//! a pinned `huggingface_hub`); without it these tests skip, unless
//! `TANDEM_REQUIRE_MODELS=1` (CI), where they fail.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use tandem_hub::mock::{MockHub, RequestKind};
use tandem_hub::{DownloadOptions, HubClientBuilder, ModelSnapshot};

use crate::fixtures::*;

/// A former name of [`SINGLE`]: the hub answers it with 307 redirects.
const RENAMED: &str = "tiny/old-llama";

fn hf_python() -> Option<PathBuf> {
    if let Some(python) = std::env::var_os("TANDEM_HF_PYTHON") {
        return Some(python.into());
    }
    let reason = "TANDEM_HF_PYTHON is not set (a Python with huggingface_hub installed; \
                  scripts/test.sh makes one)";
    if std::env::var("TANDEM_REQUIRE_MODELS").is_ok_and(|v| v == "1") {
        panic!("TANDEM_REQUIRE_MODELS=1 but {reason}");
    }
    eprintln!("skipping the huggingface_hub tests: {reason}");
    None
}

/// Runs tests/hf_client.py with `spec` against `endpoint` and `cache`.
fn run_hf_client(python: &Path, endpoint: &str, home: &Path, cache: &Path, spec: Value) -> Value {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/hf_client.py");
    let mut command = Command::new(python);
    command.arg(&script).arg(spec.to_string());
    // Nothing from the person's own Hugging Face set-up may leak in.
    for name in [
        "HF_TOKEN",
        "HUGGING_FACE_HUB_TOKEN",
        "HF_HUB_OFFLINE",
        "HF_HUB_DISABLE_XET",
        "HF_HUB_ENABLE_HF_TRANSFER",
        "HF_XET_HIGH_PERFORMANCE",
    ] {
        command.env_remove(name);
    }
    let output = command
        .env("HF_ENDPOINT", endpoint)
        .env("HF_HOME", home.join("hf-home"))
        .env("HF_HUB_CACHE", cache)
        .env("HF_HUB_DISABLE_TELEMETRY", "1")
        .env("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        .env("NO_PROXY", "127.0.0.1,localhost")
        .env("no_proxy", "127.0.0.1,localhost")
        .output()
        .unwrap_or_else(|err| panic!("cannot run {}: {err}", python.display()));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "huggingface_hub failed ({}):\n{stdout}\n{stderr}",
        output.status
    );
    let last_line = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(last_line)
        .unwrap_or_else(|err| panic!("unexpected output ({err}):\n{stdout}\n{stderr}"))
}

fn sha256_hex(bytes: &[u8]) -> String {
    format!("{:x}", Sha256::digest(bytes))
}

/// What the Python client and Tandem fetch: each repo with the files Tandem
/// needs (the Python side fetches the whole snapshot as well).
fn fetched_repos() -> Vec<(&'static str, Option<&'static str>)> {
    vec![
        (SINGLE, None),
        (RENAMED, None),
        (GATED, Some(GRANTED_TOKEN)),
    ]
}

fn spec(local_only: bool, snapshots: &BTreeMap<&str, ModelSnapshot>) -> Value {
    let requests: Vec<Value> = fetched_repos()
        .into_iter()
        .map(|(repo, token)| json!({"repo": repo, "token": token, "files": snapshots[repo].files}))
        .collect();
    json!({"local_only": local_only, "requests": requests})
}

fn mock_hub() -> MockHub {
    let hub = MockHub::start(all_repos()).unwrap();
    hub.rename_repo(RENAMED, SINGLE);
    // Small pages, so the client has to follow the listing's Link header.
    hub.set_tree_page_size(3);
    hub
}

async fn tandem_download_all(endpoint: &str, home: &Path) -> BTreeMap<&'static str, ModelSnapshot> {
    let mut snapshots = BTreeMap::new();
    for (repo, token) in fetched_repos() {
        let mut builder = builder_for(endpoint, home);
        if let Some(token) = token {
            builder = builder.token(token);
        }
        let snapshot = builder
            .build()
            .unwrap()
            .download_model(repo, DownloadOptions::new())
            .await
            .unwrap();
        snapshots.insert(repo, snapshot);
    }
    snapshots
}

fn cache_of(home: &Path) -> PathBuf {
    home.join(".cache/huggingface/hub")
}

fn repo_folder(cache: &Path, repo: &str) -> PathBuf {
    cache.join(format!("models--{}", repo.replace('/', "--")))
}

/// The data the mock serves for `file` of `repo` (a renamed repo's are its
/// new name's).
fn served(repo: &str, file: &str) -> Vec<u8> {
    let id = if repo == RENAMED { SINGLE } else { repo };
    let fixture = all_repos().into_iter().find(|r| r.id() == id).unwrap();
    fixture.data(file).unwrap().to_vec()
}

#[tokio::test]
async fn huggingface_hub_downloads_what_tandem_downloads_and_tandem_reuses_its_cache() {
    let Some(python) = hf_python() else {
        return;
    };
    let hub = mock_hub();
    let tandem_home = tempfile::tempdir().unwrap();
    let python_home = tempfile::tempdir().unwrap();
    let snapshots = tandem_download_all(&hub.url(), tandem_home.path()).await;
    hub.clear_requests();

    let python_cache = cache_of(python_home.path());
    let output = run_hf_client(
        &python,
        &hub.url(),
        python_home.path(),
        &python_cache,
        spec(false, &snapshots),
    );
    eprintln!("huggingface_hub {}", output["version"]);

    let requests = hub.requests();
    // The token went to the hub only, never to the storage host.
    assert!(requests
        .iter()
        .filter(|r| r.kind == RequestKind::Cdn)
        .all(|r| r.authorization.is_none()));
    assert!(requests
        .iter()
        .any(|r| r.kind == RequestKind::Cdn && r.status == 200));
    assert!(
        requests.iter().any(|r| r.status == 307),
        "no renamed-repo redirect"
    );
    let tree_pages = requests
        .iter()
        .filter(|r| r.kind == RequestKind::Tree && r.repo.as_deref() == Some(SINGLE))
        .count();
    assert!(tree_pages > 1, "the tree listing's pages were not followed");

    let tandem_cache = cache_of(tandem_home.path());
    for (result, (repo, _)) in output["results"]
        .as_array()
        .unwrap()
        .iter()
        .zip(fetched_repos())
    {
        let snapshot = &snapshots[repo];
        let ours = repo_folder(&tandem_cache, repo);
        let theirs = repo_folder(&python_cache, repo);
        assert_eq!(
            PathBuf::from(result["snapshot"].as_str().unwrap()),
            theirs.join("snapshots").join(&snapshot.commit),
            "{repo}"
        );
        assert_eq!(
            std::fs::read_to_string(theirs.join("refs/main")).unwrap(),
            std::fs::read_to_string(ours.join("refs/main")).unwrap(),
            "{repo}"
        );
        for file in &snapshot.files {
            let data = served(repo, file);
            let entry = &result["files"][file];
            assert_eq!(entry["sha256"], sha256_hex(&data), "{repo} {file}");
            let pointer =
                |folder: &Path| folder.join("snapshots").join(&snapshot.commit).join(file);
            // Same symlink to the same blob name, same bytes.
            #[cfg(unix)]
            assert_eq!(
                std::fs::read_link(pointer(&theirs)).unwrap(),
                std::fs::read_link(pointer(&ours)).unwrap(),
                "{repo} {file}"
            );
            assert!(
                std::fs::read(pointer(&theirs)).unwrap() == data,
                "{repo} {file}"
            );
            assert!(
                std::fs::read(pointer(&ours)).unwrap() == data,
                "{repo} {file}"
            );
        }
    }

    // Tandem on the cache the Python client wrote: nothing downloaded again.
    hub.clear_requests();
    for (repo, token) in fetched_repos() {
        let mut builder = HubClientBuilder::with_env(tandem_hub::HubEnv::resolve(
            |_| None,
            Some(python_home.path()),
        ))
        .endpoint(hub.url());
        if let Some(token) = token {
            builder = builder.token(token);
        }
        let reused = builder
            .build()
            .unwrap()
            .download_model(repo, DownloadOptions::new())
            .await
            .unwrap();
        assert_eq!(reused.downloaded_bytes, 0, "{repo}");
        assert_eq!(reused.commit, snapshots[repo].commit, "{repo}");
        assert_eq!(reused.files, snapshots[repo].files, "{repo}");
    }
    let fetched: Vec<_> = hub
        .requests()
        .into_iter()
        .filter(|r| r.kind != RequestKind::Info)
        .collect();
    assert!(fetched.is_empty(), "{fetched:?}");
}

#[tokio::test]
async fn huggingface_hub_reads_a_cache_tandem_wrote_offline() {
    let Some(python) = hf_python() else {
        return;
    };
    let hub = mock_hub();
    let endpoint = hub.url();
    let home = tempfile::tempdir().unwrap();
    let snapshots = tandem_download_all(&endpoint, home.path()).await;
    // No hub at all: everything must come from Tandem's cache.
    drop(hub);

    let cache = cache_of(home.path());
    let output = run_hf_client(
        &python,
        &endpoint,
        home.path(),
        &cache,
        spec(true, &snapshots),
    );
    for (result, (repo, _)) in output["results"]
        .as_array()
        .unwrap()
        .iter()
        .zip(fetched_repos())
    {
        let snapshot = &snapshots[repo];
        assert_eq!(
            PathBuf::from(result["snapshot"].as_str().unwrap()),
            snapshot.dir,
            "{repo}"
        );
        for file in &snapshot.files {
            let entry = &result["files"][file];
            assert_eq!(
                PathBuf::from(entry["path"].as_str().unwrap()),
                snapshot.path(file)
            );
            assert_eq!(
                entry["sha256"],
                sha256_hex(&served(repo, file)),
                "{repo} {file}"
            );
        }
    }
}
