//! RFC 3339 time codecs (UTC with milliseconds out; `Z` or an offset in) and the `since`/`until`
//! syntax of filters: an RFC 3339 time, or a duration (the one syntax of [`super::duration`])
//! meaning that long before now.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::{Error, Result};

/// Parses `since`/`until`: RFC 3339, or a relative duration (`500ms`, `30s`, `5m`, `1h`, `2d`,
/// also combined like `1h30m`) meaning that long before `now`.
pub fn parse_time(s: &str, now: SystemTime) -> Result<SystemTime> {
    let s = s.trim();
    if let Some(d) = super::duration::parse(s) {
        return Ok(now.checked_sub(d).unwrap_or(UNIX_EPOCH));
    }
    parse_rfc3339(s).ok_or_else(|| {
        Error::invalid(format!(
            "invalid time {s:?}: use RFC 3339 (2024-01-02T15:04:05Z) or a duration like 5m, 30s, 1h"
        ))
    })
}

fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (i64::from(m) + 9) % 12;
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146097 + doe - 719468
}

fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719468;
    let era = if z >= 0 { z } else { z - 146096 } / 146097;
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Formats a time as RFC 3339 UTC with milliseconds (`2024-01-02T15:04:05.123Z`).
pub fn rfc3339(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs() as i64;
    let (y, m, day) = civil_from_days(secs.div_euclid(86400));
    let rem = secs.rem_euclid(86400);
    format!(
        "{y:04}-{m:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        d.subsec_millis()
    )
}

/// Parses RFC 3339 (`Z` or `±HH:MM`, optional fraction); `None` if malformed.
pub fn parse_rfc3339(s: &str) -> Option<SystemTime> {
    let b = s.as_bytes();
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || !matches!(b[10], b'T' | b't' | b' ')
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let part = s.get(r)?;
        if part.bytes().all(|c| c.is_ascii_digit()) {
            part.parse().ok()
        } else {
            None
        }
    };
    let (y, mo, d, h, mi, se) = (
        num(0..4)?,
        num(5..7)?,
        num(8..10)?,
        num(11..13)?,
        num(14..16)?,
        num(17..19)?,
    );
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || se > 60 {
        return None;
    }
    let mut i = 19;
    let mut nanos: u64 = 0;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == start {
            return None;
        }
        let frac = &s[start..i.min(start + 9)];
        nanos = frac.parse::<u64>().ok()? * 10u64.pow(9 - frac.len() as u32);
    }
    let offset: i64 = match b.get(i)? {
        b'Z' | b'z' if i + 1 == b.len() => 0,
        sign @ (b'+' | b'-') if i + 6 == b.len() && b[i + 3] == b':' => {
            let oh = num(i + 1..i + 3)?;
            let om = num(i + 4..i + 6)?;
            let o = oh * 3600 + om * 60;
            if *sign == b'+' { o } else { -o }
        }
        _ => return None,
    };
    let secs = days_from_civil(y, mo as u32, d as u32) * 86400 + h * 3600 + mi * 60 + se - offset;
    let secs = u64::try_from(secs).ok()?;
    Some(UNIX_EPOCH + Duration::from_secs(secs) + Duration::from_nanos(nanos))
}

/// Microseconds since the Unix epoch (never 0: zero means "not yet" in atomics).
pub fn now_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(1)
        .max(1)
}

/// The time `us` microseconds after the Unix epoch; `None` for 0 ("not yet").
pub fn from_micros(us: u64) -> Option<SystemTime> {
    (us != 0).then(|| UNIX_EPOCH + Duration::from_micros(us))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_round_trips_and_rejects_malformed() {
        let t = parse_rfc3339("2024-02-29T23:59:58.5+01:00").unwrap();
        assert_eq!(rfc3339(t), "2024-02-29T22:59:58.500Z");
        assert_eq!(parse_rfc3339(&rfc3339(UNIX_EPOCH)), Some(UNIX_EPOCH));
        assert!(parse_rfc3339("2024-13-01T00:00:00Z").is_none());
        assert!(parse_rfc3339("2024-01-01T00:00:00").is_none());
        assert!(parse_rfc3339("2024-01-01T00:00:00Zjunk").is_none());
        assert!(parse_rfc3339("2024-01-01T00:00:00.Z").is_none());
        assert!(
            parse_rfc3339("\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}").is_none()
        );
    }

    #[test]
    fn since_takes_a_time_or_a_duration() {
        let now = UNIX_EPOCH + Duration::from_secs(10_000);
        assert_eq!(
            parse_time("1h30m", now).unwrap(),
            UNIX_EPOCH + Duration::from_secs(4600)
        );
        assert_eq!(
            parse_time("2h", now).unwrap(),
            UNIX_EPOCH + Duration::from_secs(2800)
        );
        assert!(parse_time("yesterday", now).is_err());
    }
}
