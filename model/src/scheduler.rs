//! Scheduler settings as data: the scorers a server knows by name, which
//! one places (the primary), and the candidates that run beside it — in
//! shadow (scoring every decision the primary makes, placing nothing) or in
//! split (placing a share of the jobs for real).
//!
//! `[scheduler]` in `orch.toml` is the boot default; what an operator
//! changes at run time (`orch scheduler …`) is stored as
//! [`SchedulerOverrides`] and wins over the file, setting by setting, until
//! it is reset. [`Origin`] says which of the two each setting came from.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A scorer by what it is made of: the plugin and its limits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScorerSpec {
    /// `builtin:NAME` (or a built-in's bare name), a path to a `.wasm`
    /// component (relative to the config file's folder), or `oci://…`.
    pub plugin: String,
    /// Overrides `[scheduler.limits]` for this scorer; unset keeps it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_mib: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fuel: Option<u64>,
}

impl ScorerSpec {
    /// A spec with the default limits.
    pub fn plugin(plugin: impl Into<String>) -> Self {
        Self {
            plugin: plugin.into(),
            deadline_ms: None,
            memory_mib: None,
            fuel: None,
        }
    }
}

/// How a candidate runs beside the primary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CandidateMode {
    /// Scores the same candidates as the primary for `weight`% of the
    /// evaluations, off the critical path; places nothing.
    Shadow,
    /// Places `weight`% of the jobs for real (chosen by a hash of the job
    /// id, so all of one job's allocations are placed by one policy).
    Split,
}

impl CandidateMode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Shadow => "shadow",
            Self::Split => "split",
        }
    }
}

/// A scorer tried beside the primary.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Candidate {
    pub mode: CandidateMode,
    /// Percent of evaluations (shadow) or of jobs (split), 1 to 100. A
    /// shadow runs on every evaluation when unset; a split must say.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight: Option<u32>,
    /// Only jobs whose id matches one of these globs (`*` any run of
    /// characters, `?` one); empty: every job.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub jobs: Vec<String>,
}

impl Candidate {
    /// The weight in force: a shadow's defaults to 100.
    pub fn weight(&self) -> u32 {
        self.weight.unwrap_or(100)
    }

    /// Whether `job_id` is one this candidate takes part in (its globs).
    pub fn covers(&self, job_id: &str) -> bool {
        self.jobs.is_empty() || self.jobs.iter().any(|g| glob_matches(g, job_id))
    }
}

/// What was set at run time, setting by setting; `None` values in the maps
/// are removals (a scorer or candidate the file declares, removed by an
/// operator).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SchedulerOverrides {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub primary: Option<Stamped<String>>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub scorers: BTreeMap<String, Stamped<Option<ScorerSpec>>>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub candidates: BTreeMap<String, Stamped<Option<Candidate>>>,
}

impl SchedulerOverrides {
    pub fn is_empty(&self) -> bool {
        self.primary.is_none() && self.scorers.is_empty() && self.candidates.is_empty()
    }
}

/// A setting and when it was changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Stamped<T> {
    pub value: T,
    /// The state index of the change.
    pub index: u64,
    /// When it was changed (ms since the epoch).
    pub time_ms: u64,
}

/// Where a setting in force came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "source", rename_all = "snake_case")]
pub enum Origin {
    /// The config file (`orch.toml`), or the built-in default.
    Config,
    /// Set through the API (`orch scheduler …`) at this index and time.
    Api { index: u64, time_ms: u64 },
}

impl Origin {
    pub fn of<T>(stamped: &Stamped<T>) -> Self {
        Self::Api {
            index: stamped.index,
            time_ms: stamped.time_ms,
        }
    }
}

/// One candidate's shadow answer for a decision the primary made: joins
/// the decision record (`orch alloc status -v`) and feeds
/// `orch scheduler compare`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShadowDecision {
    pub alloc_id: String,
    pub job_id: String,
    /// The candidate's name in the scheduler settings.
    pub candidate: String,
    /// Its name and version as it describes itself, and its digest.
    pub scorer: String,
    pub scorer_digest: String,
    pub time_ms: u64,
    /// Its score of each of the decision's candidates (same order).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scores: Vec<f64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub part_names: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parts: Vec<f64>,
    /// Index into the decision's candidates of the node it would have
    /// picked on the same snapshot (host adjustments included); `None`
    /// when it faulted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pick: Option<u32>,
    /// Whether that is the node the primary picked.
    pub agrees: bool,
    /// Where it put the allocation in its own shadow cluster (the cluster
    /// as it would be had it placed everything since it started); `None`
    /// when no candidate had room there, or it faulted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_node: Option<String>,
    /// Why it gave no answer: its error, as the runtime words it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fault: Option<String>,
    pub scorer_micros: u64,
}

/// `*` matches any run of characters (also none), `?` exactly one; all
/// else matches itself. Case-sensitive, like job ids.
pub fn glob_matches(glob: &str, text: &str) -> bool {
    let (g, t): (Vec<char>, Vec<char>) = (glob.chars().collect(), text.chars().collect());
    // The classic two-pointer match with one backtrack point: linear in
    // practice, never exponential.
    let (mut gi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        match g.get(gi) {
            Some('*') => {
                star = Some((gi, ti));
                gi += 1;
            }
            Some(&c) if c == '?' || c == t[ti] => {
                gi += 1;
                ti += 1;
            }
            _ => match star {
                Some((sg, st)) => {
                    gi = sg + 1;
                    ti = st + 1;
                    star = Some((sg, st + 1));
                }
                None => return false,
            },
        }
    }
    g[gi..].iter().all(|&c| c == '*')
}

/// A stable bucket, 0 to 99, for `job_id` as candidate `salt` draws it: a
/// candidate with weight W takes the jobs whose bucket is below W. Each
/// candidate draws with its own name, so adding, removing or reweighting
/// one never moves another's jobs. FNV-1a, the same on every server and
/// every version.
pub fn bucket(salt: &str, job_id: &str) -> u32 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in salt.bytes().chain([0]).chain(job_id.bytes()) {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    (hash % 100) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `bucket("spread", "web")`, as FNV-1a gives it.
    const PINNED: u32 = 36;

    #[test]
    fn globs_match_like_a_shell() {
        for (g, t) in [
            ("*", ""),
            ("*", "web"),
            ("web-*", "web-"),
            ("web-*", "web-api"),
            ("*-api", "web-api"),
            ("w?b", "web"),
            ("*a*b*", "xxaxxbxx"),
            ("web", "web"),
            ("a*a*a", "aaaa"),
        ] {
            assert!(glob_matches(g, t), "{g:?} should match {t:?}");
        }
        for (g, t) in [
            ("web-*", "web"),
            ("w?b", "wb"),
            ("web", "webs"),
            ("*-api", "web-apis"),
            ("", "x"),
            ("a*a*a", "aa"),
        ] {
            assert!(!glob_matches(g, t), "{g:?} should not match {t:?}");
        }
    }

    #[test]
    fn buckets_are_stable_spread_and_independent_per_candidate() {
        // Pinned: a change would move jobs between policies mid-experiment.
        assert_eq!(bucket("spread", "web"), PINNED);
        let mut counts = [0u32; 2];
        let mut both = 0;
        for i in 0..10_000 {
            let job = format!("job-{i}");
            let a = bucket("a", &job) < 50;
            counts[usize::from(a)] += 1;
            both += u32::from(a && bucket("b", &job) < 50);
        }
        assert!((4_500..5_500).contains(&counts[1]), "{counts:?}");
        // Independent draws: about a quarter in both halves.
        assert!((2_200..2_800).contains(&both), "{both}");
    }

    #[test]
    fn a_candidate_without_globs_covers_every_job() {
        let c = Candidate {
            mode: CandidateMode::Split,
            weight: Some(50),
            jobs: vec![],
        };
        assert!(c.covers("anything"));
        let c = Candidate {
            jobs: vec!["batch-*".into()],
            ..c
        };
        assert!(c.covers("batch-7") && !c.covers("web"));
        assert_eq!(c.weight(), 50);
    }
}
