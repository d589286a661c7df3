//! Interrupted, corrupt and cancelled downloads.

use tandem_hub::mock::Fault;
use tandem_hub::{CancelToken, DownloadEvent, DownloadOptions, HubError};

use crate::fixtures::*;

const DROP_AT: u64 = 300_000;

fn partial_path(setup: &Setup) -> std::path::PathBuf {
    let etag = single_repo().etag(WEIGHTS).unwrap();
    setup
        .repo_dir(SINGLE)
        .join("blobs")
        .join(format!("{etag}.incomplete"))
}

#[tokio::test]
async fn dropped_connection_is_retried_from_the_offset() {
    let setup = Setup::new();
    setup
        .hub
        .inject_fault(SINGLE, WEIGHTS, Fault::DropAfter(DROP_AT));
    let (options, events) = collecting();
    let snapshot = setup
        .client()
        .download_model(SINGLE, options)
        .await
        .unwrap();

    assert_eq!(
        std::fs::read(snapshot.path(WEIGHTS)).unwrap(),
        single_repo().data(WEIGHTS).unwrap()
    );
    let transfers = setup.hub.file_transfers(WEIGHTS);
    assert_eq!(transfers.len(), 2, "{transfers:?}");
    assert_eq!(transfers[0].range_start, None);
    assert_eq!(transfers[0].body_bytes, DROP_AT);
    // The retry asked for, and got, only the remainder.
    assert_eq!(transfers[1].range_start, Some(DROP_AT));
    assert_eq!(transfers[1].status, 206);
    assert_eq!(transfers[1].body_bytes, WEIGHTS_LEN as u64 - DROP_AT);
    assert!(taken(&events).iter().any(|e| matches!(
        e,
        DownloadEvent::Retrying { file, from_offset: DROP_AT, attempt: 1, .. } if file == WEIGHTS
    )));
}

#[tokio::test]
async fn interrupted_download_resumes_on_the_next_call() {
    let setup = Setup::new();
    setup
        .hub
        .inject_fault(SINGLE, WEIGHTS, Fault::DropAfter(DROP_AT));
    let no_retry = setup.builder().max_retries(0).build().unwrap();

    let err = no_retry
        .download_model(SINGLE, DownloadOptions::new())
        .await
        .unwrap_err();
    match &err {
        HubError::Interrupted { file, done, .. } => {
            assert_eq!(file, WEIGHTS);
            assert_eq!(*done, DROP_AT);
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(err.to_string().contains("resume"), "{err}");
    assert_eq!(
        std::fs::metadata(partial_path(&setup)).unwrap().len(),
        DROP_AT
    );
    // The ref only moves once the snapshot is complete.
    assert!(!setup.repo_dir(SINGLE).join("refs/main").exists());

    let (options, events) = collecting();
    let snapshot = no_retry.download_model(SINGLE, options).await.unwrap();
    assert_eq!(
        std::fs::read(snapshot.path(WEIGHTS)).unwrap(),
        single_repo().data(WEIGHTS).unwrap()
    );
    assert!(!partial_path(&setup).exists());
    let transfers = setup.hub.file_transfers(WEIGHTS);
    assert_eq!(transfers.len(), 2);
    assert_eq!(transfers[1].range_start, Some(DROP_AT));
    assert_eq!(transfers[1].body_bytes, WEIGHTS_LEN as u64 - DROP_AT);
    let events = taken(&events);
    assert!(events.iter().any(|e| matches!(
        e,
        DownloadEvent::Resumed { file, from_offset: DROP_AT } if file == WEIGHTS
    )));
    // Resumed bytes count as done from the start; only the rest was downloaded.
    assert!(matches!(
        events.last(),
        Some(DownloadEvent::Done { downloaded_bytes, .. }) if *downloaded_bytes == WEIGHTS_LEN as u64 - DROP_AT
    ));
}

#[tokio::test]
async fn checksum_mismatch_is_never_kept_as_complete() {
    let setup = Setup::new();
    setup.hub.inject_fault(SINGLE, WEIGHTS, Fault::Corrupt);
    let client = setup.client();

    let err = client
        .download_model(SINGLE, DownloadOptions::new())
        .await
        .unwrap_err();
    let expected_sha = single_repo().sha256(WEIGHTS).unwrap();
    match &err {
        HubError::ChecksumMismatch {
            file,
            expected,
            actual,
        } => {
            assert_eq!(file, WEIGHTS);
            assert_eq!(expected, &expected_sha);
            assert_ne!(actual, &expected_sha);
            assert_eq!(actual.len(), 64);
        }
        other => panic!("unexpected {other:?}"),
    }
    let text = err.to_string();
    assert!(
        text.contains(WEIGHTS) && text.contains(&expected_sha),
        "{text}"
    );

    let dir = setup.repo_dir(SINGLE);
    assert!(!dir.join("blobs").join(&expected_sha).exists());
    assert!(!partial_path(&setup).exists());
    assert!(!dir
        .join("snapshots")
        .join(single_repo().commit())
        .join(WEIGHTS)
        .exists());
    assert!(!dir.join("refs/main").exists());

    // The fault was one-off: the next call fetches a good copy from zero.
    client
        .download_model(SINGLE, DownloadOptions::new())
        .await
        .unwrap();
    let transfers = setup.hub.file_transfers(WEIGHTS);
    assert_eq!(transfers.last().unwrap().range_start, None);
}

#[tokio::test]
async fn cancel_keeps_the_partial_and_the_next_call_resumes() {
    let setup = Setup::new();
    // Slow enough that the cancel lands mid-file.
    setup.hub.set_throttle(Some(4 * 1024 * 1024));
    let cancel = CancelToken::new();
    let trigger = cancel.clone();
    let options = DownloadOptions::new()
        .cancel_token(cancel)
        .on_event(move |event| {
            if let DownloadEvent::Progress {
                file, file_done, ..
            } = &event
            {
                if file == WEIGHTS && *file_done >= 64 * 1024 {
                    trigger.cancel();
                }
            }
        });
    let client = setup.client();
    let err = client.download_model(SINGLE, options).await.unwrap_err();
    assert!(matches!(err, HubError::Cancelled), "{err:?}");

    let kept = std::fs::metadata(partial_path(&setup)).unwrap().len();
    assert!(kept >= 64 * 1024 && kept < WEIGHTS_LEN as u64, "{kept}");

    setup.hub.set_throttle(None);
    let snapshot = client
        .download_model(SINGLE, DownloadOptions::new())
        .await
        .unwrap();
    assert_eq!(
        std::fs::read(snapshot.path(WEIGHTS)).unwrap(),
        single_repo().data(WEIGHTS).unwrap()
    );
    let resumed = setup.hub.file_transfers(WEIGHTS).pop().unwrap();
    assert_eq!(resumed.range_start, Some(kept));
    assert_eq!(resumed.body_bytes, WEIGHTS_LEN as u64 - kept);
}

#[tokio::test]
async fn server_errors_are_retried() {
    let setup = Setup::new();
    setup.hub.inject_fault(SINGLE, WEIGHTS, Fault::Status(503));
    setup
        .client()
        .download_model(SINGLE, DownloadOptions::new())
        .await
        .unwrap();
    let gets: Vec<u16> = setup
        .hub
        .requests()
        .into_iter()
        .filter(|r| r.method == "GET" && r.file.as_deref() == Some(WEIGHTS))
        .map(|r| r.status)
        .collect();
    assert_eq!(gets, vec![503, 200]);
}
