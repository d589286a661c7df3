//! Shows a download's events: on a terminal, an overall bar and a bar for
//! the current file (bytes, total, rate, ETA) with messages above them;
//! elsewhere (logs, tests), one plain line per step.

use std::io::IsTerminal;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use tandem_hub::{DownloadEvent, EventSink};
use tandem_pairs::units::human_bytes;

/// Renders the events of one repo's download.
#[derive(Clone)]
pub struct PullProgress {
    inner: Arc<Mutex<State>>,
}

struct State {
    /// Bars are drawn (stderr is a terminal); else plain lines are printed.
    interactive: bool,
    bars: MultiProgress,
    overall: Option<ProgressBar>,
    file: Option<ProgressBar>,
}

impl PullProgress {
    pub fn new() -> PullProgress {
        let interactive = std::io::stderr().is_terminal();
        let target = if interactive {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        };
        PullProgress {
            inner: Arc::new(Mutex::new(State {
                interactive,
                bars: MultiProgress::with_draw_target(target),
                overall: None,
                file: None,
            })),
        }
    }

    /// Where the hub client sends its events.
    pub fn sink(&self) -> EventSink {
        let inner = self.inner.clone();
        EventSink::new(move |event| {
            if let Ok(mut state) = inner.lock() {
                state.show(event);
            }
        })
    }

    /// Removes any bars left (after an error), keeping the messages.
    pub fn clear(&self) {
        if let Ok(mut state) = self.inner.lock() {
            state.clear_bars();
        }
    }
}

impl State {
    fn show(&mut self, event: DownloadEvent) {
        match event {
            DownloadEvent::Started {
                repo,
                total_bytes,
                cached_bytes,
                files,
                ..
            } => {
                if cached_bytes >= total_bytes {
                    self.line(format!(
                        "{repo} is already downloaded ({}); nothing to fetch.",
                        human_bytes(total_bytes)
                    ));
                    return;
                }
                let missing = files.iter().filter(|f| !f.cached).count();
                self.line(format!(
                    "Downloading {repo}: {} in {missing} file{} ({} already here).",
                    human_bytes(total_bytes - cached_bytes),
                    if missing == 1 { "" } else { "s" },
                    human_bytes(cached_bytes),
                ));
                let bar = self.bars.add(ProgressBar::new(total_bytes));
                bar.set_style(bar_style(
                    "{prefix:>8} [{bar:30.cyan/blue}] {bytes}/{total_bytes} {msg}",
                ));
                bar.set_prefix("total");
                bar.set_position(cached_bytes);
                self.overall = Some(bar);
            }
            DownloadEvent::FileStarted { file, size } => {
                if !self.interactive {
                    self.line(format!("  fetching {file} ({})", human_bytes(size)));
                }
                let bar = self.bars.add(ProgressBar::new(size));
                bar.set_style(bar_style(
                    "{prefix:>8} [{bar:30}] {bytes}/{total_bytes} {msg}",
                ));
                bar.set_prefix("file");
                bar.set_message(file);
                bar.enable_steady_tick(Duration::from_millis(250));
                self.file = Some(bar);
            }
            DownloadEvent::Resumed { file, from_offset } => {
                self.line(format!(
                    "  {file}: resumed from {} (kept from an earlier try)",
                    human_bytes(from_offset)
                ));
                if let Some(bar) = &self.file {
                    bar.set_position(from_offset);
                }
            }
            DownloadEvent::Progress {
                file,
                file_done,
                file_total,
                done,
                bytes_per_sec,
                eta_secs,
                ..
            } => {
                let rate = rate_text(bytes_per_sec);
                if let Some(bar) = &self.file {
                    bar.set_position(file_done);
                    let left = file_total.saturating_sub(file_done);
                    let eta = (bytes_per_sec > 0).then(|| left.div_ceil(bytes_per_sec));
                    bar.set_message(format!("{file}  {rate}, {}", eta_text(eta)));
                }
                if let Some(bar) = &self.overall {
                    bar.set_position(done);
                    bar.set_message(format!("{rate}, {}", eta_text(eta_secs)));
                }
            }
            DownloadEvent::Retrying {
                file,
                attempt,
                from_offset,
                reason,
            } => self.line(format!(
                "  {file}: connection dropped ({reason}); retry {attempt} from {}",
                human_bytes(from_offset)
            )),
            DownloadEvent::Verifying { file } => {
                if let Some(bar) = &self.file {
                    bar.set_message(format!("{file}  checking…"));
                }
            }
            DownloadEvent::FileDone { .. } => {
                if let Some(bar) = self.file.take() {
                    bar.finish_and_clear();
                    self.bars.remove(&bar);
                }
            }
            DownloadEvent::FileCached { .. } => {}
            DownloadEvent::Cancelled { file, file_done } => {
                self.clear_bars();
                self.line(format!(
                    "Stopped during {file} at {}.",
                    human_bytes(file_done)
                ));
            }
            DownloadEvent::UsingCache { repo, reason, .. } => self.line(format!(
                "Can't reach the hub ({reason}); using the copy of {repo} already downloaded."
            )),
            DownloadEvent::Done {
                repo,
                downloaded_bytes,
                elapsed_secs,
                ..
            } => {
                self.clear_bars();
                if downloaded_bytes > 0 {
                    self.line(format!(
                        "Downloaded {repo}: {} in {elapsed_secs:.1} s.",
                        human_bytes(downloaded_bytes)
                    ));
                }
            }
        }
    }

    /// A message above the bars (or a plain line).
    fn line(&self, text: String) {
        if self.interactive {
            let _ = self.bars.println(text);
        } else {
            eprintln!("{text}");
        }
    }

    fn clear_bars(&mut self) {
        for bar in [self.file.take(), self.overall.take()]
            .into_iter()
            .flatten()
        {
            bar.finish_and_clear();
            self.bars.remove(&bar);
        }
    }
}

fn bar_style(template: &str) -> ProgressStyle {
    ProgressStyle::with_template(template)
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ")
}

fn rate_text(bytes_per_sec: u64) -> String {
    format!("{}/s", human_bytes(bytes_per_sec))
}

/// "ETA 1m 05s", or "ETA ?" before a rate is known.
fn eta_text(eta_secs: Option<u64>) -> String {
    match eta_secs {
        None => "ETA ?".into(),
        Some(secs) if secs >= 3600 => format!("ETA {}h {:02}m", secs / 3600, secs % 3600 / 60),
        Some(secs) if secs >= 60 => format!("ETA {}m {:02}s", secs / 60, secs % 60),
        Some(secs) => format!("ETA {secs}s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eta_reads_naturally() {
        assert_eq!(eta_text(None), "ETA ?");
        assert_eq!(eta_text(Some(7)), "ETA 7s");
        assert_eq!(eta_text(Some(65)), "ETA 1m 05s");
        assert_eq!(eta_text(Some(3 * 3600 + 120)), "ETA 3h 02m");
    }
}
