//! What this computer has: memory, cores, NVIDIA GPUs (from `nvidia-smi`, when present)
//! and free disk space, for the first-launch recommendation and the fit verdicts.

use std::path::Path;
use std::process::Command;

use sysinfo::{Disks, System};

use crate::ipc::{Gpu, Hardware};

pub fn hardware() -> Hardware {
    let mut system = System::new();
    system.refresh_memory();
    Hardware {
        total_memory_bytes: system.total_memory(),
        available_memory_bytes: system.available_memory(),
        cpu_cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
        gpus: nvidia_gpus(),
        os: std::env::consts::OS.to_string(),
    }
}

/// GPUs `nvidia-smi` reports; none when it is missing or fails.
fn nvidia_gpus() -> Vec<Gpu> {
    let output = Command::new("nvidia-smi")
        .args([
            "--query-gpu=name,memory.total",
            "--format=csv,noheader,nounits",
        ])
        .output();
    match output {
        Ok(out) if out.status.success() => parse_nvidia_smi(&String::from_utf8_lossy(&out.stdout)),
        _ => Vec::new(),
    }
}

/// Lines of `name, MiB`.
pub fn parse_nvidia_smi(text: &str) -> Vec<Gpu> {
    text.lines()
        .filter_map(|line| {
            let (name, mib) = line.rsplit_once(',')?;
            let mib: u64 = mib.trim().parse().ok()?;
            Some(Gpu {
                name: name.trim().to_string(),
                memory_bytes: mib * 1024 * 1024,
            })
        })
        .collect()
}

/// Free space on the disk holding `path` (the longest mount point that contains it).
pub fn free_space(path: &Path) -> Option<u64> {
    let path = std::fs::canonicalize(path)
        .ok()
        .or_else(|| path.parent().and_then(|p| std::fs::canonicalize(p).ok()))?;
    let disks = Disks::new_with_refreshed_list();
    disks
        .list()
        .iter()
        .filter(|d| path.starts_with(d.mount_point()))
        .max_by_key(|d| d.mount_point().as_os_str().len())
        .map(|d| d.available_space())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_nvidia_smi_lines() {
        let gpus = parse_nvidia_smi(
            "NVIDIA H100 80GB HBM3, 81559\nNVIDIA GeForce RTX 4090, 24564\nbad line\n",
        );
        assert_eq!(gpus.len(), 2);
        assert_eq!(gpus[0].name, "NVIDIA H100 80GB HBM3");
        assert_eq!(gpus[1].memory_bytes, 24564 * 1024 * 1024);
    }

    #[test]
    fn this_machine_has_memory() {
        let hw = hardware();
        assert!(hw.total_memory_bytes > 0 && hw.cpu_cores > 0);
    }
}
