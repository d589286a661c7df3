//! Stopping a download from another task or thread (a UI's "cancel" button).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use tokio::sync::Notify;

/// A cloneable flag; cancelling any clone cancels them all. A cancelled
/// download keeps its `.incomplete` partial so the next call resumes it.
#[derive(Debug, Clone, Default)]
pub struct CancelToken {
    inner: Arc<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    cancelled: AtomicBool,
    notify: Notify,
}

impl CancelToken {
    pub fn new() -> Self {
        Self::default()
    }

    /// Asks every download using this token to stop soon.
    pub fn cancel(&self) {
        self.inner.cancelled.store(true, Ordering::SeqCst);
        self.inner.notify.notify_waiters();
    }

    pub fn is_cancelled(&self) -> bool {
        self.inner.cancelled.load(Ordering::SeqCst)
    }

    /// Completes once [`cancel`](Self::cancel) has been called, so a stalled
    /// network read can be abandoned without waiting for its timeout.
    pub async fn cancelled(&self) {
        loop {
            // Registered before the flag check: `notify_waiters` wakes every
            // `Notified` created before it, so no cancel can slip between.
            let notified = self.inner.notify.notified();
            if self.is_cancelled() {
                return;
            }
            notified.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn cancel_wakes_a_waiting_task() {
        let token = CancelToken::new();
        let waiter = token.clone();
        let task = tokio::spawn(async move { waiter.cancelled().await });
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert!(!token.is_cancelled());
        token.cancel();
        tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .expect("waiter woke")
            .unwrap();
    }

    #[tokio::test]
    async fn already_cancelled_returns_at_once() {
        let token = CancelToken::new();
        token.cancel();
        token.cancelled().await;
        assert!(token.clone().is_cancelled());
    }
}
