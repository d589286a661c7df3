//! The hub's HTTP API as Tandem uses it: the repo info call, the HEAD that
//! tells a file's etag, size and commit, and ranged GETs of file contents.

use std::time::Duration;

use reqwest::header::{HeaderMap, AUTHORIZATION, CONTENT_LENGTH, ETAG, LOCATION, RANGE};
use reqwest::{Client, RequestBuilder, Response, StatusCode, Url};
use serde::Deserialize;

use crate::checksum::normalize_etag;
use crate::error::error_chain;
use crate::HubError;

const X_REPO_COMMIT: &str = "x-repo-commit";
const X_LINKED_ETAG: &str = "x-linked-etag";
const X_LINKED_SIZE: &str = "x-linked-size";
const X_ERROR_CODE: &str = "x-error-code";
const X_ERROR_MESSAGE: &str = "x-error-message";
const USER_AGENT: &str = concat!("tandem-hub/", env!("CARGO_PKG_VERSION"));
/// Redirects a HEAD may take before we give up (renamed repos chain a few).
const MAX_METADATA_REDIRECTS: usize = 5;

/// `GET /api/models/{repo}/revision/{rev}?blobs=true`, the parts we use.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct RepoInfo {
    pub sha: String,
    #[serde(default)]
    pub siblings: Vec<Sibling>,
}

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Sibling {
    pub rfilename: String,
    /// Present with `blobs=true`; lets a cached snapshot be checked without HEADs.
    #[serde(default)]
    pub size: Option<u64>,
}

/// What the HEAD of `resolve/{commit}/{file}` tells.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FileMetadata {
    /// `X-Linked-Etag` (LFS sha256) or `ETag` (git sha1), unquoted.
    pub etag: String,
    pub size: u64,
    pub commit: Option<String>,
    /// Where the bytes are: the CDN for LFS files, else the resolve URL.
    pub download_url: Url,
}

/// Why the repo info call failed: unreachable hubs fall back to the cache.
#[derive(Debug)]
pub(crate) enum InfoFailure {
    Unreachable(String),
    Hub(HubError),
}

#[derive(Debug, Clone)]
pub(crate) struct HubHttp {
    /// Follows redirects (file bodies come from the CDN).
    client: Client,
    /// Never follows them: the hub's own 302 carries the file's metadata
    /// headers, the CDN's answer does not.
    no_redirect_client: Client,
    endpoint: Url,
    token: Option<String>,
}

impl HubHttp {
    pub(crate) fn new(endpoint: &str, token: Option<String>) -> Result<Self, HubError> {
        let invalid = |reason: String| HubError::InvalidEndpoint {
            endpoint: endpoint.to_string(),
            reason,
        };
        let url = Url::parse(endpoint).map_err(|err| invalid(err.to_string()))?;
        if !matches!(url.scheme(), "http" | "https") || url.cannot_be_a_base() {
            return Err(invalid("must be an http:// or https:// URL".to_string()));
        }
        let loopback = matches!(url.host_str(), Some("127.0.0.1" | "localhost" | "[::1]"));
        let base = || {
            let builder = Client::builder()
                .user_agent(USER_AGENT)
                .connect_timeout(Duration::from_secs(15))
                .read_timeout(Duration::from_secs(60));
            // A proxy from the environment must not swallow a local hub (tests, mirrors on this machine).
            if loopback {
                builder.no_proxy()
            } else {
                builder
            }
        };
        let build_error = |err: reqwest::Error| invalid(error_chain(&err));
        Ok(HubHttp {
            client: base()
                .redirect(reqwest::redirect::Policy::limited(10))
                .build()
                .map_err(build_error)?,
            no_redirect_client: base()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .map_err(build_error)?,
            endpoint: url,
            token,
        })
    }

    pub(crate) fn endpoint(&self) -> &str {
        self.endpoint.as_str().trim_end_matches('/')
    }

    pub(crate) fn has_token(&self) -> bool {
        self.token.is_some()
    }

    /// `{endpoint}/{repo}`: the model's page, where a licence is accepted.
    pub(crate) fn model_page(&self, repo: &str) -> String {
        format!("{}/{repo}", self.endpoint())
    }

    pub(crate) fn info_url(&self, repo: &str, revision: &str) -> Url {
        let mut url = self.url_with(&["api", "models"], repo, &["revision"]);
        url.path_segments_mut()
            .expect("endpoint is a base URL")
            .push(revision);
        url.query_pairs_mut().append_pair("blobs", "true");
        url
    }

    pub(crate) fn resolve_url(&self, repo: &str, revision: &str, file: &str) -> Url {
        let mut url = self.url_with(&[], repo, &["resolve"]);
        {
            let mut segments = url.path_segments_mut().expect("endpoint is a base URL");
            // A revision like "refs/pr/1" is one segment ("refs%2Fpr%2F1").
            segments.push(revision);
            segments.extend(file.split('/'));
        }
        url
    }

    fn url_with(&self, before: &[&str], repo: &str, after: &[&str]) -> Url {
        let mut url = self.endpoint.clone();
        {
            let mut segments = url.path_segments_mut().expect("endpoint is a base URL");
            segments.pop_if_empty();
            segments.extend(before);
            segments.extend(repo.split('/'));
            segments.extend(after);
        }
        url
    }

    /// Adds the token, but only towards the hub itself: a CDN on another
    /// host gets a signed URL instead and must never see the token.
    fn authorize(&self, request: RequestBuilder, url: &Url) -> RequestBuilder {
        match &self.token {
            Some(token) if url.origin() == self.endpoint.origin() => {
                request.header(AUTHORIZATION, format!("Bearer {token}"))
            }
            _ => request,
        }
    }

    pub(crate) async fn repo_info(
        &self,
        repo: &str,
        revision: &str,
    ) -> Result<RepoInfo, InfoFailure> {
        let url = self.info_url(repo, revision);
        let request = self.authorize(self.client.get(url.clone()), &url);
        let response = match request.send().await {
            Ok(response) => response,
            Err(err) if err.is_connect() || err.is_timeout() => {
                return Err(InfoFailure::Unreachable(error_chain(&err.without_url())));
            }
            Err(err) => {
                return Err(InfoFailure::Hub(HubError::network(
                    format!("asking {} about {repo}", self.endpoint()),
                    err,
                )))
            }
        };
        if !response.status().is_success() {
            return Err(InfoFailure::Hub(
                self.status_error(&response, repo, revision, None),
            ));
        }
        let body = response.bytes().await.map_err(|err| {
            InfoFailure::Hub(HubError::network(
                format!("reading the file list of {repo}"),
                err,
            ))
        })?;
        serde_json::from_slice(&body).map_err(|err| {
            InfoFailure::Hub(HubError::Protocol {
                url: url.to_string(),
                reason: format!("repo info is not the expected JSON: {err}"),
            })
        })
    }

    /// HEAD `resolve/{revision}/{file}`, following only the redirects that
    /// do not already carry the file's metadata (a renamed repo); the LFS
    /// redirect to the CDN is read, not followed.
    pub(crate) async fn file_metadata(
        &self,
        repo: &str,
        revision: &str,
        file: &str,
    ) -> Result<FileMetadata, HubError> {
        let mut url = self.resolve_url(repo, revision, file);
        for _ in 0..=MAX_METADATA_REDIRECTS {
            let request = self
                .authorize(self.no_redirect_client.head(url.clone()), &url)
                .header(reqwest::header::ACCEPT_ENCODING, "identity");
            let response = request
                .send()
                .await
                .map_err(|err| HubError::network(format!("looking up {file} of {repo}"), err))?;
            let status = response.status();
            let headers = response.headers();
            if status.is_redirection() {
                let location = location(&url, headers)?;
                if headers.contains_key(X_LINKED_ETAG) {
                    return metadata_from_headers(&url, headers, location);
                }
                url = location;
                continue;
            }
            if !status.is_success() {
                return Err(self.status_error(&response, repo, revision, Some(file)));
            }
            return metadata_from_headers(&url, headers, url.clone());
        }
        Err(HubError::Protocol {
            url: url.to_string(),
            reason: format!("more than {MAX_METADATA_REDIRECTS} redirects"),
        })
    }

    /// GET of a file's bytes from `from` on (`Range: bytes={from}-`).
    pub(crate) async fn get_from(&self, url: &Url, from: u64) -> Result<Response, reqwest::Error> {
        let mut request = self.authorize(self.client.get(url.clone()), url);
        if from > 0 {
            request = request.header(RANGE, format!("bytes={from}-"));
        }
        request.send().await
    }

    /// Turns an error status into the error a person can act on. The hub
    /// names the cause in `X-Error-Code`; without it the status decides.
    pub(crate) fn status_error(
        &self,
        response: &Response,
        repo: &str,
        revision: &str,
        file: Option<&str>,
    ) -> HubError {
        let status = response.status();
        let headers = response.headers();
        let header = |name: &str| {
            headers
                .get(name)
                .and_then(|value| value.to_str().ok())
                .map(str::to_string)
        };
        let code = header(X_ERROR_CODE).unwrap_or_default();
        let repo_not_found = || HubError::RepoNotFound {
            repo: repo.to_string(),
        };
        let file_not_found = |file: &str| HubError::FileNotFound {
            repo: repo.to_string(),
            revision: revision.to_string(),
            file: file.to_string(),
        };
        let gated = || HubError::Gated {
            repo: repo.to_string(),
            page: self.model_page(repo),
            had_token: self.has_token(),
            status: status.as_u16(),
        };
        match (code.as_str(), status, file) {
            ("RepoNotFound", _, _) => repo_not_found(),
            ("RevisionNotFound", _, _) => HubError::RevisionNotFound {
                repo: repo.to_string(),
                revision: revision.to_string(),
            },
            ("EntryNotFound", _, Some(file)) => file_not_found(file),
            ("GatedRepo", _, _) => gated(),
            (_, StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN, _) => gated(),
            (_, StatusCode::NOT_FOUND, Some(file)) => file_not_found(file),
            (_, StatusCode::NOT_FOUND, None) => repo_not_found(),
            _ => HubError::Http {
                url: response.url().to_string(),
                status: status.as_u16(),
                message: header(X_ERROR_MESSAGE),
            },
        }
    }
}

fn location(base: &Url, headers: &HeaderMap) -> Result<Url, HubError> {
    let protocol = |reason: &str| HubError::Protocol {
        url: base.to_string(),
        reason: reason.to_string(),
    };
    let value = headers
        .get(LOCATION)
        .and_then(|value| value.to_str().ok())
        .ok_or_else(|| protocol("redirect without a Location"))?;
    // Relative ("/api/resolve-cache/…") and absolute (CDN) locations alike.
    base.join(value)
        .map_err(|_| protocol("redirect to an unparsable Location"))
}

fn metadata_from_headers(
    url: &Url,
    headers: &HeaderMap,
    download_url: Url,
) -> Result<FileMetadata, HubError> {
    let text = |name: &str| headers.get(name).and_then(|value| value.to_str().ok());
    let missing = |what: &str| HubError::Protocol {
        url: url.to_string(),
        reason: format!("no {what} header; is HF_ENDPOINT a Hugging Face hub?"),
    };
    let etag = text(X_LINKED_ETAG)
        .or_else(|| text(ETAG.as_str()))
        .map(normalize_etag)
        .filter(|etag| !etag.is_empty())
        .ok_or_else(|| missing("ETag"))?;
    let size = text(X_LINKED_SIZE)
        .or_else(|| text(CONTENT_LENGTH.as_str()))
        .and_then(|value| value.trim().parse::<u64>().ok())
        .ok_or_else(|| missing("size (X-Linked-Size or Content-Length)"))?;
    let commit = text(X_REPO_COMMIT).map(str::to_string);
    Ok(FileMetadata {
        etag,
        size,
        commit,
        download_url,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    #[test]
    fn urls_encode_revisions_and_keep_endpoint_paths() {
        let http = HubHttp::new("https://mirror.example/hf/", None).unwrap();
        assert_eq!(
            http.info_url("org/model", "refs/pr/1").as_str(),
            "https://mirror.example/hf/api/models/org/model/revision/refs%2Fpr%2F1?blobs=true"
        );
        assert_eq!(
            http.resolve_url("org/model", "main", "sub dir/model.safetensors")
                .as_str(),
            "https://mirror.example/hf/org/model/resolve/main/sub%20dir/model.safetensors"
        );
        assert_eq!(
            http.model_page("org/model"),
            "https://mirror.example/hf/org/model"
        );
    }

    #[test]
    fn bad_endpoints_are_refused() {
        for bad in ["huggingface.co", "ftp://x", "mailto:a@b"] {
            assert!(
                matches!(
                    HubHttp::new(bad, None),
                    Err(HubError::InvalidEndpoint { .. })
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn lfs_headers_win_over_plain_ones() {
        let url = Url::parse("http://hub/o/m/resolve/main/model.safetensors").unwrap();
        let mut headers = HeaderMap::new();
        headers.insert(ETAG, HeaderValue::from_static("\"git-sha\""));
        headers.insert(CONTENT_LENGTH, HeaderValue::from_static("0"));
        headers.insert(X_LINKED_ETAG, HeaderValue::from_static("\"abc123\""));
        headers.insert(X_LINKED_SIZE, HeaderValue::from_static("1234"));
        headers.insert(X_REPO_COMMIT, HeaderValue::from_static("c0ffee"));
        let cdn = Url::parse("https://cdn/x").unwrap();
        let meta = metadata_from_headers(&url, &headers, cdn.clone()).unwrap();
        assert_eq!(
            meta,
            FileMetadata {
                etag: "abc123".into(),
                size: 1234,
                commit: Some("c0ffee".into()),
                download_url: cdn,
            }
        );
    }

    #[test]
    fn relative_and_absolute_locations() {
        let base = Url::parse("http://hub:1/o/m/resolve/main/f").unwrap();
        let mut headers = HeaderMap::new();
        headers.insert(LOCATION, HeaderValue::from_static("/cdn/abc?sig=1"));
        assert_eq!(
            location(&base, &headers).unwrap().as_str(),
            "http://hub:1/cdn/abc?sig=1"
        );
        headers.insert(LOCATION, HeaderValue::from_static("https://cdn.example/x"));
        assert_eq!(
            location(&base, &headers).unwrap().as_str(),
            "https://cdn.example/x"
        );
    }
}
