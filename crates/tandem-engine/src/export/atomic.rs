//! Writing a file so that readers only ever see the old content or the whole new
//! content: write a temporary file beside it, flush it to disk, then rename it over the
//! target (atomic on one filesystem) and flush the folder, so the rename itself survives
//! a crash. A failed export leaves no half file behind.
//!
//! The temporary is created with `create_new`: a name someone planted in the folder
//! (a symlink to another file, say) is never opened, let alone truncated; the next name
//! is tried instead.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Temporary names tried before giving up (each taken name is a file that exists).
const TEMP_ATTEMPTS: u64 = 16;

/// Writes `path` with what `body` writes; on any error the target is untouched and the
/// temporary file is removed.
pub fn write_atomically(
    path: &Path,
    body: impl FnOnce(&mut dyn Write) -> io::Result<()>,
) -> io::Result<()> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let first = COUNTER.fetch_add(TEMP_ATTEMPTS, Ordering::Relaxed);
    write_atomically_via(
        path,
        (first..first + TEMP_ATTEMPTS).map(|n| temp_path(path, n)),
        body,
    )
}

fn write_atomically_via(
    path: &Path,
    temp_names: impl Iterator<Item = PathBuf>,
    body: impl FnOnce(&mut dyn Write) -> io::Result<()>,
) -> io::Result<()> {
    let (temp, file) = create_temp(path, temp_names)?;
    let result = write_then_rename(file, &temp, path, body);
    if result.is_err() {
        // Best effort: the rename may have happened before the folder sync failed.
        let _ = fs::remove_file(&temp);
    }
    result
}

/// The first of `names` that did not exist, created empty and opened for writing.
fn create_temp(path: &Path, names: impl Iterator<Item = PathBuf>) -> io::Result<(PathBuf, File)> {
    for name in names {
        match OpenOptions::new().write(true).create_new(true).open(&name) {
            Ok(file) => return Ok((name, file)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(io::Error::new(
        io::ErrorKind::AlreadyExists,
        format!(
            "{}: every temporary name beside it is taken",
            path.display()
        ),
    ))
}

fn write_then_rename(
    file: File,
    temp: &Path,
    path: &Path,
    body: impl FnOnce(&mut dyn Write) -> io::Result<()>,
) -> io::Result<()> {
    let mut writer = BufWriter::new(file);
    body(&mut writer)?;
    let file = writer.into_inner().map_err(|e| e.into_error())?;
    file.sync_all()?;
    drop(file);
    fs::rename(temp, path)?;
    sync_folder(path)
}

/// Flushes the folder holding `path`, which makes the rename durable (Unix; elsewhere the
/// rename is as durable as the platform makes it).
fn sync_folder(path: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        let folder = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        File::open(folder)?.sync_all()?;
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

/// `.NAME.tmp-PID-N` in the target's folder: the same filesystem, so the rename is
/// atomic, and hidden, so a half-written file does not look like an export.
fn temp_path(path: &Path, n: u64) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
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

    #[cfg(unix)]
    #[test]
    fn a_planted_temporary_name_is_skipped_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim.txt");
        fs::write(&victim, "precious").unwrap();
        let path = dir.path().join("run.jsonl");
        // Someone put a symlink to the victim where the first temporary would go.
        let planted = temp_path(&path, 0);
        std::os::unix::fs::symlink(&victim, &planted).unwrap();
        let names = (0..3).map(|n| temp_path(&path, n));
        write_atomically_via(&path, names, |w| w.write_all(b"new log")).unwrap();
        assert_eq!(fs::read_to_string(&victim).unwrap(), "precious");
        assert_eq!(fs::read_to_string(&path).unwrap(), "new log");
        assert!(fs::symlink_metadata(&path).unwrap().file_type().is_file());
        assert!(fs::symlink_metadata(&planted)
            .unwrap()
            .file_type()
            .is_symlink());
    }

    #[test]
    fn every_name_taken_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("runs.csv");
        for n in 0..2 {
            fs::write(temp_path(&path, n), "someone else's").unwrap();
        }
        let err = write_atomically_via(&path, (0..2).map(|n| temp_path(&path, n)), |w| {
            w.write_all(b"x")
        })
        .unwrap_err();
        assert!(err.to_string().contains("runs.csv"), "{err}");
        assert!(!path.exists());
    }
}
