//! The scheduler settings in force: `[scheduler]` of the config file with
//! what was set at run time (`orch scheduler …`, kept in the store) on top,
//! setting by setting, and the checks both must pass.

use super::scorer::{ScorerSource, builtin_names};
use super::{LimitsConfig, SamplingConfig, SchedulerConfig};
use orch_model::{
    Candidate, CandidateMode, Origin, Problem, SchedulerOverrides, ScorerSpec, closest,
};
use std::collections::BTreeMap;
use std::path::Path;

/// A setting and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry<T> {
    pub value: T,
    pub origin: Origin,
}

/// What the scheduler runs with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// The scorer that places, by name.
    pub primary: Entry<String>,
    /// The built-in that scores when a scorer fails (file only).
    pub fallback: Option<String>,
    pub sampling: SamplingConfig,
    /// Every scorer's limits unless its spec overrides them.
    pub limits: LimitsConfig,
    /// The scorers known by name: listed in the file, added at run time,
    /// and the primary when the file names it by its plugin. Built-ins not
    /// listed are known by their own names too ([`Settings::spec`]).
    pub scorers: BTreeMap<String, Entry<ScorerSpec>>,
    pub candidates: BTreeMap<String, Entry<Candidate>>,
    /// The scorer the file's `scorer` named by its plugin rather than by a
    /// name: its problems are reported at `scheduler.scorer`.
    implicit: Option<String>,
}

fn from_config<T>(value: T) -> Entry<T> {
    Entry {
        value,
        origin: Origin::Config,
    }
}

/// Longest scorer name.
const MAX_NAME: usize = 64;

/// Most candidates beside the primary: each shadow scores every decision
/// again and keeps a cluster of its own.
pub const MAX_CANDIDATES: usize = 8;

impl Settings {
    /// The file's settings with `overrides` on top.
    pub fn of(file: &SchedulerConfig, overrides: &SchedulerOverrides) -> Self {
        let mut scorers: BTreeMap<String, Entry<ScorerSpec>> = file
            .scorers
            .iter()
            .map(|(name, spec)| (name.clone(), from_config(spec.clone())))
            .collect();
        let (primary, implicit) = primary_name(&file.scorer, &file.scorers);
        let implicit = implicit.map(|spec| {
            scorers.entry(primary.clone()).or_insert(from_config(spec));
            primary.clone()
        });
        for (name, set) in &overrides.scorers {
            match &set.value {
                Some(spec) => {
                    scorers.insert(
                        name.clone(),
                        Entry {
                            value: spec.clone(),
                            origin: Origin::of(set),
                        },
                    );
                }
                None => {
                    scorers.remove(name);
                }
            }
        }
        let mut candidates: BTreeMap<String, Entry<Candidate>> = file
            .candidates
            .iter()
            .map(|(name, c)| (name.clone(), from_config(c.clone())))
            .collect();
        for (name, set) in &overrides.candidates {
            match &set.value {
                Some(c) => {
                    candidates.insert(
                        name.clone(),
                        Entry {
                            value: c.clone(),
                            origin: Origin::of(set),
                        },
                    );
                }
                None => {
                    candidates.remove(name);
                }
            }
        }
        let primary = match &overrides.primary {
            Some(set) => Entry {
                value: set.value.clone(),
                origin: Origin::of(set),
            },
            None => from_config(primary),
        };
        Self {
            primary,
            fallback: file.fallback.clone(),
            sampling: file.sampling,
            limits: file.limits,
            scorers,
            candidates,
            implicit,
        }
    }

    /// What the scorer `name` is: listed, or a built-in by its own name.
    pub fn spec(&self, name: &str) -> Option<ScorerSpec> {
        if let Some(entry) = self.scorers.get(name) {
            return Some(entry.value.clone());
        }
        builtin_names()
            .contains(&name)
            .then(|| ScorerSpec::plugin(format!("builtin:{name}")))
    }

    /// The limits scorer `name` runs with.
    pub fn limits_of(&self, spec: &ScorerSpec) -> LimitsConfig {
        self.limits.with(spec)
    }

    /// Every name a scorer is known by, for did-you-mean and errors.
    pub fn known(&self) -> Vec<String> {
        let mut names: Vec<String> = self.scorers.keys().cloned().collect();
        for b in builtin_names() {
            if !self.scorers.contains_key(b) {
                names.push(b.to_owned());
            }
        }
        names.sort();
        names
    }

    /// The split candidates, in name order (the order they draw jobs in).
    pub fn splits(&self) -> Vec<(&str, &Candidate)> {
        self.candidates
            .iter()
            .filter(|(_, e)| e.value.mode == CandidateMode::Split)
            .map(|(name, e)| (name.as_str(), &e.value))
            .collect()
    }

    /// Everything wrong with these settings, each at its field; empty when
    /// the scheduler can run with them.
    pub fn problems(&self, base_dir: &Path) -> Vec<Problem> {
        let mut problems = Vec::new();
        for (name, entry) in &self.scorers {
            if self.implicit.as_deref() == Some(name) && entry.origin == Origin::Config {
                // Named by its plugin in `scorer`, which is checked there.
                if let Some(p) = plugin_problem(&entry.value.plugin, "scheduler.scorer", base_dir) {
                    problems.push(p);
                }
                continue;
            }
            let at = format!("scheduler.scorers.{name}");
            if let Some(p) = name_problem(name, &at) {
                problems.push(p);
            }
            if let Some(p) = plugin_problem(&entry.value.plugin, &format!("{at}.plugin"), base_dir)
            {
                problems.push(p);
            } else if entry.origin != Origin::Config
                && let Some(p) =
                    confined_problem(&entry.value.plugin, &format!("{at}.plugin"), base_dir)
            {
                // Set through the API: checked again at every load, so a
                // link swapped in since does not let it out of the folder.
                problems.push(p);
            }
            // Only what the spec sets: the rest is `[scheduler.limits]`'s,
            // reported there.
            let spec = &entry.value;
            problems.extend(self.limits_of(spec).problems(&at).into_iter().filter(|p| {
                match p.field.rsplit('.').next() {
                    Some("deadline_ms") => spec.deadline_ms.is_some(),
                    Some("memory_mib") => spec.memory_mib.is_some(),
                    Some("fuel") => spec.fuel.is_some(),
                    _ => true,
                }
            }));
        }
        if self.spec(&self.primary.value).is_none() {
            problems.push(self.unknown("scheduler.scorer", &self.primary.value));
        }
        let mut split_total = 0;
        for (name, entry) in &self.candidates {
            let at = format!("scheduler.candidates.{name}");
            let c = &entry.value;
            if self.spec(name).is_none() {
                problems.push(self.unknown(&at, name));
            }
            if *name == self.primary.value {
                problems.push(
                    Problem::new(&at, format!("{name} is the primary"))
                        .hint("a candidate runs beside the primary; name another scorer"),
                );
            }
            match c.weight {
                Some(w) if !(1..=100).contains(&w) => problems.push(
                    Problem::new(format!("{at}.weight"), format!("{w} is out of range"))
                        .hint("a percentage of the evaluations, 1 to 100"),
                ),
                None if c.mode == CandidateMode::Split => problems.push(
                    Problem::new(format!("{at}.weight"), "a split needs a weight").hint(
                        "the percentage of jobs it places, e.g. weight = 10 (chosen by a hash of the job id)",
                    ),
                ),
                _ => {}
            }
            if c.mode == CandidateMode::Split {
                split_total = c.weight().min(101).saturating_add(split_total);
            }
            if let Some(bad) = c.jobs.iter().find(|g| g.trim().is_empty()) {
                problems.push(
                    Problem::new(format!("{at}.jobs"), format!("{bad:?} is an empty glob"))
                        .hint("globs of job ids, e.g. [\"web-*\"]; leave jobs out for every job"),
                );
            }
        }
        if self.candidates.len() > MAX_CANDIDATES {
            problems.push(
                Problem::new(
                    "scheduler.candidates",
                    format!(
                        "{} candidates, more than the {MAX_CANDIDATES} a scheduler runs beside its primary",
                        self.candidates.len()
                    ),
                )
                .hint("remove a candidate before adding another"),
            );
        }
        if split_total > 100 {
            problems.push(
                Problem::new(
                    "scheduler.candidates",
                    format!("the split weights add up to {split_total}%, more than 100"),
                )
                .hint("lower the weights so the splits share at most every job"),
            );
        }
        problems
    }

    fn unknown(&self, at: &str, name: &str) -> Problem {
        let known = self.known();
        let hint = match closest(name, known.iter().map(String::as_str)) {
            Some(m) => format!("did you mean `{m}`?"),
            None => format!(
                "known scorers: {}; add one with [scheduler.scorers.NAME] plugin = \"…\" or `orch scheduler scorer add`",
                known.join(", ")
            ),
        };
        Problem::new(at, format!("no scorer is named {name:?}")).hint(hint)
    }
}

/// The primary's name when `[scheduler] scorer` names it: a listed
/// scorer's name as it is; otherwise a plugin, named after it (a built-in
/// by its name, a file by its stem, an OCI reference by its repository's
/// last segment) and returned as an implicit spec.
fn primary_name(
    scorer: &str,
    listed: &BTreeMap<String, ScorerSpec>,
) -> (String, Option<ScorerSpec>) {
    let scorer = scorer.trim();
    if listed.contains_key(scorer) {
        return (scorer.to_owned(), None);
    }
    let spec = Some(ScorerSpec::plugin(scorer));
    if let Some(name) = scorer.strip_prefix("builtin:") {
        return (name.to_owned(), spec);
    }
    if let Some(rest) = scorer.strip_prefix("oci://") {
        let without_digest = rest.split('@').next().unwrap_or(rest);
        let last = without_digest.rsplit('/').next().unwrap_or(without_digest);
        let repository = last.split(':').next().unwrap_or(last);
        return (repository.to_owned(), spec);
    }
    let stem = Path::new(scorer)
        .file_stem()
        .map_or_else(|| scorer.to_owned(), |s| s.to_string_lossy().into_owned());
    (stem, spec)
}

fn name_problem(name: &str, at: &str) -> Option<Problem> {
    let ok = !name.is_empty()
        && name.len() <= MAX_NAME
        && name
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphanumeric())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
    (!ok).then(|| {
        Problem::new(at, format!("{name:?} is not a scorer name")).hint(format!(
            "1 to {MAX_NAME} of a-z, 0-9, - and _, starting with a letter or digit"
        ))
    })
}

/// Whether `plugin` can be found at all (a built-in, an existing file, a
/// well-formed OCI reference); loading checks the rest.
pub(crate) fn plugin_problem(plugin: &str, at: &str, base_dir: &Path) -> Option<Problem> {
    match ScorerSource::resolve(plugin, base_dir) {
        Ok(ScorerSource::File(path)) if !path.is_file() => Some(
            Problem::new(
                at,
                format!(
                    "{} {}",
                    path.display(),
                    if path.exists() {
                        "is not a file"
                    } else {
                        "does not exist"
                    }
                ),
            )
            .hint(format!(
                "give a path to a .wasm scorer component, relative to the config file's folder, a built-in ({}), or oci://…",
                builtin_names().join(", ")
            )),
        ),
        Ok(_) => None,
        Err(e) => Some(Problem::new(at, e.to_string())),
    }
}

/// Whether a scorer named from the API may be read: a built-in, an
/// `oci://` reference, or a file that lies under `base_dir` once symlinks
/// are followed (for a path that does not exist, its deepest existing
/// folder must), so that a request cannot make the server read, or say
/// whether there is, a file anywhere else. The config file's own paths are
/// the operator's and are not held to this.
pub(crate) fn confined_problem(plugin: &str, at: &str, base_dir: &Path) -> Option<Problem> {
    let Ok(ScorerSource::File(path)) = ScorerSource::resolve(plugin, base_dir) else {
        // Built-ins and references; a bad one is reported by the checks.
        return None;
    };
    let inside = base_dir.canonicalize().is_ok_and(|base| {
        path.ancestors()
            .find_map(|p| p.canonicalize().ok())
            .is_some_and(|real| real.starts_with(&base))
    });
    (!inside).then(|| {
        Problem::new(
            at,
            format!(
                "{plugin} is not under {}, the config file's folder: a scorer named through the API is read only from there",
                base_dir.display()
            ),
        )
        .hint(format!(
            "copy the component under {}, or push it to a registry and name it oci://…",
            base_dir.display()
        ))
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests may")]
    use super::*;
    use orch_model::Stamped;

    /// The `[scheduler]` of `text`, read without the config's checks
    /// (which these tests are about).
    fn file(text: &str) -> SchedulerConfig {
        toml::from_str::<super::super::Config>(text)
            .unwrap()
            .scheduler
    }

    fn fields(s: &Settings) -> Vec<String> {
        s.problems(Path::new("/nowhere"))
            .into_iter()
            .map(|p| p.field)
            .collect()
    }

    #[test]
    fn the_primary_is_named_after_its_plugin() {
        let s = Settings::of(&file(""), &SchedulerOverrides::default());
        assert_eq!(s.primary.value, "binpack");
        assert_eq!(s.primary.origin, Origin::Config);
        assert_eq!(s.scorers["binpack"].value.plugin, "binpack");
        let listed = BTreeMap::new();
        assert_eq!(primary_name("builtin:spread", &listed).0, "spread");
        assert_eq!(primary_name("plugins/mine.wasm", &listed).0, "mine");
        assert_eq!(
            primary_name("oci://127.0.0.1:5000/team/packer:1.2", &listed).0,
            "packer"
        );
        assert_eq!(
            primary_name("oci://reg.example/packer@sha256:00", &listed).0,
            "packer"
        );
    }

    #[test]
    fn overrides_win_setting_by_setting() {
        let f = file(
            "[scheduler.scorers.tight]\nplugin = \"binpack\"\ndeadline_ms = 50\n\
             [scheduler.candidates.spread]\nmode = \"shadow\"\n",
        );
        fn stamp<T>(value: T) -> Stamped<T> {
            Stamped {
                value,
                index: 7,
                time_ms: 1000,
            }
        }
        let mut o = SchedulerOverrides {
            primary: Some(stamp("tight".to_owned())),
            ..SchedulerOverrides::default()
        };
        o.candidates.insert("spread".into(), stamp(None));
        o.candidates.insert(
            "epvm".into(),
            stamp(Some(Candidate {
                mode: CandidateMode::Split,
                weight: Some(30),
                jobs: vec![],
            })),
        );
        let s = Settings::of(&f, &o);
        assert_eq!(s.primary.value, "tight");
        assert!(matches!(s.primary.origin, Origin::Api { index: 7, .. }));
        assert!(!s.candidates.contains_key("spread"), "removed at run time");
        assert_eq!(s.candidates["epvm"].value.weight, Some(30));
        assert_eq!(s.limits_of(&s.spec("tight").unwrap()).deadline_ms, 50);
        assert_eq!(s.splits(), vec![("epvm", &s.candidates["epvm"].value)]);
        assert_eq!(fields(&s), Vec::<String>::new());
    }

    #[test]
    fn each_problem_is_at_its_field() {
        let f = file(
            "[scheduler.candidates.sprd]\nmode = \"shadow\"\n\
             [scheduler.candidates.binpack]\nmode = \"shadow\"\n\
             [scheduler.candidates.spread]\nmode = \"split\"\n\
             [scheduler.candidates.epvm]\nmode = \"split\"\nweight = 101\njobs = [\"\"]\n\
             [scheduler.scorers.Bad]\nplugin = \"nope.wasm\"\nmemory_mib = 0\n",
        );
        let s = Settings::of(&f, &SchedulerOverrides::default());
        let problems = s.problems(Path::new("/nowhere"));
        let got: Vec<&str> = problems.iter().map(|p| p.field.as_str()).collect();
        assert_eq!(
            got,
            [
                "scheduler.scorers.Bad",
                "scheduler.scorers.Bad.plugin",
                "scheduler.scorers.Bad.memory_mib",
                "scheduler.candidates.binpack",
                "scheduler.candidates.epvm.weight",
                "scheduler.candidates.epvm.jobs",
                "scheduler.candidates.sprd",
                "scheduler.candidates.spread.weight",
                "scheduler.candidates",
            ]
        );
        let sprd = &problems[6];
        assert_eq!(sprd.hint.as_deref(), Some("did you mean `spread`?"));
    }

    #[test]
    fn at_most_eight_candidates() {
        let listed = |n: usize| {
            let mut text = String::new();
            for i in 0..n {
                text.push_str(&format!(
                    "[scheduler.scorers.c{i}]\nplugin = \"spread\"\n[scheduler.candidates.c{i}]\nmode = \"shadow\"\n"
                ));
            }
            Settings::of(&file(&text), &SchedulerOverrides::default())
        };
        assert_eq!(fields(&listed(MAX_CANDIDATES)), Vec::<String>::new());
        let problems = listed(MAX_CANDIDATES + 1).problems(Path::new("/nowhere"));
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!(problems[0].field, "scheduler.candidates");
        assert!(
            problems[0].message.contains("more than the 8"),
            "{}",
            problems[0]
        );
    }
}
