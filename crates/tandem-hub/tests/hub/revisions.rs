//! Revisions, ref files and etags become paths in the cache: none of them
//! may lead outside it, whoever wrote them.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::{Arc, Mutex};

use tandem_hub::{DownloadOptions, HubError};

use crate::fixtures::*;

const COMMIT: &str = "0123456789abcdef0123456789abcdef01234567";

/// What a snapshot folder needs to count as a complete model.
fn write_complete_model(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    for file in [
        "config.json",
        "tokenizer.json",
        "tokenizer_config.json",
        "model.safetensors",
    ] {
        std::fs::write(dir.join(file), b"{}").unwrap();
    }
}

#[tokio::test]
async fn revisions_that_would_leave_refs_never_reach_the_hub_or_the_disk() {
    let setup = Setup::new();
    let online = setup.client();
    for bad in [
        "../../x",
        "/etc/passwd",
        "main/../../x",
        "a b",
        "x.lock",
        "",
    ] {
        let err = online
            .download_model(SINGLE, DownloadOptions::new().revision(bad))
            .await
            .unwrap_err();
        assert!(
            err.to_string().contains("invalid revision"),
            "{bad:?}: {err}"
        );
    }
    assert!(
        setup.hub.requests().is_empty(),
        "{:?}",
        setup.hub.requests()
    );

    // Offline, `refs/../../../escape` is a file outside the cache that names
    // a complete snapshot: it must not be read.
    let hub_cache = setup.cache_dir();
    std::fs::create_dir_all(&hub_cache).unwrap();
    std::fs::write(hub_cache.parent().unwrap().join("escape"), COMMIT).unwrap();
    write_complete_model(&setup.repo_dir(SINGLE).join("snapshots").join(COMMIT));
    let offline = setup.builder().offline(true).build().unwrap();
    let err = offline
        .download_model(SINGLE, DownloadOptions::new().revision("../../../escape"))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("invalid revision"), "{err}");
}

#[tokio::test]
async fn a_ref_that_holds_a_path_is_refused() {
    let setup = Setup::new();
    let repo_dir = setup.repo_dir(SINGLE);
    // refs/main names a folder outside the cache, with a whole model in it.
    std::fs::create_dir_all(repo_dir.join("refs")).unwrap();
    std::fs::write(repo_dir.join("refs/main"), "../../../outside").unwrap();
    write_complete_model(&setup.cache_dir().parent().unwrap().join("outside"));

    let offline = setup.builder().offline(true).build().unwrap();
    let err = offline
        .download_model(SINGLE, DownloadOptions::new())
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("not a commit hash") && text.contains("refs/main"),
        "{text}"
    );
}

/// A hub that answers every file with `etag` (and `{}` as content).
struct OddEtagHub {
    url: String,
    etag: Arc<Mutex<String>>,
}

impl OddEtagHub {
    fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let etag = Arc::new(Mutex::new(String::new()));
        let served = etag.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let _ = answer(stream, &served.lock().unwrap());
            }
        });
        OddEtagHub { url, etag }
    }
}

fn answer(mut stream: TcpStream, etag: &str) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 || line == "\r\n" {
            break;
        }
    }
    let (head, body) = if request_line.contains("/api/models/") {
        let siblings: Vec<_> = ["config.json", "tokenizer.json", "tokenizer_config.json"]
            .iter()
            .map(|name| serde_json::json!({"rfilename": name, "size": 2}))
            .collect();
        let info = serde_json::json!({"sha": COMMIT, "siblings": siblings});
        (
            "Content-Type: application/json\r\n".to_string(),
            info.to_string(),
        )
    } else {
        (
            format!("ETag: \"{etag}\"\r\nX-Repo-Commit: {COMMIT}\r\n"),
            "{}".to_string(),
        )
    };
    let body = if request_line.starts_with("HEAD") {
        String::new()
    } else {
        body
    };
    let length = if request_line.starts_with("HEAD") {
        2
    } else {
        body.len()
    };
    write!(
        stream,
        "HTTP/1.1 200 OK\r\n{head}Content-Length: {length}\r\nConnection: close\r\n\r\n{body}"
    )
}

#[tokio::test]
async fn etags_that_cannot_name_a_blob_are_refused() {
    let hub = OddEtagHub::start();
    let home = tempfile::tempdir().unwrap();
    let client = builder_for(&hub.url, home.path()).build().unwrap();
    let long = "e".repeat(129);
    for etag in ["a:b", "a b", "a.b", long.as_str()] {
        *hub.etag.lock().unwrap() = etag.to_string();
        let err = client
            .fetch_config_files("o/m", DownloadOptions::new())
            .await
            .unwrap_err();
        assert!(
            matches!(&err, HubError::Protocol { reason, .. } if reason.contains("cannot name a blob")),
            "{etag:?}: {err}"
        );
    }
    // Nothing was written under an odd name.
    let blobs = home
        .path()
        .join(".cache/huggingface/hub/models--o--m/blobs");
    let names: Vec<_> = std::fs::read_dir(&blobs)
        .map(|entries| entries.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(names.is_empty(), "{names:?}");
}
