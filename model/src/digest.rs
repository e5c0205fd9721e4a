//! `sha256:HEX`, the only digest algorithm orch names content with: plugin
//! components in caches, logs and decision records, artifacts pinned in
//! registries and lock files.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest as _, Sha256};
use std::fmt;
use std::str::FromStr;

/// A sha256 content digest, written `sha256:` and 64 lowercase hex digits
/// (its `Debug` shows the first 12, enough to tell plugins apart in a log).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest([u8; 32]);

impl Digest {
    /// Hashes `bytes`.
    pub fn of(bytes: &[u8]) -> Self {
        Self(Sha256::digest(bytes).into())
    }

    /// A digest computed elsewhere (a hasher fed while downloading).
    pub fn from_sha256(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The 64 hex digits, without `sha256:`.
    pub fn hex(&self) -> String {
        hex::encode(self.0)
    }

    /// The first 12 hex digits, for progress and log lines.
    pub fn short(&self) -> String {
        let mut s = self.hex();
        s.truncate(12);
        s
    }
}

impl FromStr for Digest {
    type Err = String;

    /// Parses `sha256:HEX`; the error says what is wrong with it.
    fn from_str(s: &str) -> Result<Self, String> {
        let Some(hex_part) = s.strip_prefix("sha256:") else {
            return Err(match s.split_once(':') {
                Some((algorithm, _)) => {
                    format!("digest algorithm `{algorithm}` is not supported; use sha256:HEX")
                }
                None => "a digest is written sha256:HEX".to_owned(),
            });
        };
        if hex_part.len() != 64 {
            return Err(format!(
                "a sha256 digest has 64 hex digits, this one has {}",
                hex_part.len()
            ));
        }
        if !hex_part
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return Err("a sha256 digest is lowercase hex digits (0-9, a-f)".to_owned());
        }
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(hex_part, &mut bytes).map_err(|e| e.to_string())?;
        Ok(Self(bytes))
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", self.hex())
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", self.short())
    }
}

impl Serialize for Digest {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Digest {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests may")]
    use super::*;

    #[test]
    fn round_trips_and_names_what_is_wrong() {
        let d = Digest::of(b"hello");
        assert_eq!(d.to_string().parse::<Digest>().unwrap(), d);
        assert!("md5:abc".parse::<Digest>().unwrap_err().contains("md5"));
        assert!("sha256:abc".parse::<Digest>().unwrap_err().contains("64"));
        let upper = format!("sha256:{}", d.hex().to_uppercase());
        assert!(upper.parse::<Digest>().unwrap_err().contains("lowercase"));
    }
}
