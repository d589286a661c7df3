//! Run ids and timestamps, without a date-time dependency: UTC only, which is all a log
//! needs, and ids that sort by time so a history listing is in order without parsing.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch, strictly increasing within this process so that
/// two ids made in the same millisecond still differ.
fn unique_millis() -> u64 {
    static LAST: AtomicU64 = AtomicU64::new(0);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let mut last = LAST.load(Ordering::Relaxed);
    loop {
        let next = now.max(last + 1);
        match LAST.compare_exchange_weak(last, next, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => return next,
            Err(seen) => last = seen,
        }
    }
}

/// A new id: `PREFIX-YYYYMMDD-HHMMSS-mmm[-SUFFIX]`, e.g. `run-20260509-085300-123-nasd`.
pub fn new_id(prefix: &str, suffix: Option<&str>) -> String {
    let millis = unique_millis();
    let (date, time) = civil_parts(millis / 1000);
    let mut id = format!(
        "{prefix}-{:04}{:02}{:02}-{:02}{:02}{:02}-{:03}",
        date.0,
        date.1,
        date.2,
        time.0,
        time.1,
        time.2,
        millis % 1000
    );
    if let Some(suffix) = suffix {
        id.push('-');
        id.push_str(suffix);
    }
    id
}

/// The current time as RFC 3339 UTC with milliseconds: `2026-05-09T08:53:00.123Z`.
pub fn now_rfc3339() -> String {
    let millis = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    rfc3339(millis)
}

pub fn rfc3339(unix_millis: u64) -> String {
    let ((y, mo, d), (h, mi, s)) = civil_parts(unix_millis / 1000);
    format!(
        "{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{:03}Z",
        unix_millis % 1000
    )
}

type Date = (i64, u32, u32);
type Time = (u32, u32, u32);

/// Seconds since the epoch as a UTC calendar date and time of day.
fn civil_parts(unix_seconds: u64) -> (Date, Time) {
    let days = (unix_seconds / 86_400) as i64;
    let secs = (unix_seconds % 86_400) as u32;
    (
        civil_from_days(days),
        (secs / 3600, secs / 60 % 60, secs % 60),
    )
}

/// Howard Hinnant's `civil_from_days`: days since 1970-01-01 to (year, month, day).
fn civil_from_days(days: i64) -> Date {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_by_hand() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000Z");
        // 2000-02-29 (a leap day of a century leap year) 12:34:56.789.
        assert_eq!(rfc3339(951_827_696_789), "2000-02-29T12:34:56.789Z");
        assert_eq!(rfc3339(1_778_316_780_123), "2026-05-09T08:53:00.123Z");
    }

    #[test]
    fn ids_are_unique_and_sortable() {
        let ids: Vec<String> = (0..50).map(|_| new_id("run", Some("plain"))).collect();
        let mut sorted = ids.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted, ids);
        assert!(ids[0].starts_with("run-2") && ids[0].ends_with("-plain"));
    }
}
