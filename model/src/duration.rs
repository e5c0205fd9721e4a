//! Durations as people write them in job files and read them in the API:
//! `"30s"`, `"5m"`, `"1h30m"`, `"250ms"`.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// A [`Duration`] that reads and writes as `"1m30s"`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Dur(pub Duration);

impl Dur {
    pub const fn secs(s: u64) -> Self {
        Dur(Duration::from_secs(s))
    }

    pub const fn millis(ms: u64) -> Self {
        Dur(Duration::from_millis(ms))
    }
}

/// Why a duration string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{input:?} is not a duration: {reason} (write e.g. \"30s\", \"5m\", \"1h30m\", \"250ms\")")]
pub struct DurationError {
    pub input: String,
    pub reason: &'static str,
}

impl FromStr for Dur {
    type Err = DurationError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let err = |reason| DurationError {
            input: input.to_owned(),
            reason,
        };
        let s = input.trim();
        if s.is_empty() {
            return Err(err("it is empty"));
        }
        if s == "0" {
            return Ok(Dur(Duration::ZERO));
        }
        let mut total = Duration::ZERO;
        let mut rest = s;
        while !rest.is_empty() {
            let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
            if digits == 0 {
                return Err(err("expected a number"));
            }
            let value: u64 = rest[..digits]
                .parse()
                .map_err(|_| err("number too large"))?;
            rest = &rest[digits..];
            let unit_len = rest.bytes().take_while(|b| !b.is_ascii_digit()).count();
            let unit = &rest[..unit_len];
            rest = &rest[unit_len..];
            let part = match unit {
                "ms" => Duration::from_millis(value),
                "s" => Duration::from_secs(value),
                "m" => Duration::from_secs(value.saturating_mul(60)),
                "h" => Duration::from_secs(value.saturating_mul(3600)),
                "d" => Duration::from_secs(value.saturating_mul(86_400)),
                "" => return Err(err("a number needs a unit (ms, s, m, h, d)")),
                _ => return Err(err("unknown unit; use ms, s, m, h or d")),
            };
            total = total.checked_add(part).ok_or_else(|| err("too long"))?;
        }
        Ok(Dur(total))
    }
}

impl fmt::Display for Dur {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = self.0;
        if d.is_zero() {
            return f.write_str("0s");
        }
        let ms = d.subsec_millis();
        let mut secs = d.as_secs();
        if secs == 0 {
            return write!(f, "{ms}ms");
        }
        let h = secs / 3600;
        secs %= 3600;
        let m = secs / 60;
        secs %= 60;
        if h > 0 {
            write!(f, "{h}h")?;
        }
        if m > 0 {
            write!(f, "{m}m")?;
        }
        if secs > 0 || ms > 0 {
            if ms > 0 {
                write!(f, "{secs}s{ms}ms")?;
            } else {
                write!(f, "{secs}s")?;
            }
        }
        Ok(())
    }
}

impl Serialize for Dur {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests may")]
    use super::*;

    #[test]
    fn round_trips() {
        for (text, secs, ms) in [
            ("30s", 30, 0),
            ("5m", 300, 0),
            ("1h30m", 5400, 0),
            ("250ms", 0, 250),
            ("1m5s", 65, 0),
            ("2s500ms", 2, 500),
        ] {
            let d: Dur = text.parse().unwrap();
            assert_eq!(d.0, Duration::from_secs(secs) + Duration::from_millis(ms));
            assert_eq!(d.to_string(), text);
        }
        assert_eq!("0".parse::<Dur>().unwrap().to_string(), "0s");
        assert_eq!("1d".parse::<Dur>().unwrap().0, Duration::from_secs(86_400));
    }

    #[test]
    fn refuses_with_a_reason() {
        for (bad, reason) in [
            ("", "it is empty"),
            ("30", "a number needs a unit (ms, s, m, h, d)"),
            ("5 minutes", "unknown unit; use ms, s, m, h or d"),
            ("s", "expected a number"),
        ] {
            assert_eq!(bad.parse::<Dur>().unwrap_err().reason, reason, "{bad}");
        }
    }
}
