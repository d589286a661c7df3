//! Byte and parameter counts written the way people read them.

pub use tandem_hub::human_bytes;

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
    fn params_read_like_model_names() {
        assert_eq!(human_params(134_515_008), "135M");
        assert_eq!(human_params(1_543_714_304), "1.5B");
        assert_eq!(human_params(123_200), "123K");
        assert_eq!(human_params(12), "12");
    }
}
