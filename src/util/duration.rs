//! The one duration syntax agnt accepts everywhere (`.agnt.kdl`, traffic filters, `wait`,
//! tool timeouts): a bare number of seconds (`90`, `2.5`), or one or more number+unit parts
//! (`500ms`, `30s`, `5m`, `1h30m`, `2d`), and the one way results print a duration.

use std::time::Duration;

/// Parses a duration (see the module docs); `None` for anything else, negative, or too large.
pub fn parse(s: &str) -> Option<Duration> {
    let s = s.trim();
    if s.is_empty() {
        return None;
    }
    if let Ok(secs) = s.parse::<f64>() {
        return (secs.is_finite() && secs >= 0.0)
            .then(|| Duration::try_from_secs_f64(secs).ok())
            .flatten();
    }
    let mut total = Duration::ZERO;
    let mut rest = s;
    while !rest.is_empty() {
        let digits = rest
            .bytes()
            .take_while(|b| b.is_ascii_digit() || *b == b'.')
            .count();
        if digits == 0 {
            return None;
        }
        let n: f64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let unit_len = rest.bytes().take_while(|b| b.is_ascii_alphabetic()).count();
        let secs = match &rest[..unit_len] {
            "ms" => n / 1000.0,
            "s" => n,
            "m" => n * 60.0,
            "h" => n * 3600.0,
            "d" => n * 86400.0,
            _ => return None,
        };
        rest = &rest[unit_len..];
        total = total.checked_add(Duration::try_from_secs_f64(secs).ok()?)?;
    }
    Some(total)
}

/// Formats a duration the way results show it (`1.234s`).
pub fn format(d: Duration) -> String {
    format!("{:.3}s", d.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_one_syntax() {
        let s = Duration::from_secs;
        assert_eq!(parse("90"), Some(s(90)));
        assert_eq!(parse(" 3 "), Some(s(3)));
        assert_eq!(parse("2.5"), Some(Duration::from_millis(2500)));
        assert_eq!(parse("90s"), Some(s(90)));
        assert_eq!(parse("5m"), Some(s(300)));
        assert_eq!(parse("250ms"), Some(Duration::from_millis(250)));
        assert_eq!(parse("1h30m"), Some(s(5400)));
        assert_eq!(parse("2d"), Some(s(172_800)));
        assert_eq!(parse("1.5s"), Some(Duration::from_millis(1500)));
    }

    #[test]
    fn rejects_everything_else_without_panicking() {
        for bad in [
            "",
            "x",
            "5y",
            "-1s",
            "-1",
            "NaN",
            "inf",
            "1h-",
            "s",
            "1..2s",
            "1e400",
            "99999999999999999999h99999999999999999999h",
        ] {
            assert_eq!(parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn formats_seconds_with_millis() {
        assert_eq!(format(Duration::from_millis(1234)), "1.234s");
    }
}
