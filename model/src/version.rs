//! Version ranges such as `>= 1.2, < 2.0` or `~> 1.4.2`, as the `version`
//! constraint operator takes them. The job validator checks that a range
//! parses; the scheduler's feasibility check matches node attributes
//! (`${attr.kernel.version}`, a driver's version) against it.

use std::cmp::Ordering;
use std::fmt;

/// A conjunction of clauses, each an operator and a version: a version
/// matches when it satisfies every clause.
///
/// Versions have one to three numeric parts (`1`, `1.2`, `1.2.3`); missing
/// parts count as zero. A `-prerelease` or `+build` suffix is accepted and
/// ignored for ordering, so `1.2.3-rc1` matches `>= 1.2.3`.
///
/// `~> 1.2` is the pessimistic operator of Nomad and Terraform: at least
/// 1.2 and below 2.0; `~> 1.2.3` is at least 1.2.3 and below 1.3.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionRange {
    clauses: Vec<Clause>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Eq,
    Ne,
    Gt,
    Ge,
    Lt,
    Le,
    Pessimistic,
}

impl Op {
    fn as_str(self) -> &'static str {
        match self {
            Op::Eq => "=",
            Op::Ne => "!=",
            Op::Gt => ">",
            Op::Ge => ">=",
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Pessimistic => "~>",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Clause {
    op: Op,
    version: Version,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Version {
    parts: [u64; 3],
    /// How many parts were written: `~>` keeps all but the last fixed.
    written: usize,
    /// Kept for display only.
    suffix: String,
}

impl Version {
    fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        if text.is_empty() {
            return Err("the version is missing".to_owned());
        }
        // `-` starts a prerelease, `+` build metadata; neither orders.
        let cut = text.find(['-', '+']).unwrap_or(text.len());
        let (numbers, suffix) = text.split_at(cut);
        let mut parts = [0u64; 3];
        let mut written = 0;
        for part in numbers.split('.') {
            if written == 3 {
                return Err(format!("`{text}` has more than three numeric parts"));
            }
            if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
                return Err(format!(
                    "`{text}` is not a version: expected one to three numbers separated by dots, \
                     like 1.2.3"
                ));
            }
            parts[written] = part
                .parse()
                .map_err(|_| format!("`{part}` in `{text}` is too large"))?;
            written += 1;
        }
        Ok(Version {
            parts,
            written,
            suffix: suffix.to_owned(),
        })
    }

    fn cmp_numbers(&self, other: &Version) -> Ordering {
        self.parts.cmp(&other.parts)
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, part) in self.parts.iter().take(self.written).enumerate() {
            if i > 0 {
                f.write_str(".")?;
            }
            write!(f, "{part}")?;
        }
        f.write_str(&self.suffix)
    }
}

impl Clause {
    fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        // Longest operators first, so `>=` is not read as `>` and `=1`.
        const OPS: [(&str, Op); 7] = [
            (">=", Op::Ge),
            ("<=", Op::Le),
            ("!=", Op::Ne),
            ("~>", Op::Pessimistic),
            ("=", Op::Eq),
            (">", Op::Gt),
            ("<", Op::Lt),
        ];
        let (op, rest) = OPS
            .iter()
            .find_map(|(s, op)| text.strip_prefix(s).map(|rest| (*op, rest)))
            // A bare version means exactly that version, as in Nomad.
            .unwrap_or((Op::Eq, text));
        if rest.trim().is_empty() {
            return Err(format!("`{text}` has an operator but no version"));
        }
        if rest.trim_start().starts_with(['<', '>', '=', '!', '~']) {
            return Err(format!(
                "`{text}` has an unknown operator: use =, !=, >, >=, <, <= or ~>"
            ));
        }
        let version = Version::parse(rest)?;
        Ok(Clause { op, version })
    }

    fn matches(&self, v: &Version) -> bool {
        let ord = v.cmp_numbers(&self.version);
        match self.op {
            Op::Eq => ord == Ordering::Equal,
            Op::Ne => ord != Ordering::Equal,
            Op::Gt => ord == Ordering::Greater,
            Op::Ge => ord != Ordering::Less,
            Op::Lt => ord == Ordering::Less,
            Op::Le => ord != Ordering::Greater,
            Op::Pessimistic => {
                // All written parts but the last must be equal.
                let fixed = self.version.written.saturating_sub(1);
                ord != Ordering::Less && v.parts[..fixed] == self.version.parts[..fixed]
            }
        }
    }
}

impl VersionRange {
    /// Parse a comma-separated list of clauses, e.g. `>= 1.2, < 2`. The
    /// error says which clause is wrong and why.
    pub fn parse(text: &str) -> Result<Self, String> {
        if text.trim().is_empty() {
            return Err("the version range is empty: write e.g. `>= 1.2, < 2.0`".to_owned());
        }
        let clauses = text
            .split(',')
            .enumerate()
            .map(|(i, clause)| {
                if clause.trim().is_empty() {
                    return Err(format!("clause {} is empty", i + 1));
                }
                Clause::parse(clause).map_err(|e| {
                    if text.contains(',') {
                        format!("clause {} (`{}`): {e}", i + 1, clause.trim())
                    } else {
                        e
                    }
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(VersionRange { clauses })
    }

    /// Whether `version` satisfies every clause. A version that does not
    /// parse matches nothing: a node whose attribute is not a version is
    /// not a candidate.
    pub fn matches(&self, version: &str) -> bool {
        match Version::parse(version) {
            Ok(v) => self.clauses.iter().all(|c| c.matches(&v)),
            Err(_) => false,
        }
    }
}

impl fmt::Display for VersionRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, c) in self.clauses.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{} {}", c.op.as_str(), c.version)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests may")]
    use super::*;

    fn m(range: &str, version: &str) -> bool {
        VersionRange::parse(range).unwrap().matches(version)
    }

    #[test]
    fn comparisons() {
        assert!(m(">= 1.2, < 2", "1.2"));
        assert!(m(">= 1.2, < 2", "1.9.9"));
        assert!(!m(">= 1.2, < 2", "2.0.0"));
        assert!(!m(">= 1.2, < 2", "1.1.9"));
        assert!(m("= 1.2", "1.2.0"));
        assert!(m("1.2", "1.2.0"));
        assert!(!m("!= 1.2", "1.2.0"));
        assert!(m("> 1", "1.0.1"));
        assert!(m("<= 3.1", "3.1.0"));
        assert!(!m("<= 3.1", "3.1.1"));
    }

    #[test]
    fn pessimistic() {
        assert!(m("~> 1.2", "1.2.0"));
        assert!(m("~> 1.2", "1.9"));
        assert!(!m("~> 1.2", "2.0"));
        assert!(!m("~> 1.2", "1.1"));
        assert!(m("~> 1.2.3", "1.2.9"));
        assert!(!m("~> 1.2.3", "1.3.0"));
        assert!(m("~> 1", "7.0"));
    }

    #[test]
    fn suffixes_are_ignored_for_ordering() {
        assert!(m(">= 5.15", "5.15.0-91-generic"));
        assert!(m("= 1.2.3", "1.2.3+build.7"));
        assert!(!m(">= 1", "not-a-version"));
        assert!(!m(">= 1", ""));
    }

    #[test]
    fn refusals_say_which_clause() {
        for (bad, why) in [
            ("", "the version range is empty: write e.g. `>= 1.2, < 2.0`"),
            (">=", "`>=` has an operator but no version"),
            (
                ">= 1.x",
                "`1.x` is not a version: expected one to three numbers separated by dots, like 1.2.3",
            ),
            (">= 1, ", "clause 2 is empty"),
            (
                ">= 1, << 2",
                "clause 2 (`<< 2`): `<< 2` has an unknown operator: use =, !=, >, >=, <, <= or ~>",
            ),
            (
                "=> 1.2",
                "`=> 1.2` has an unknown operator: use =, !=, >, >=, <, <= or ~>",
            ),
            ("1.2.3.4", "`1.2.3.4` has more than three numeric parts"),
            (
                "~ 1.2",
                "`~ 1.2` has an unknown operator: use =, !=, >, >=, <, <= or ~>",
            ),
        ] {
            assert_eq!(VersionRange::parse(bad).unwrap_err(), why, "{bad:?}");
        }
    }

    #[test]
    fn displays_normalised() {
        let r = VersionRange::parse(">=1.2,<2 , ~>1.4.0-rc1").unwrap();
        assert_eq!(r.to_string(), ">= 1.2, < 2, ~> 1.4.0-rc1");
    }
}
