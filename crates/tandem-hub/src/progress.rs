//! Download events (serializable, for a desktop app to forward to its UI) and
//! the bookkeeping behind them: per-file and overall bytes, rate and ETA.

use std::collections::VecDeque;
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;

/// One file of the download plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlannedFile {
    pub file: String,
    pub size: u64,
    /// Already complete in the cache; it will not be transferred.
    pub cached: bool,
}

/// What a download is doing, in order: `Started`, then per file either
/// `FileCached` or `FileStarted`, maybe `Resumed`, `Progress`…, `Verifying`,
/// `FileDone`, and finally `Done` (or `Cancelled` before an error return).
/// Serialized with a `"type"` tag in snake_case, e.g.
/// `{"type":"progress","file":"model.safetensors",…}`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum DownloadEvent {
    Started {
        repo: String,
        revision: String,
        commit: String,
        files: Vec<PlannedFile>,
        total_bytes: u64,
        /// Bytes of the files already complete in the cache.
        cached_bytes: u64,
    },
    FileCached {
        file: String,
        size: u64,
    },
    FileStarted {
        file: String,
        size: u64,
    },
    /// A partial download of this file was found and is continued.
    Resumed {
        file: String,
        from_offset: u64,
    },
    Progress {
        file: String,
        file_done: u64,
        file_total: u64,
        /// Overall bytes in place, counting files that were already cached.
        done: u64,
        total: u64,
        /// Recent transfer rate.
        bytes_per_sec: u64,
        /// Until the whole download is done, at the recent rate.
        eta_secs: Option<u64>,
    },
    /// The connection failed mid-file; trying again from `from_offset`.
    Retrying {
        file: String,
        attempt: u32,
        from_offset: u64,
        reason: String,
    },
    /// Hashing the finished file against its etag.
    Verifying {
        file: String,
    },
    FileDone {
        file: String,
        size: u64,
    },
    /// Stopped by the cancel token; the partial is kept for the next call.
    Cancelled {
        file: String,
        file_done: u64,
    },
    /// The hub was unreachable (or `HF_HUB_OFFLINE` is set) and the complete
    /// cached snapshot is used instead.
    UsingCache {
        repo: String,
        commit: String,
        reason: String,
    },
    Done {
        repo: String,
        commit: String,
        snapshot_dir: PathBuf,
        /// Bytes transferred by this call.
        downloaded_bytes: u64,
        elapsed_secs: f64,
    },
}

/// Where events go: a callback, a channel, or nowhere.
#[derive(Clone, Default)]
pub struct EventSink(Option<Arc<dyn Fn(DownloadEvent) + Send + Sync>>);

impl EventSink {
    pub fn new(callback: impl Fn(DownloadEvent) + Send + Sync + 'static) -> Self {
        EventSink(Some(Arc::new(callback)))
    }

    /// Drops every event.
    pub fn none() -> Self {
        EventSink(None)
    }

    /// Sends each event into a tokio channel; a closed receiver is ignored so
    /// that a UI going away does not abort the download.
    pub fn channel(sender: tokio::sync::mpsc::UnboundedSender<DownloadEvent>) -> Self {
        Self::new(move |event| {
            let _ = sender.send(event);
        })
    }

    pub(crate) fn emit(&self, event: DownloadEvent) {
        if let Some(callback) = &self.0 {
            callback(event);
        }
    }
}

impl fmt::Debug for EventSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_some() {
            "EventSink(callback)"
        } else {
            "EventSink(none)"
        })
    }
}

/// Transfer rate over a sliding window, so the ETA follows the current
/// speed rather than the average since the start.
#[derive(Debug)]
pub(crate) struct RateMeter {
    window: Duration,
    started: Instant,
    bytes_total: u64,
    samples: VecDeque<(Instant, u64)>,
}

impl RateMeter {
    pub(crate) fn new(started: Instant, window: Duration) -> Self {
        let mut samples = VecDeque::new();
        samples.push_back((started, 0));
        RateMeter {
            window,
            started,
            bytes_total: 0,
            samples,
        }
    }

    pub(crate) fn record(&mut self, now: Instant, bytes: u64) {
        self.bytes_total += bytes;
        self.samples.push_back((now, self.bytes_total));
        // Keep one sample older than the window as the rate's baseline.
        while self.samples.len() > 2 && now.duration_since(self.samples[1].0) > self.window {
            self.samples.pop_front();
        }
    }

    pub(crate) fn bytes_per_sec(&self, now: Instant) -> u64 {
        let (since, base) = match self.samples.front() {
            Some(&(at, bytes)) if now.duration_since(at) >= Duration::from_millis(200) => {
                (at, bytes)
            }
            _ => (self.started, 0),
        };
        let secs = now.duration_since(since).as_secs_f64();
        if secs <= 0.0 {
            return 0;
        }
        ((self.bytes_total - base) as f64 / secs) as u64
    }
}

/// Turns transferred byte counts into throttled `Progress` events.
pub(crate) struct ProgressReporter {
    sink: EventSink,
    interval: Duration,
    total: u64,
    /// Bytes of files finished or found cached.
    finished: u64,
    file: String,
    file_done: u64,
    file_total: u64,
    downloaded: u64,
    started: Instant,
    meter: RateMeter,
    last_emit: Option<Instant>,
}

impl ProgressReporter {
    pub(crate) fn new(sink: EventSink, interval: Duration, total: u64, cached: u64) -> Self {
        let started = Instant::now();
        ProgressReporter {
            sink,
            interval,
            total,
            finished: cached,
            file: String::new(),
            file_done: 0,
            file_total: 0,
            downloaded: 0,
            started,
            meter: RateMeter::new(started, Duration::from_secs(5)),
            last_emit: None,
        }
    }

    pub(crate) fn emit(&self, event: DownloadEvent) {
        self.sink.emit(event);
    }

    pub(crate) fn start_file(&mut self, file: &str, size: u64) {
        self.file = file.to_string();
        self.file_done = 0;
        self.file_total = size;
        self.last_emit = None;
        self.emit(DownloadEvent::FileStarted {
            file: file.to_string(),
            size,
        });
    }

    /// Bytes already on disk for the current file (a kept partial).
    pub(crate) fn resume_file_at(&mut self, offset: u64) {
        self.file_done = offset;
        self.emit(DownloadEvent::Resumed {
            file: self.file.clone(),
            from_offset: offset,
        });
    }

    /// The partial had to be thrown away (the server ignored the range).
    pub(crate) fn restart_file(&mut self) {
        self.file_done = 0;
    }

    pub(crate) fn advance(&mut self, bytes: u64) {
        let now = Instant::now();
        self.file_done += bytes;
        self.downloaded += bytes;
        self.meter.record(now, bytes);
        let due = self
            .last_emit
            .is_none_or(|last| now.duration_since(last) >= self.interval);
        if due {
            self.emit_progress(now);
        }
    }

    pub(crate) fn finish_file(&mut self) {
        self.emit_progress(Instant::now());
        self.finished += self.file_total;
        self.emit(DownloadEvent::FileDone {
            file: self.file.clone(),
            size: self.file_total,
        });
        self.file_done = 0;
        self.file_total = 0;
    }

    pub(crate) fn downloaded(&self) -> u64 {
        self.downloaded
    }

    pub(crate) fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    fn emit_progress(&mut self, now: Instant) {
        self.last_emit = Some(now);
        let done = (self.finished + self.file_done).min(self.total);
        let bytes_per_sec = self.meter.bytes_per_sec(now);
        let eta_secs = eta(self.total - done, bytes_per_sec);
        self.emit(DownloadEvent::Progress {
            file: self.file.clone(),
            file_done: self.file_done,
            file_total: self.file_total,
            done,
            total: self.total,
            bytes_per_sec,
            eta_secs,
        });
    }
}

fn eta(remaining: u64, bytes_per_sec: u64) -> Option<u64> {
    if remaining == 0 {
        Some(0)
    } else if bytes_per_sec == 0 {
        None
    } else {
        Some(remaining.div_ceil(bytes_per_sec))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[test]
    fn rate_follows_recent_speed() {
        let t0 = Instant::now();
        let mut meter = RateMeter::new(t0, Duration::from_secs(5));
        // 1 MB/s for 10 s, then 4 MB/s for 5 s.
        for s in 1..=10 {
            meter.record(t0 + Duration::from_secs(s), 1_000_000);
        }
        for s in 11..=15 {
            meter.record(t0 + Duration::from_secs(s), 4_000_000);
        }
        let rate = meter.bytes_per_sec(t0 + Duration::from_secs(15));
        assert!((3_000_000..=4_000_000).contains(&rate), "{rate}");
    }

    #[test]
    fn rate_is_zero_before_anything_arrives() {
        let t0 = Instant::now();
        let meter = RateMeter::new(t0, Duration::from_secs(5));
        assert_eq!(meter.bytes_per_sec(t0), 0);
    }

    #[test]
    fn eta_rounds_up_and_is_unknown_without_rate() {
        assert_eq!(eta(10, 3), Some(4));
        assert_eq!(eta(10, 0), None);
        assert_eq!(eta(0, 0), Some(0));
    }

    #[test]
    fn reporter_counts_cached_and_resumed_bytes() {
        let events = Arc::new(Mutex::new(Vec::new()));
        let sink_events = events.clone();
        let sink = EventSink::new(move |e| sink_events.lock().unwrap().push(e));
        let mut reporter = ProgressReporter::new(sink, Duration::ZERO, 100, 40);
        reporter.start_file("w", 60);
        reporter.resume_file_at(10);
        reporter.advance(20);
        reporter.advance(30);
        reporter.finish_file();
        let events = events.lock().unwrap();
        let dones: Vec<u64> = events
            .iter()
            .filter_map(|e| match e {
                DownloadEvent::Progress { done, .. } => Some(*done),
                _ => None,
            })
            .collect();
        assert_eq!(dones, vec![70, 100, 100]);
        assert_eq!(reporter.downloaded(), 50);
        assert!(matches!(
            events.last(),
            Some(DownloadEvent::FileDone { size: 60, .. })
        ));
    }

    #[test]
    fn events_serialize_with_a_type_tag() {
        let json = serde_json::to_value(DownloadEvent::Resumed {
            file: "model.safetensors".into(),
            from_offset: 7,
        })
        .unwrap();
        assert_eq!(
            json,
            serde_json::json!({"type": "resumed", "file": "model.safetensors", "from_offset": 7})
        );
    }
}
