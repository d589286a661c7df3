//! Refusing to start a download that cannot fit, instead of failing hours in
//! with a full disk.

use std::path::{Path, PathBuf};

use crate::HubError;

/// Errors with both numbers when `needed` bytes do not fit on the file
/// system holding `dir` (which may not exist yet).
pub(crate) fn ensure_free_space(dir: &Path, needed: u64) -> Result<(), HubError> {
    if needed == 0 {
        return Ok(());
    }
    let probe = nearest_existing_ancestor(dir);
    let available = fs4::available_space(&probe)
        .map_err(|err| HubError::io("checking free space on", &probe, err))?;
    check_free_space(&probe, needed, available)
}

pub(crate) fn check_free_space(path: &Path, needed: u64, available: u64) -> Result<(), HubError> {
    if needed > available {
        return Err(HubError::InsufficientDiskSpace {
            path: path.to_path_buf(),
            needed,
            available,
        });
    }
    Ok(())
}

fn nearest_existing_ancestor(dir: &Path) -> PathBuf {
    dir.ancestors()
        .find(|candidate| candidate.exists())
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn too_big_download_is_refused_with_both_numbers() {
        let err = check_free_space(Path::new("/cache"), 10_000, 9_999).unwrap_err();
        assert!(matches!(
            err,
            HubError::InsufficientDiskSpace {
                needed: 10_000,
                available: 9_999,
                ..
            }
        ));
        assert!(check_free_space(Path::new("/cache"), 10, 10).is_ok());
    }

    #[test]
    fn probes_the_nearest_existing_folder() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("not/yet/there");
        assert_eq!(nearest_existing_ancestor(&missing), dir.path());
        assert!(ensure_free_space(&missing, 1).is_ok());
        assert!(matches!(
            ensure_free_space(&missing, u64::MAX),
            Err(HubError::InsufficientDiskSpace { .. })
        ));
    }
}
