//! One writer per blob: two downloads of the same file (two app windows, or
//! Tandem and a Python tool) would otherwise append to the same partial.
//! The lock file is the one `huggingface_hub` uses, and both sides use
//! `flock`-style whole-file locks, so they exclude each other.

use std::fs::{File, OpenOptions, TryLockError};
use std::path::Path;
use std::time::Duration;

use crate::{CancelToken, HubError};

/// Held while a blob is written; released when dropped.
#[derive(Debug)]
pub(crate) struct BlobLock {
    _file: File,
}

pub(crate) async fn lock_blob(path: &Path, cancel: &CancelToken) -> Result<BlobLock, HubError> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .map_err(|err| HubError::io("creating lock folder", parent, err))?;
    }
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(|err| HubError::io("opening lock file", path, err))?;
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(BlobLock { _file: file }),
            Err(TryLockError::WouldBlock) => {}
            Err(TryLockError::Error(err)) => {
                return Err(HubError::io("locking", path, err));
            }
        }
        // Polling keeps the wait cancellable without a blocking thread.
        tokio::select! {
            _ = cancel.cancelled() => return Err(HubError::Cancelled),
            _ = tokio::time::sleep(Duration::from_millis(200)) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn second_locker_waits_until_cancelled() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".locks/models--a--b/e.lock");
        let cancel = CancelToken::new();
        let first = lock_blob(&path, &cancel).await.unwrap();

        let waiting = CancelToken::new();
        waiting.cancel();
        assert!(matches!(
            lock_blob(&path, &waiting).await,
            Err(HubError::Cancelled)
        ));

        drop(first);
        lock_blob(&path, &cancel).await.unwrap();
    }
}
