//! Full downloads: the HF cache layout, progress events, sharded weights.

use std::path::PathBuf;

use tandem_hub::mock::{RedirectStyle, RequestKind};
use tandem_hub::{DownloadEvent, DownloadOptions, HubClientBuilder, HubEnv};

use crate::fixtures::*;

const EXPECTED_SINGLE_FILES: [&str; 6] = [
    "config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "generation_config.json",
    "chat_template.jinja",
    "model.safetensors",
];

#[tokio::test]
async fn full_download_lays_out_the_hf_cache() {
    let setup = Setup::new();
    let repo = single_repo();
    let commit = repo.commit();

    let snapshot = setup
        .client()
        .download_model(SINGLE, DownloadOptions::new())
        .await
        .unwrap();

    let dir = setup.repo_dir(SINGLE);
    assert_eq!(snapshot.commit, commit);
    assert_eq!(snapshot.dir, dir.join("snapshots").join(&commit));
    assert_eq!(snapshot.files, EXPECTED_SINGLE_FILES);
    assert_eq!(snapshot.weight_files(), vec![snapshot.dir.join(WEIGHTS)]);
    assert!(!snapshot.from_cache_only);
    assert_eq!(
        std::fs::read_to_string(dir.join("refs/main")).unwrap(),
        commit
    );

    for file in EXPECTED_SINGLE_FILES {
        let etag = repo.etag(file).unwrap();
        // LFS blobs are named by sha256, git-stored ones by git blob sha1.
        assert_eq!(
            etag.len(),
            if repo.is_lfs(file) { 64 } else { 40 },
            "{file}"
        );
        let blob = dir.join("blobs").join(&etag);
        assert_eq!(
            std::fs::read(&blob).unwrap(),
            repo.data(file).unwrap(),
            "{file}"
        );
        let pointer = snapshot.path(file);
        #[cfg(unix)]
        assert_eq!(
            std::fs::read_link(&pointer).unwrap(),
            PathBuf::from("../../blobs").join(&etag),
            "{file}"
        );
        assert_eq!(std::fs::read(&pointer).unwrap(), repo.data(file).unwrap());
    }
    let blobs: Vec<String> = std::fs::read_dir(dir.join("blobs"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(blobs.len(), EXPECTED_SINGLE_FILES.len(), "{blobs:?}");
    assert!(!blobs.iter().any(|b| b.ends_with(".incomplete")));
    assert!(!snapshot.dir.join("pytorch_model.bin").exists());
    assert!(!snapshot.dir.join("README.md").exists());

    // Only needed files were transferred, and never the pickle weights.
    let requests = setup.hub.requests();
    assert!(requests
        .iter()
        .all(|r| r.file.as_deref() != Some("pytorch_model.bin")));
    assert_eq!(setup.hub.file_transfers(WEIGHTS).len(), 1);
    // The weights came from the CDN path after the hub's redirect.
    assert_eq!(setup.hub.file_transfers(WEIGHTS)[0].kind, RequestKind::Cdn);
}

#[tokio::test]
async fn progress_events_are_monotonic_with_right_totals() {
    let setup = Setup::new();
    let repo = single_repo();
    let (options, events) = collecting();
    setup
        .client()
        .download_model(SINGLE, options)
        .await
        .unwrap();
    let events = taken(&events);

    let expected_total: u64 = EXPECTED_SINGLE_FILES
        .iter()
        .map(|f| repo.size(f).unwrap())
        .sum();
    let DownloadEvent::Started {
        files,
        total_bytes,
        cached_bytes,
        commit,
        ..
    } = &events[0]
    else {
        panic!("first event is {:?}", events[0]);
    };
    assert_eq!(*total_bytes, expected_total);
    assert_eq!(*cached_bytes, 0);
    assert_eq!(commit, &repo.commit());
    assert_eq!(files.len(), EXPECTED_SINGLE_FILES.len());
    assert!(
        matches!(events.last(), Some(DownloadEvent::Done { downloaded_bytes, .. }) if *downloaded_bytes == expected_total)
    );

    let mut last_done = 0;
    let mut last_file_done = std::collections::HashMap::new();
    let mut progress_count = 0;
    for event in &events {
        if let DownloadEvent::Progress {
            file,
            file_done,
            file_total,
            done,
            total,
            ..
        } = event
        {
            progress_count += 1;
            assert_eq!(*total, expected_total);
            assert!(*done >= last_done, "overall progress went back");
            assert!(done <= total && file_done <= file_total);
            let previous = last_file_done.insert(file.clone(), *file_done).unwrap_or(0);
            assert!(*file_done >= previous, "{file} went back");
            assert_eq!(*file_total, repo.size(file).unwrap());
            last_done = *done;
        }
    }
    assert!(
        progress_count > EXPECTED_SINGLE_FILES.len(),
        "{progress_count}"
    );
    assert_eq!(last_done, expected_total);
    for file in EXPECTED_SINGLE_FILES {
        assert_eq!(last_file_done[file], repo.size(file).unwrap(), "{file}");
        assert!(events
            .iter()
            .any(|e| matches!(e, DownloadEvent::FileDone { file: f, .. } if f == file)));
    }
    // Forwardable to a UI as JSON.
    let json = serde_json::to_value(&events[1]).unwrap();
    assert!(json.get("type").is_some(), "{json}");
}

#[tokio::test]
async fn sharded_weights_follow_the_index() {
    let setup = Setup::new();
    let repo = sharded_repo();
    let (options, events) = collecting();
    let snapshot = setup
        .client()
        .download_model(SHARDED, options)
        .await
        .unwrap();

    let mut expected = vec![
        "config.json",
        "tokenizer.json",
        "tokenizer_config.json",
        "model.safetensors.index.json",
    ];
    expected.extend(SHARDS);
    assert_eq!(snapshot.files, expected);
    assert_eq!(snapshot.weight_files().len(), 3);
    for shard in SHARDS {
        assert_eq!(
            std::fs::read(snapshot.path(shard)).unwrap(),
            repo.data(shard).unwrap()
        );
    }
    assert!(!snapshot.dir.join("model-extra.safetensors").exists());
    assert!(setup
        .hub
        .file_transfers("model-extra.safetensors")
        .is_empty());
    let started_files = taken(&events)
        .into_iter()
        .find_map(|e| match e {
            DownloadEvent::Started { files, .. } => Some(files),
            _ => None,
        })
        .unwrap();
    assert_eq!(started_files.len(), expected.len());
}

#[tokio::test]
async fn relative_redirects_are_followed() {
    let setup = Setup::new();
    setup.hub.set_redirect_style(RedirectStyle::Relative);
    let snapshot = setup
        .client()
        .download_model(SINGLE, DownloadOptions::new())
        .await
        .unwrap();
    assert_eq!(
        std::fs::read(snapshot.path(WEIGHTS)).unwrap(),
        single_repo().data(WEIGHTS).unwrap()
    );
}

#[tokio::test]
async fn endpoint_cache_and_token_come_from_hf_variables() {
    let setup = Setup::new();
    let hf_home = setup.home.path().join("custom-hf-home");
    std::fs::create_dir_all(&hf_home).unwrap();
    // As `huggingface-cli login` leaves it.
    std::fs::write(hf_home.join("token"), format!("{GRANTED_TOKEN}\n")).unwrap();
    let vars = [
        ("HF_ENDPOINT".to_string(), setup.hub.url()),
        (
            "HF_HOME".to_string(),
            hf_home.to_string_lossy().into_owned(),
        ),
    ];
    let env = HubEnv::resolve(
        |name| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()),
        Some(setup.home.path()),
    );
    let client = HubClientBuilder::with_env(env).build().unwrap();
    assert_eq!(client.endpoint(), setup.hub.url());
    assert_eq!(client.cache_dir(), hf_home.join("hub"));

    let snapshot = client
        .download_model(GATED, DownloadOptions::new())
        .await
        .unwrap();
    assert!(snapshot
        .dir
        .starts_with(hf_home.join("hub/models--tiny--gated")));
    let auth: Vec<_> = setup
        .hub
        .requests()
        .into_iter()
        .filter(|r| r.kind == RequestKind::Resolve)
        .map(|r| r.authorization)
        .collect();
    assert!(!auth.is_empty());
    assert!(auth
        .iter()
        .all(|a| a.as_deref() == Some("Bearer hf_granted")));
}

#[tokio::test]
async fn fetch_config_files_skips_weights_and_a_later_download_reuses_them() {
    let setup = Setup::new();
    let client = setup.client();
    let snapshot = client
        .fetch_config_files(SINGLE, DownloadOptions::new())
        .await
        .unwrap();
    assert_eq!(snapshot.files, EXPECTED_SINGLE_FILES[..5]);
    assert!(snapshot.path("chat_template.jinja").exists());
    assert!(!snapshot.path(WEIGHTS).exists());
    assert!(setup.hub.file_transfers(WEIGHTS).is_empty());

    setup.hub.clear_requests();
    let full = client
        .download_model(SINGLE, DownloadOptions::new())
        .await
        .unwrap();
    assert_eq!(full.files, EXPECTED_SINGLE_FILES);
    let transferred: Vec<String> = setup
        .hub
        .requests()
        .into_iter()
        .filter(|r| r.served_file_bytes())
        .filter_map(|r| r.file)
        .collect();
    assert_eq!(transferred, vec![WEIGHTS.to_string()]);
}

#[test]
fn blocking_client_downloads() {
    let setup = Setup::new();
    let client = tandem_hub::BlockingHubClient::new(setup.client()).unwrap();
    let snapshot = client
        .download_model(SINGLE, DownloadOptions::new())
        .unwrap();
    assert!(snapshot.path(WEIGHTS).exists());
    assert_eq!(client.list_cached_models().unwrap().len(), 1);
}

const CHILD_ENDPOINT: &str = "TANDEM_HUB_TEST_CHILD_ENDPOINT";
const CHILD_HOME: &str = "TANDEM_HUB_TEST_CHILD_HOME";

/// Half of `two_processes_download_one_repo_at_once`: run by that test in
/// a child process (the variables set); a no-op otherwise.
#[tokio::test]
async fn child_process_download() {
    let (Ok(endpoint), Ok(home)) = (std::env::var(CHILD_ENDPOINT), std::env::var(CHILD_HOME))
    else {
        return;
    };
    let home = PathBuf::from(home);
    // Start together with the other child: wait for the parent's go.
    let go = home.join("go");
    while !go.exists() {
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    let snapshot = builder_for(&endpoint, &home)
        .build()
        .unwrap()
        .download_model(SHARDED, DownloadOptions::new())
        .await
        .unwrap();
    for shard in SHARDS {
        assert_eq!(
            std::fs::read(snapshot.path(shard)).unwrap(),
            sharded_repo().data(shard).unwrap()
        );
    }
}

/// Two processes (two app windows, the CLI beside the app) download the
/// same repo into one cache at the same moment: both succeed, and every
/// blob and snapshot file holds the right bytes.
#[tokio::test]
async fn two_processes_download_one_repo_at_once() {
    let setup = Setup::new();
    let exe = std::env::current_exe().unwrap();
    let spawn = || {
        std::process::Command::new(&exe)
            .args(["--exact", "download::child_process_download", "--nocapture"])
            .env(CHILD_ENDPOINT, setup.hub.url())
            .env(CHILD_HOME, setup.home.path())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let children = [spawn(), spawn()];
    std::fs::write(setup.home.path().join("go"), b"").unwrap();
    for child in children {
        let output = child.wait_with_output().unwrap();
        assert!(
            output.status.success(),
            "child failed:\n{}\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        // The filter matched the child test, so it really ran.
        assert!(
            String::from_utf8_lossy(&output.stdout).contains("1 passed"),
            "{}",
            String::from_utf8_lossy(&output.stdout)
        );
    }
    let repo = sharded_repo();
    let dir = setup.repo_dir(SHARDED);
    let snapshot = dir.join("snapshots").join(repo.commit());
    for file in [
        "config.json",
        "tokenizer.json",
        "tokenizer_config.json",
        "model.safetensors.index.json",
    ]
    .into_iter()
    .chain(SHARDS)
    {
        let data = repo.data(file).unwrap();
        let blob = dir.join("blobs").join(repo.etag(file).unwrap());
        assert!(std::fs::read(&blob).unwrap() == data, "blob of {file}");
        assert!(
            std::fs::read(snapshot.join(file)).unwrap() == data,
            "{file}"
        );
    }
    let leftovers: Vec<String> = std::fs::read_dir(&snapshot)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}
