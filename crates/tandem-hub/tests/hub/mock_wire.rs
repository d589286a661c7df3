//! The mock hub's wire behaviour that clients depend on, checked directly:
//! signed CDN URLs on a second port, renamed repos, the paged tree listing.

use reqwest::header::{AUTHORIZATION, LOCATION};
use reqwest::{redirect::Policy, Client, StatusCode, Url};
use tandem_hub::mock::MockHub;
use tandem_hub::DownloadOptions;

use crate::fixtures::*;

fn no_redirects() -> Client {
    Client::builder()
        .redirect(Policy::none())
        .no_proxy()
        .build()
        .unwrap()
}

#[tokio::test]
async fn lfs_files_redirect_to_signed_urls_on_another_port() {
    let hub = MockHub::start(all_repos()).unwrap();
    let client = no_redirects();
    let repo = single_repo();
    let resolve = format!("{}/{SINGLE}/resolve/main/{WEIGHTS}", hub.url());
    let head = client.head(&resolve).send().await.unwrap();
    // HEAD answers the redirect itself, with the file's metadata.
    assert_eq!(head.status(), StatusCode::FOUND);
    let header = |name: &str| head.headers()[name].to_str().unwrap().to_string();
    assert_eq!(header("x-repo-commit"), repo.commit());
    assert_eq!(
        header("x-linked-etag"),
        format!("\"{}\"", repo.sha256(WEIGHTS).unwrap())
    );
    assert_eq!(header("x-linked-size"), WEIGHTS_LEN.to_string());
    assert!(head.headers().contains_key("etag"));
    let location = Url::parse(&header(LOCATION.as_str())).unwrap();
    let cdn = Url::parse(&hub.cdn_url()).unwrap();
    assert_eq!(location.origin(), cdn.origin());
    assert_ne!(location.origin(), Url::parse(&hub.url()).unwrap().origin());
    assert!(location.query().unwrap().contains("X-Amz-Signature="));

    let get = client.get(location.clone()).send().await.unwrap();
    assert_eq!(get.status(), StatusCode::OK);
    assert!(get.bytes().await.unwrap() == repo.data(WEIGHTS).unwrap());
    // The storage host refuses a token beside the signature…
    let with_token = client
        .get(location.clone())
        .header(AUTHORIZATION, "Bearer hf_x")
        .send()
        .await
        .unwrap();
    assert_eq!(with_token.status(), StatusCode::BAD_REQUEST);
    // …an unsigned or tampered URL…
    let mut unsigned = location.clone();
    unsigned.set_query(None);
    assert_eq!(
        client.get(unsigned).send().await.unwrap().status(),
        StatusCode::FORBIDDEN
    );
    let tampered = location
        .as_str()
        .replace(&repo.sha256(WEIGHTS).unwrap(), &"0".repeat(64));
    assert_eq!(
        client.get(tampered).send().await.unwrap().status(),
        StatusCode::FORBIDDEN
    );
    // …and knows nothing of the hub's own paths.
    let resolve_on_cdn = format!("{}/{SINGLE}/resolve/main/{WEIGHTS}", hub.cdn_url());
    assert_eq!(
        client.get(resolve_on_cdn).send().await.unwrap().status(),
        StatusCode::NOT_FOUND
    );

    // A git-stored file is answered in place, with an ETag.
    let config = client
        .head(format!("{}/{SINGLE}/resolve/main/config.json", hub.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(config.status(), StatusCode::OK);
    assert_eq!(
        config.headers()["etag"].to_str().unwrap(),
        format!("\"{}\"", repo.etag("config.json").unwrap())
    );
}

#[tokio::test]
async fn renamed_repos_redirect_relative_and_download() {
    let setup = Setup::new();
    setup.hub.rename_repo("tiny/old-name", SINGLE);
    let client = no_redirects();
    for (path, expected) in [
        (
            "/tiny/old-name/resolve/main/config.json",
            format!("/{SINGLE}/resolve/main/config.json"),
        ),
        (
            "/api/models/tiny/old-name/revision/main?blobs=true",
            format!("/api/models/{SINGLE}/revision/main?blobs=true"),
        ),
        (
            "/api/models/tiny/old-name/tree/main?recursive=true",
            format!("/api/models/{SINGLE}/tree/main?recursive=true"),
        ),
    ] {
        let response = client
            .get(format!("{}{path}", setup.hub.url()))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::TEMPORARY_REDIRECT, "{path}");
        assert_eq!(response.headers()[LOCATION], expected.as_str(), "{path}");
    }

    let snapshot = setup
        .client()
        .download_model("tiny/old-name", DownloadOptions::new())
        .await
        .unwrap();
    // Cached under the name asked for, as huggingface_hub does.
    assert!(snapshot.dir.starts_with(setup.repo_dir("tiny/old-name")));
    assert_eq!(snapshot.commit, single_repo().commit());
    assert!(std::fs::read(snapshot.path(WEIGHTS)).unwrap() == single_repo().data(WEIGHTS).unwrap());
}

#[tokio::test]
async fn the_tree_listing_comes_in_linked_pages() {
    let hub = MockHub::start(all_repos()).unwrap();
    hub.set_tree_page_size(2);
    let client = no_redirects();
    let mut next = Some(format!(
        "{}/api/models/{SHARDED}/tree/main?recursive=true&expand=false",
        hub.url()
    ));
    let mut paths = Vec::new();
    let mut pages = 0;
    while let Some(url) = next.take() {
        let response = client.get(url).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        next = response
            .headers()
            .get("link")
            .and_then(|link| link.to_str().ok())
            .and_then(|link| link.strip_prefix('<'))
            .and_then(|link| link.split_once(">; rel=\"next\""))
            .map(|(url, _)| url.to_string());
        let page: Vec<serde_json::Value> =
            serde_json::from_slice(&response.bytes().await.unwrap()).unwrap();
        assert!(page.len() <= 2);
        pages += 1;
        for entry in page {
            assert_eq!(entry["type"], "file");
            let path = entry["path"].as_str().unwrap().to_string();
            let repo = sharded_repo();
            assert_eq!(entry["size"], repo.size(&path).unwrap());
            if repo.is_lfs(&path) {
                assert_eq!(entry["lfs"]["oid"], repo.sha256(&path).unwrap());
            } else {
                assert_eq!(entry["oid"], repo.etag(&path).unwrap());
            }
            paths.push(path);
        }
    }
    assert_eq!(paths, sharded_repo().file_names());
    assert!(pages > 1);
}
