//! Writing a file so that readers only ever see the old content or the whole new
//! content: write a temporary file beside it, flush it to disk, then rename it over the
//! target (atomic on one filesystem). A failed export leaves no half file behind.

use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Writes `path` with what `body` writes; on any error the target is untouched and the
/// temporary file is removed.
pub fn write_atomically(
    path: &Path,
    body: impl FnOnce(&mut dyn Write) -> io::Result<()>,
) -> io::Result<()> {
    let temp = temp_path(path);
    let result = write_then_rename(&temp, path, body);
    if result.is_err() {
        // Best effort: the temporary may not exist if creating it failed.
        let _ = fs::remove_file(&temp);
    }
    result
}

fn write_then_rename(
    temp: &Path,
    path: &Path,
    body: impl FnOnce(&mut dyn Write) -> io::Result<()>,
) -> io::Result<()> {
    let mut writer = BufWriter::new(File::create(temp)?);
    body(&mut writer)?;
    let file = writer.into_inner().map_err(|e| e.into_error())?;
    file.sync_all()?;
    drop(file);
    fs::rename(temp, path)
}

/// `.NAME.tmp-PID-N` in the target's folder: the same filesystem, so the rename is
/// atomic, and hidden, so a half-written file does not look like an export.
fn temp_path(path: &Path) -> PathBuf {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    path.with_file_name(format!(".{name}.tmp-{}-{n}", std::process::id()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Passes `limit` bytes through, then fails: a disk that fills up mid-export.
    struct FailAfter<'a> {
        inner: &'a mut dyn Write,
        left: usize,
    }

    impl Write for FailAfter<'_> {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            if self.left == 0 {
                return Err(io::Error::other("disk full (injected)"));
            }
            let n = buf.len().min(self.left);
            self.left -= n;
            self.inner.write(&buf[..n])
        }
        fn flush(&mut self) -> io::Result<()> {
            self.inner.flush()
        }
    }

    fn folder_names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn a_failure_mid_write_keeps_the_old_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run.jsonl");
        fs::write(&path, "old content\n").unwrap();
        let big = "x".repeat(100_000);
        let err = write_atomically(&path, |w| {
            let mut failing = FailAfter {
                inner: w,
                left: 50_000,
            };
            failing.write_all(big.as_bytes())
        })
        .unwrap_err();
        assert!(err.to_string().contains("injected"));
        assert_eq!(fs::read_to_string(&path).unwrap(), "old content\n");
        assert_eq!(
            folder_names(dir.path()),
            ["run.jsonl"],
            "no temporary left behind"
        );
    }

    #[test]
    fn a_failure_leaves_nothing_when_there_was_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("report.html");
        write_atomically(&path, |w| {
            w.write_all(b"<html>")?;
            Err(io::Error::other("renderer failed"))
        })
        .unwrap_err();
        assert!(folder_names(dir.path()).is_empty());
    }

    #[test]
    fn a_success_replaces_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("runs.csv");
        fs::write(&path, "old").unwrap();
        write_atomically(&path, |w| w.write_all(b"new")).unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "new");
        assert_eq!(folder_names(dir.path()), ["runs.csv"]);
    }
}
