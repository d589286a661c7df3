//! Resident memory of this process, for the f32-versus-int8 comparison.
//!
//! Read from `/proc/self/status` (Linux): `VmRSS` is what the process holds in RAM now,
//! `VmHWM` the peak so far. Elsewhere both are `None`.

/// Current resident set size in bytes.
pub fn resident_bytes() -> Option<u64> {
    status_field("VmRSS:")
}

/// Peak resident set size in bytes since the process started.
pub fn peak_resident_bytes() -> Option<u64> {
    status_field("VmHWM:")
}

/// Reads a `Name:   123 kB` line of `/proc/self/status`.
fn status_field(name: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    parse_kb_field(&status, name)
}

fn parse_kb_field(status: &str, name: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with(name))?;
    let kb: u64 = line[name.len()..]
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    // Checked: a count that does not fit in bytes is garbage, not a wrapped-around size.
    kb.checked_mul(1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_status_lines() {
        let status = "Name:\ttandem\nVmHWM:\t  2048 kB\nVmRSS:\t    1024 kB\n";
        assert_eq!(parse_kb_field(status, "VmRSS:"), Some(1024 * 1024));
        assert_eq!(parse_kb_field(status, "VmHWM:"), Some(2048 * 1024));
        assert_eq!(parse_kb_field(status, "VmSwap:"), None);
    }

    #[test]
    fn a_kilobyte_count_too_large_for_bytes_is_none() {
        let status = format!("VmRSS:\t{} kB\n", u64::MAX / 512);
        assert_eq!(parse_kb_field(&status, "VmRSS:"), None);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn reads_this_process() {
        let rss = resident_bytes().unwrap();
        assert!(rss > 0 && peak_resident_bytes().unwrap() >= rss);
    }
}
