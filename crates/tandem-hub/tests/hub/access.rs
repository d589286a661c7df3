//! Repos that cannot be downloaded, and the messages that say why.

use tandem_hub::mock::RequestKind;
use tandem_hub::{DownloadOptions, HubError};

use crate::fixtures::*;

#[tokio::test]
async fn gated_repo_without_token_says_accept_the_licence() {
    let setup = Setup::new();
    let err = setup
        .client()
        .download_model(GATED, DownloadOptions::new())
        .await
        .unwrap_err();
    let page = format!("{}/{GATED}", setup.hub.url());
    match &err {
        HubError::Gated {
            repo,
            page: got_page,
            had_token,
            status,
        } => {
            assert_eq!(repo, GATED);
            assert_eq!(got_page, &page);
            assert!(!had_token);
            assert_eq!(*status, 401);
        }
        other => panic!("unexpected {other:?}"),
    }
    let text = err.to_string();
    for needle in [
        "licence",
        page.as_str(),
        "HF_TOKEN",
        "huggingface-cli login",
        "token field",
    ] {
        assert!(text.contains(needle), "{needle:?} missing in: {text}");
    }
    assert!(!setup.repo_dir(GATED).join("refs/main").exists());
}

#[tokio::test]
async fn gated_repo_with_a_token_lacking_access_is_403() {
    let setup = Setup::new();
    let client = setup.builder().token("hf_someone_else").build().unwrap();
    let err = client
        .download_model(GATED, DownloadOptions::new())
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            HubError::Gated {
                had_token: true,
                status: 403,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("has no access"), "{err}");
}

#[tokio::test]
async fn gated_repo_with_the_granted_token_downloads() {
    let setup = Setup::new();
    let client = setup.builder().token(GRANTED_TOKEN).build().unwrap();
    let snapshot = client
        .download_model(GATED, DownloadOptions::new())
        .await
        .unwrap();
    assert!(snapshot.path(WEIGHTS).exists());
}

#[tokio::test]
async fn unknown_repo_is_no_such_model() {
    let setup = Setup::new();
    // Anonymous: the hub answers 401 + RepoNotFound; with a token: 404.
    for client in [
        setup.client(),
        setup.builder().token("hf_any").build().unwrap(),
    ] {
        let err = client
            .download_model("tiny/missing", DownloadOptions::new())
            .await
            .unwrap_err();
        assert!(matches!(err, HubError::RepoNotFound { .. }), "{err:?}");
        assert_eq!(err.to_string(), "no such model: tiny/missing");
    }
    let statuses: Vec<u16> = setup.hub.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, vec![401, 404]);
}

#[tokio::test]
async fn unknown_revision_is_named() {
    let setup = Setup::new();
    let err = setup
        .client()
        .download_model(SINGLE, DownloadOptions::new().revision("v9"))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, HubError::RevisionNotFound { revision, .. } if revision == "v9"),
        "{err:?}"
    );
}

#[tokio::test]
async fn pickle_only_repo_is_refused_without_fetching_anything() {
    let setup = Setup::new();
    let err = setup
        .client()
        .download_model(PICKLE_ONLY, DownloadOptions::new())
        .await
        .unwrap_err();
    match &err {
        HubError::NoSafetensors { pickle_files, .. } => {
            assert_eq!(pickle_files, &vec!["pytorch_model.bin".to_string()]);
        }
        other => panic!("unexpected {other:?}"),
    }
    let text = err.to_string();
    assert!(
        text.contains("pytorch_model.bin") && text.contains("safetensors"),
        "{text}"
    );
    assert!(setup
        .hub
        .requests()
        .iter()
        .all(|r| r.kind == RequestKind::Info));
    assert!(!setup.repo_dir(PICKLE_ONLY).exists());
}
