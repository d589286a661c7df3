//! Using what the cache already has: no re-download, offline use, listing
//! and removal.

use tandem_hub::mock::RequestKind;
use tandem_hub::{DownloadEvent, DownloadOptions, HubError};

use crate::fixtures::*;

#[tokio::test]
async fn cached_model_is_not_downloaded_again() {
    let setup = Setup::new();
    let client = setup.client();
    client
        .download_model(SINGLE, DownloadOptions::new())
        .await
        .unwrap();
    setup.hub.clear_requests();

    let (options, events) = collecting();
    let snapshot = client.download_model(SINGLE, options).await.unwrap();
    assert_eq!(snapshot.downloaded_bytes, 0);
    let requests = setup.hub.requests();
    // Only the cheap info call: no HEAD, no GET of any file.
    assert_eq!(requests.len(), 1, "{requests:?}");
    assert_eq!(requests[0].kind, RequestKind::Info);
    let events = taken(&events);
    assert!(
        matches!(&events[0], DownloadEvent::Started { total_bytes, cached_bytes, .. } if total_bytes == cached_bytes)
    );
    assert!(!events
        .iter()
        .any(|e| matches!(e, DownloadEvent::FileStarted { .. })));
    assert_eq!(
        events
            .iter()
            .filter(|e| matches!(e, DownloadEvent::FileCached { .. }))
            .count(),
        snapshot.files.len()
    );
}

#[tokio::test]
async fn a_blob_with_the_wrong_size_is_fetched_again() {
    let setup = Setup::new();
    let client = setup.client();
    let snapshot = client
        .download_model(SINGLE, DownloadOptions::new())
        .await
        .unwrap();
    let blob = std::fs::canonicalize(snapshot.path(WEIGHTS)).unwrap();
    std::fs::write(&blob, b"truncated").unwrap();
    setup.hub.clear_requests();

    client
        .download_model(SINGLE, DownloadOptions::new())
        .await
        .unwrap();
    assert_eq!(setup.hub.file_transfers(WEIGHTS).len(), 1);
    assert_eq!(
        std::fs::read(snapshot.path(WEIGHTS)).unwrap(),
        single_repo().data(WEIGHTS).unwrap()
    );
}

#[tokio::test]
async fn blobs_from_another_tool_are_linked_not_downloaded() {
    let setup = Setup::new();
    let client = setup.client();
    client
        .download_model(SINGLE, DownloadOptions::new())
        .await
        .unwrap();
    // Keep the blobs, lose the snapshot and ref (as if only blobs were shared).
    let dir = setup.repo_dir(SINGLE);
    std::fs::remove_dir_all(dir.join("snapshots")).unwrap();
    std::fs::remove_dir_all(dir.join("refs")).unwrap();
    setup.hub.clear_requests();

    let snapshot = client
        .download_model(SINGLE, DownloadOptions::new())
        .await
        .unwrap();
    assert!(setup
        .hub
        .requests()
        .iter()
        .all(|r| r.method != "GET" || r.kind == RequestKind::Info));
    assert_eq!(
        std::fs::read(snapshot.path(WEIGHTS)).unwrap(),
        single_repo().data(WEIGHTS).unwrap()
    );
}

#[tokio::test]
async fn offline_uses_a_complete_cache() {
    let setup = Setup::new();
    let endpoint = setup.hub.url();
    let online = setup.client();
    let first = online
        .download_model(SHARDED, DownloadOptions::new())
        .await
        .unwrap();
    let Setup { hub, home } = setup;
    hub.shutdown();

    // Same endpoint, now refusing connections.
    let (options, events) = collecting();
    let offline = builder_for(&endpoint, home.path())
        .build()
        .unwrap()
        .download_model(SHARDED, options)
        .await
        .unwrap();
    assert!(offline.from_cache_only);
    assert_eq!(offline.commit, first.commit);
    assert_eq!(offline.files, first.files);
    assert!(matches!(
        &taken(&events)[0],
        DownloadEvent::UsingCache { .. }
    ));

    // HF_HUB_OFFLINE-style: no network attempted at all.
    let forced = builder_for("http://127.0.0.1:9", home.path())
        .offline(true)
        .build()
        .unwrap()
        .download_model(SHARDED, DownloadOptions::new())
        .await
        .unwrap();
    assert_eq!(forced.files, first.files);
}

#[tokio::test]
async fn offline_with_an_incomplete_cache_names_missing_files() {
    let setup = Setup::new();
    let endpoint = setup.hub.url();
    let snapshot = setup
        .client()
        .download_model(SHARDED, DownloadOptions::new())
        .await
        .unwrap();
    std::fs::remove_file(snapshot.path(SHARDS[1])).unwrap();
    std::fs::remove_file(snapshot.path("tokenizer.json")).unwrap();
    let Setup { hub, home } = setup;
    drop(hub);

    let client = builder_for(&endpoint, home.path()).build().unwrap();
    let err = client
        .download_model(SHARDED, DownloadOptions::new())
        .await
        .unwrap_err();
    match &err {
        HubError::OfflineIncomplete { missing, .. } => {
            assert_eq!(
                missing,
                &vec!["tokenizer.json".to_string(), SHARDS[1].to_string()]
            );
        }
        other => panic!("unexpected {other:?}"),
    }
    let text = err.to_string();
    assert!(
        text.contains(SHARDS[1]) && text.contains(&endpoint),
        "{text}"
    );

    let err = client
        .download_model(SINGLE, DownloadOptions::new())
        .await
        .unwrap_err();
    assert!(matches!(err, HubError::OfflineNotCached { .. }), "{err:?}");
    assert!(err.to_string().contains("not in the cache"), "{err}");
}

#[tokio::test]
async fn list_and_remove_cached_models() {
    let setup = Setup::new();
    let client = setup.client();
    for repo in [SINGLE, SHARDED] {
        client
            .download_model(repo, DownloadOptions::new())
            .await
            .unwrap();
    }
    let models = client.list_cached_models().unwrap();
    let ids: Vec<&str> = models.iter().map(|m| m.repo_id.as_str()).collect();
    assert_eq!(ids, vec![SINGLE, SHARDED]);

    let single = &models[0];
    let repo = single_repo();
    assert_eq!(single.main_commit(), Some(repo.commit().as_str()));
    let expected_size: u64 = single.snapshots[0]
        .files
        .iter()
        .map(|f| repo.size(f).unwrap())
        .sum();
    assert_eq!(single.size_on_disk, expected_size);
    assert_eq!(single.partial_bytes, 0);
    assert!(single.snapshots[0].files.contains(&WEIGHTS.to_string()));

    assert!(client.remove_model(SINGLE).unwrap());
    assert!(!setup.repo_dir(SINGLE).exists());
    assert!(!client.remove_model(SINGLE).unwrap());
    let left: Vec<String> = client
        .list_cached_models()
        .unwrap()
        .into_iter()
        .map(|m| m.repo_id)
        .collect();
    assert_eq!(left, vec![SHARDED.to_string()]);
    assert!(matches!(
        client.remove_model("../escape"),
        Err(HubError::InvalidRepoId { .. })
    ));
}

/// The app's "Check" fetches only the configs of the hub's newest commit;
/// when that commit changed nothing but a README it must not move
/// `refs/main` off the complete download, for this app or offline runs.
#[tokio::test]
async fn a_config_check_after_a_readme_commit_keeps_the_model_complete() {
    let setup = Setup::new();
    let endpoint = setup.hub.url();
    let client = setup.client();
    let complete = client
        .download_model(SINGLE, DownloadOptions::new())
        .await
        .unwrap();
    setup
        .hub
        .add_repo(single_repo().file("README.md", b"# tiny, edited\n".to_vec()));
    let checked = client
        .fetch_config_files(SINGLE, DownloadOptions::new())
        .await
        .unwrap();
    assert_ne!(checked.commit, complete.commit);
    assert!(checked.path("config.json").is_file());

    let dir = setup.repo_dir(SINGLE);
    assert_eq!(
        std::fs::read_to_string(dir.join("refs/main")).unwrap(),
        complete.commit
    );
    let listed = client.list_cached_models().unwrap();
    assert_eq!(listed[0].main_commit(), Some(complete.commit.as_str()));

    let Setup { hub, home } = setup;
    drop(hub);
    let offline = builder_for(&endpoint, home.path()).build().unwrap();
    let snapshot = offline
        .download_model(SINGLE, DownloadOptions::new())
        .await
        .unwrap();
    assert_eq!(snapshot.commit, complete.commit);
    assert!(snapshot.from_cache_only);
    // The configs of the newer commit are found offline too, with no ref.
    let configs = offline
        .fetch_config_files(SINGLE, DownloadOptions::new())
        .await
        .unwrap();
    assert!(configs.path("config.json").is_file());
}

/// A cache where `refs/main` was moved to a snapshot without weights (by an
/// older Tandem, or a Python tool fetching one file of a newer commit):
/// offline, the newest complete snapshot of the branch is used, not one
/// another ref names.
#[tokio::test]
async fn offline_skips_a_ref_to_an_incomplete_snapshot() {
    let setup = Setup::new();
    let complete = setup
        .client()
        .download_model(SINGLE, DownloadOptions::new())
        .await
        .unwrap();
    let dir = setup.repo_dir(SINGLE);
    let snapshots = dir.join("snapshots");

    // A complete snapshot of another branch, newer than ours.
    let other = "1111111111111111111111111111111111111111";
    let other_dir = snapshots.join(other);
    std::fs::create_dir_all(&other_dir).unwrap();
    for file in &complete.files {
        std::fs::copy(complete.path(file), other_dir.join(file)).unwrap();
    }
    std::fs::write(dir.join("refs/dev"), other).unwrap();
    // main now points at a newer commit of which only a README was fetched.
    let newer = "2222222222222222222222222222222222222222";
    std::fs::create_dir_all(snapshots.join(newer)).unwrap();
    std::fs::write(snapshots.join(newer).join("README.md"), b"# new\n").unwrap();
    std::fs::write(dir.join("refs/main"), newer).unwrap();

    let offline = setup.builder().offline(true).build().unwrap();
    let snapshot = offline
        .download_model(SINGLE, DownloadOptions::new())
        .await
        .unwrap();
    assert_eq!(snapshot.commit, complete.commit);
    assert_eq!(snapshot.files, complete.files);
    let dev = offline
        .download_model(SINGLE, DownloadOptions::new().revision("dev"))
        .await
        .unwrap();
    assert_eq!(dev.commit, other);

    // With no complete snapshot left, the error names what main lacks.
    std::fs::remove_dir_all(&complete.dir).unwrap();
    std::fs::remove_file(dir.join("refs/dev")).unwrap();
    std::fs::remove_dir_all(&other_dir).unwrap();
    let err = offline
        .download_model(SINGLE, DownloadOptions::new())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, HubError::OfflineIncomplete { missing, .. } if missing.contains(&"config.json".to_string())),
        "{err:?}"
    );
}
