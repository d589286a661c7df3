//! Byte and parameter counts written the way people read them.

/// Bytes in binary units, e.g. "1.5 GiB" (the unit `du -h` and file
/// managers on Linux use, and the one the hub crate's messages use).
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// Parameter counts as model names give them: "135M", "1.5B", "7.6B".
pub fn human_params(params: u64) -> String {
    let value = params as f64;
    if params >= 1_000_000_000 {
        format!("{:.1}B", value / 1e9)
    } else if params >= 1_000_000 {
        format!("{:.0}M", value / 1e6)
    } else if params >= 1_000 {
        format!("{:.0}K", value / 1e3)
    } else {
        params.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_pick_a_readable_unit() {
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(3 * 1024 * 1024 * 1024), "3.0 GiB");
    }

    #[test]
    fn params_read_like_model_names() {
        assert_eq!(human_params(134_515_008), "135M");
        assert_eq!(human_params(1_543_714_304), "1.5B");
        assert_eq!(human_params(123_200), "123K");
        assert_eq!(human_params(12), "12");
    }
}
