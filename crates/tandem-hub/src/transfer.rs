//! Moving one file's bytes into `blobs/{etag}`: appended to a
//! `blobs/{etag}.incomplete` partial (so any interruption resumes with a
//! `Range` request), hashed on the way, verified, and only then renamed to
//! its final name. A file that fails its check is deleted, never renamed.

use std::path::{Path, PathBuf};
use std::time::Duration;

use reqwest::header::CONTENT_RANGE;
use reqwest::{Response, StatusCode, Url};
use tokio::io::AsyncWriteExt;

use crate::checksum::{ContentHasher, ExpectedHash};
use crate::error::error_chain;
use crate::http::HubHttp;
use crate::progress::{DownloadEvent, ProgressReporter};
use crate::{CancelToken, HubError};

/// One file to fetch.
#[derive(Debug, Clone)]
pub(crate) struct BlobJob {
    pub repo: String,
    pub revision: String,
    pub file: String,
    pub url: Url,
    pub etag: String,
    pub size: u64,
    pub blob: PathBuf,
    pub partial: PathBuf,
}

/// How hard to try before handing an interrupted file back to the caller.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RetryPolicy {
    pub max_retries: u32,
    pub first_delay: Duration,
}

impl RetryPolicy {
    fn delay(&self, attempt: u32) -> Duration {
        let factor = 1u32 << attempt.saturating_sub(1).min(8);
        (self.first_delay * factor).min(Duration::from_secs(30))
    }
}

/// Why one ranged GET stopped.
enum Stop {
    Cancelled,
    /// Worth another ranged GET from where the partial ends.
    Retryable(String),
    Fatal(HubError),
}

/// Fetches `job` into its blob, resuming a partial left by an earlier call.
pub(crate) async fn download_blob(
    http: &HubHttp,
    job: &BlobJob,
    reporter: &mut ProgressReporter,
    cancel: &CancelToken,
    retry: RetryPolicy,
) -> Result<(), HubError> {
    reporter.start_file(&job.file, job.size);
    if let Some(blobs) = job.partial.parent() {
        std::fs::create_dir_all(blobs)
            .map_err(|err| HubError::io("creating blob folder", blobs, err))?;
    }
    let expected = ExpectedHash::from_etag(&job.etag);
    let mut offset = existing_partial_len(&job.partial, job.size)?;
    let mut hasher = ContentHasher::new(&expected, job.size);
    if offset > 0 {
        reporter.resume_file_at(offset);
        hasher = hash_partial(hasher, &job.partial, offset).await?;
    }

    let mut attempt = 0;
    while offset < job.size {
        let stop = match fetch_range(http, job, &mut offset, &mut hasher, reporter, cancel).await {
            Ok(()) => continue,
            Err(stop) => stop,
        };
        match stop {
            Stop::Cancelled => {
                reporter.emit(DownloadEvent::Cancelled {
                    file: job.file.clone(),
                    file_done: offset,
                });
                return Err(HubError::Cancelled);
            }
            Stop::Fatal(err) => return Err(err),
            Stop::Retryable(reason) if attempt >= retry.max_retries => {
                return Err(HubError::Interrupted {
                    file: job.file.clone(),
                    done: offset,
                    total: job.size,
                    reason,
                });
            }
            Stop::Retryable(reason) => {
                attempt += 1;
                reporter.emit(DownloadEvent::Retrying {
                    file: job.file.clone(),
                    attempt,
                    from_offset: offset,
                    reason,
                });
                tokio::select! {
                    _ = cancel.cancelled() => continue,
                    _ = tokio::time::sleep(retry.delay(attempt)) => {}
                }
            }
        }
    }

    reporter.emit(DownloadEvent::Verifying {
        file: job.file.clone(),
    });
    verify_partial(job, &expected, hasher)?;
    std::fs::rename(&job.partial, &job.blob)
        .map_err(|err| HubError::io("moving the finished download to", &job.blob, err))?;
    reporter.finish_file();
    Ok(())
}

/// Length of a usable partial; one longer than the file cannot be a prefix
/// of it and is discarded.
fn existing_partial_len(partial: &Path, size: u64) -> Result<u64, HubError> {
    match std::fs::metadata(partial) {
        Ok(meta) if meta.len() <= size => Ok(meta.len()),
        Ok(_) => {
            remove_partial(partial)?;
            Ok(0)
        }
        Err(_) => Ok(0),
    }
}

async fn hash_partial(
    mut hasher: ContentHasher,
    partial: &Path,
    len: u64,
) -> Result<ContentHasher, HubError> {
    let path = partial.to_path_buf();
    tokio::task::spawn_blocking(move || {
        hasher
            .update_from_file(&path, len)
            .map(|()| hasher)
            .map_err(|err| HubError::io("reading the partial download", path, err))
    })
    .await
    .expect("hashing task does not panic")
}

/// One GET from `offset` to the end, appending to the partial. Returns
/// `Ok` when the body ended with the file complete.
async fn fetch_range(
    http: &HubHttp,
    job: &BlobJob,
    offset: &mut u64,
    hasher: &mut ContentHasher,
    reporter: &mut ProgressReporter,
    cancel: &CancelToken,
) -> Result<(), Stop> {
    let response = tokio::select! {
        biased;
        _ = cancel.cancelled() => return Err(Stop::Cancelled),
        response = http.get_from(&job.url, *offset) => response,
    };
    let mut response = response.map_err(|err| Stop::Retryable(error_chain(&err.without_url())))?;
    let status = response.status();
    match status {
        StatusCode::PARTIAL_CONTENT => check_range_start(&response, *offset)?,
        StatusCode::OK if *offset > 0 => {
            // The server ignored the Range header and sends everything.
            remove_partial(&job.partial).map_err(Stop::Fatal)?;
            *offset = 0;
            *hasher = ContentHasher::new(&ExpectedHash::from_etag(&job.etag), job.size);
            reporter.restart_file();
        }
        StatusCode::OK => {}
        StatusCode::RANGE_NOT_SATISFIABLE => {
            // Our partial disagrees with the server's file: start over.
            remove_partial(&job.partial).map_err(Stop::Fatal)?;
            *offset = 0;
            *hasher = ContentHasher::new(&ExpectedHash::from_etag(&job.etag), job.size);
            reporter.restart_file();
            return Err(Stop::Retryable(
                "the server refused the resume range".into(),
            ));
        }
        status if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS => {
            return Err(Stop::Retryable(format!("HTTP {status}")));
        }
        _ => {
            return Err(Stop::Fatal(http.status_error(
                &response,
                &job.repo,
                &job.revision,
                Some(&job.file),
            )))
        }
    }

    let mut out = open_partial(&job.partial, *offset > 0)
        .await
        .map_err(Stop::Fatal)?;
    let result = loop {
        let chunk = tokio::select! {
            biased;
            _ = cancel.cancelled() => break Err(Stop::Cancelled),
            chunk = response.chunk() => chunk,
        };
        let bytes = match chunk {
            Ok(Some(bytes)) => bytes,
            Ok(None) if *offset < job.size => {
                break Err(Stop::Retryable(format!(
                    "the connection closed after {} of {} bytes",
                    *offset, job.size
                )));
            }
            Ok(None) => break Ok(()),
            Err(err) => break Err(Stop::Retryable(error_chain(&err.without_url()))),
        };
        let len = bytes.len() as u64;
        if *offset + len > job.size {
            break Err(Stop::Fatal(HubError::SizeMismatch {
                file: job.file.clone(),
                expected: job.size,
                actual: *offset + len,
            }));
        }
        if let Err(err) = out.write_all(&bytes).await {
            break Err(Stop::Fatal(HubError::io("writing", &job.partial, err)));
        }
        hasher.update(&bytes);
        *offset += len;
        reporter.advance(len);
    };
    // Every exit flushes, so the partial's length on disk is what was counted.
    let flushed = out.flush().await;
    drop(out);
    if let Err(Stop::Fatal(HubError::SizeMismatch { .. })) = &result {
        remove_partial(&job.partial).map_err(Stop::Fatal)?;
    }
    flushed.map_err(|err| Stop::Fatal(HubError::io("writing", &job.partial, err)))?;
    result
}

fn check_range_start(response: &Response, offset: u64) -> Result<(), Stop> {
    let start = response
        .headers()
        .get(CONTENT_RANGE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("bytes "))
        .and_then(|value| value.split('-').next())
        .and_then(|start| start.trim().parse::<u64>().ok());
    if start == Some(offset) {
        Ok(())
    } else {
        Err(Stop::Fatal(HubError::Protocol {
            url: response.url().to_string(),
            reason: format!("asked for bytes from {offset}, got a range starting at {start:?}"),
        }))
    }
}

async fn open_partial(partial: &Path, append: bool) -> Result<tokio::fs::File, HubError> {
    let mut options = tokio::fs::OpenOptions::new();
    if append {
        options.append(true);
    } else {
        options.write(true).create(true).truncate(true);
    }
    options
        .open(partial)
        .await
        .map_err(|err| HubError::io("opening the partial download", partial, err))
}

fn remove_partial(partial: &Path) -> Result<(), HubError> {
    match std::fs::remove_file(partial) {
        Err(err) if err.kind() != std::io::ErrorKind::NotFound => Err(HubError::io(
            "deleting the bad partial download",
            partial,
            err,
        )),
        _ => Ok(()),
    }
}

/// Size then hash; on any mismatch the partial is deleted so that nothing
/// corrupt can ever be taken for a finished file.
fn verify_partial(
    job: &BlobJob,
    expected: &ExpectedHash,
    hasher: ContentHasher,
) -> Result<(), HubError> {
    if job.size == 0 && !job.partial.exists() {
        // An empty file needs no transfer, but still a blob to link to.
        std::fs::write(&job.partial, b"")
            .map_err(|err| HubError::io("writing", &job.partial, err))?;
    }
    let actual_size = std::fs::metadata(&job.partial)
        .map_err(|err| HubError::io("checking the download", &job.partial, err))?
        .len();
    if actual_size != job.size {
        remove_partial(&job.partial)?;
        return Err(HubError::SizeMismatch {
            file: job.file.clone(),
            expected: job.size,
            actual: actual_size,
        });
    }
    if let (Some(expected), Some(actual)) = (expected.hex(), hasher.finish()) {
        if expected != actual {
            remove_partial(&job.partial)?;
            return Err(HubError::ChecksumMismatch {
                file: job.file.clone(),
                expected: expected.to_string(),
                actual,
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_delay_grows_and_is_capped() {
        let policy = RetryPolicy {
            max_retries: 5,
            first_delay: Duration::from_millis(500),
        };
        assert_eq!(policy.delay(1), Duration::from_millis(500));
        assert_eq!(policy.delay(2), Duration::from_secs(1));
        assert_eq!(policy.delay(3), Duration::from_secs(2));
        assert_eq!(policy.delay(20), Duration::from_secs(30));
    }

    #[test]
    fn oversized_partial_is_discarded() {
        let dir = tempfile::tempdir().unwrap();
        let partial = dir.path().join("e.incomplete");
        std::fs::write(&partial, b"0123456789").unwrap();
        assert_eq!(existing_partial_len(&partial, 20).unwrap(), 10);
        assert_eq!(existing_partial_len(&partial, 5).unwrap(), 0);
        assert!(!partial.exists());
    }

    #[test]
    fn failed_check_deletes_the_partial() {
        let dir = tempfile::tempdir().unwrap();
        let job = BlobJob {
            repo: "o/m".into(),
            revision: "main".into(),
            file: "model.safetensors".into(),
            url: Url::parse("http://127.0.0.1:1/x").unwrap(),
            etag: "a".repeat(64),
            size: 5,
            blob: dir.path().join("blob"),
            partial: dir.path().join("blob.incomplete"),
        };
        std::fs::write(&job.partial, b"hello").unwrap();
        let expected = ExpectedHash::from_etag(&job.etag);
        let mut hasher = ContentHasher::new(&expected, 5);
        hasher.update(b"hello");
        let err = verify_partial(&job, &expected, hasher).unwrap_err();
        match err {
            HubError::ChecksumMismatch {
                file,
                expected,
                actual,
            } => {
                assert_eq!(file, "model.safetensors");
                assert_eq!(expected, "a".repeat(64));
                assert_eq!(actual.len(), 64);
            }
            other => panic!("unexpected {other:?}"),
        }
        assert!(!job.partial.exists() && !job.blob.exists());
    }
}
