//! How long a load generator measures, as its flags take it: `60` (seconds),
//! `60s`, `2m`, `500ms`, `1.5s`. Not `orch_model::Dur`, whose grammar is a
//! job file's: there a bare number is refused, fractions are not written
//! and hours and days are, and `0` is a duration.

use std::time::Duration;

/// `60`, `60s`, `2m`, `500ms`; fractions allowed; above 0. The error says
/// what to write instead, for clap to show.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let (number, unit) = match t.find(|c: char| !c.is_ascii_digit() && c != '.') {
        Some(at) => t.split_at(at),
        None => (t, "s"),
    };
    let n: f64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration; write 60, 60s, 2m or 500ms"))?;
    let secs = match unit {
        "ms" => n / 1e3,
        "s" => n,
        "m" => n * 60.0,
        _ => return Err(format!("{text:?}: the unit is ms, s or m")),
    };
    if !(secs.is_finite() && secs > 0.0) {
        return Err(format!("{text:?}: give a duration above 0"));
    }
    Ok(Duration::from_secs_f64(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_written() {
        assert_eq!(parse_duration("60"), Ok(Duration::from_secs(60)));
        assert_eq!(parse_duration("60s"), Ok(Duration::from_secs(60)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert!(parse_duration("0").is_err());
        assert!(parse_duration("5h").is_err());
        assert!(parse_duration("soon").is_err());
    }
}
