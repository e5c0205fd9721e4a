//! The lineup: the scorers the scheduler settings name, loaded and
//! checked, and the one place those settings change — from the config file
//! (a reload) or from the API (`orch scheduler …`). Both go through the same
//! checks; a change from the API is written to the store before it is put
//! in force, so a restart finds it.
//!
//! Loaded scorers are kept by digest and limits: a change that keeps a
//! scorer keeps its warm instances and its breaker.

use super::scorer::{ScorerLoadError, ScorerSource, accept, builtin_names};
use super::settings::{Settings, confined_problem};
use super::{Config, ConfigError, LimitsConfig, RegistryAuthConfig, Reloaded, SchedulerConfig};
use crate::metrics::{Metrics, Tally};
use crate::scheduler::compare::History;
use crate::scheduler::score::Scorer;
use crate::scheduler::{Current, Scheduler, ShadowSpec, Shadows, Split};
use crate::{Op, Store, StoreError};
use orch_model::{
    Candidate, CandidateMode, Problem, SchedulerOverrides, ScorerSpec, Stamped, now_ms,
};
use orch_plugin_runtime::{Digest, Runtime};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, MutexGuard};

/// A change to the scheduler settings, as the API asks for it.
#[derive(Debug, Clone)]
pub enum Change {
    /// Adds or replaces a scorer known by name.
    PutScorer {
        name: String,
        spec: ScorerSpec,
    },
    RemoveScorer {
        name: String,
    },
    /// Adds or replaces a candidate.
    PutCandidate {
        name: String,
        candidate: Candidate,
    },
    RemoveCandidate {
        name: String,
    },
    /// The scorer becomes the primary; the old primary becomes a shadow.
    Promote {
        name: String,
    },
    /// Back to the config file's settings.
    Reset,
}

/// Why a change was not made. Nothing was stored and the scheduler in
/// force is unchanged.
#[derive(Debug, thiserror::Error)]
pub enum LineupError {
    /// The settings it would lead to are wrong; each problem at its field.
    #[error("{}", problems.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Invalid { problems: Vec<Problem> },
    #[error("no {kind} is named {name:?}{}", hint.as_ref().map(|h| format!("; {h}")).unwrap_or_default())]
    NotFound {
        kind: &'static str,
        name: String,
        hint: Option<String>,
    },
    /// A scorer it names did not load or failed the basic checks.
    #[error("{0}")]
    Scorer(#[from] ScorerLoadError),
    /// A scorer it would put in a role fails the conformance suite.
    #[error(
        "scorer {name} ({digest}) does not pass `orch plugin test`: {}; it cannot be a candidate or the primary until it does",
        failures.join("; ")
    )]
    NotConforming {
        name: String,
        digest: String,
        failures: Vec<String>,
    },
    #[error("{0}")]
    Store(#[from] StoreError),
}

/// The scorers in force and how they came to be.
pub struct Lineup {
    core: Core,
    current: Current,
    state: Mutex<LineupState>,
    /// Each cluster's packing over time, for `orch scheduler compare`.
    history: Arc<History>,
}

/// What loading scorers needs.
struct Core {
    runtime: Runtime,
    base_dir: PathBuf,
    registry: BTreeMap<String, RegistryAuthConfig>,
    shadows: Arc<Shadows>,
    counter: Arc<AtomicU64>,
    metrics: Metrics,
}

struct LineupState {
    file: SchedulerConfig,
    overrides: SchedulerOverrides,
    settings: Settings,
    /// Why what was set at run time is not in force, when it could not be
    /// applied over the file at start.
    stale: Option<String>,
    loaded: HashMap<(Digest, LimitsConfig), Arc<dyn Scorer>>,
    /// Plugins that passed the conformance suite, by digest and limits.
    conforming: HashSet<(Digest, LimitsConfig)>,
    /// The scorer in force under each name that has a role.
    running: BTreeMap<String, Arc<dyn Scorer>>,
}

/// What `orch scheduler status` shows.
#[derive(Debug, Clone)]
pub struct LineupStatus {
    pub settings: Settings,
    /// Name → (label, digest) of each scorer with a role.
    pub running: BTreeMap<String, (String, String)>,
    pub stale: Option<String>,
}

impl Lineup {
    /// Loads what the config and the store's run-time settings name. When
    /// the stored settings cannot be applied over this config (a scorer
    /// they name is gone from the file, say), the file's alone are used and
    /// the status says why; when those fail too, the server cannot start.
    /// Every scheduler it builds counts in `metrics`.
    pub fn start(
        config: &Config,
        runtime: Runtime,
        store: &Store,
        shadows: Arc<Shadows>,
        metrics: &Metrics,
    ) -> Result<Self, ScorerLoadError> {
        let overrides = (**store.snapshot().scheduler_overrides()).clone();
        let file = config.scheduler.clone();
        let mut st = LineupState {
            settings: Settings::of(&file, &overrides),
            file,
            overrides,
            stale: None,
            loaded: HashMap::new(),
            conforming: HashSet::new(),
            running: BTreeMap::new(),
        };
        let core = Core {
            runtime,
            base_dir: config.base_dir.clone(),
            registry: config.registry.clone(),
            shadows,
            counter: Arc::new(AtomicU64::new(0)),
            metrics: metrics.clone(),
        };
        let built = if st.overrides.is_empty() {
            {
                let settings = st.settings.clone();
                core.build(&mut st, &settings)
            }
        } else {
            let problems = st.settings.problems(&core.base_dir);
            let with_overrides = if problems.is_empty() {
                {
                    let settings = st.settings.clone();
                    core.build(&mut st, &settings)
                }
                .map_err(|e| e.to_string())
            } else {
                Err(problems
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; "))
            };
            match with_overrides {
                Ok(built) => Ok(built),
                Err(why) => {
                    tracing::error!(
                        "scheduler: the settings changed at run time cannot be applied over the config: {why}; running with the config's alone (`orch scheduler reset` drops them)"
                    );
                    st.stale = Some(why);
                    st.settings = Settings::of(&st.file, &SchedulerOverrides::default());
                    {
                        let settings = st.settings.clone();
                        core.build(&mut st, &settings)
                    }
                }
            }
        };
        let (scheduler, specs) = built?;
        log_lineup(&scheduler, &specs);
        core.shadows.sync(specs);
        let current = Current::new(scheduler);
        let history = History::start(store.clone(), current.clone(), core.shadows.clone());
        Ok(Self {
            core,
            current,
            state: Mutex::new(st),
            history,
        })
    }

    /// Each cluster's packing over time.
    pub fn history(&self) -> &History {
        &self.history
    }

    /// The scheduler in force, shared with the workers and the API.
    pub fn current(&self) -> &Current {
        &self.current
    }

    pub fn shadows(&self) -> &Arc<Shadows> {
        &self.core.shadows
    }

    pub fn runtime(&self) -> &Runtime {
        &self.core.runtime
    }

    /// The settings in force and the scorers behind them.
    pub fn status(&self) -> LineupStatus {
        let st = self.lock();
        LineupStatus {
            settings: st.settings.clone(),
            running: st
                .running
                .iter()
                .map(|(name, s)| (name.clone(), (s.label().to_owned(), s.digest().to_owned())))
                .collect(),
            stale: st.stale.clone(),
        }
    }

    /// Files of the scorers in force, for the config watcher.
    pub fn scorer_files(&self) -> Vec<PathBuf> {
        let st = self.lock();
        st.running
            .keys()
            .filter_map(|name| st.settings.spec(name))
            .filter_map(
                |spec| match ScorerSource::resolve(&spec.plugin, &self.core.base_dir) {
                    Ok(ScorerSource::File(path)) => Some(path),
                    _ => None,
                },
            )
            .collect()
    }

    /// Applies the config file's `[scheduler]` (a reload), with what was
    /// set at run time still on top.
    pub fn set_file(&self, config: &Config) -> Reloaded {
        let mut st = self.lock();
        let settings = Settings::of(&config.scheduler, &st.overrides);
        let problems = settings.problems(&self.core.base_dir);
        if !problems.is_empty() {
            let e = ConfigError::Invalid {
                file: "the config with the settings changed at run time (`orch scheduler reset` drops those)".to_owned(),
                problems,
            };
            tracing::error!(
                "config reload refused: {}",
                e.to_string().replace('\n', "; ")
            );
            return Reloaded::ConfigRefused(e);
        }
        let before: BTreeMap<String, String> = fingerprint(&st.running);
        let same_settings = settings == st.settings && config.scheduler == st.file;
        let (scheduler, specs) = match self.core.build(&mut st, &settings) {
            Ok(built) => built,
            Err(e) => {
                tracing::error!(
                    "config reload refused: {e}; still scoring with {}",
                    self.current.get().scorer().label()
                );
                return Reloaded::ScorerRefused(e);
            }
        };
        if same_settings && fingerprint(&st.running) == before {
            return Reloaded::Unchanged;
        }
        st.file = config.scheduler.clone();
        st.settings = settings;
        st.stale = None;
        let applied = Reloaded::Applied {
            label: scheduler.scorer().label().to_owned(),
            digest: scheduler.scorer().digest().to_owned(),
        };
        log_lineup(&scheduler, &specs);
        self.current.set(scheduler);
        self.core.shadows.sync(specs);
        applied
    }

    /// Makes `change`, or nothing: the new settings are checked, every
    /// scorer they name is loaded (and a scorer given a role passes the
    /// conformance suite), they are stored, and only then put in force.
    /// Blocks while a component compiles: call it off the async threads.
    pub fn change(&self, store: &Store, change: Change) -> Result<LineupStatus, LineupError> {
        if let Change::PutScorer { name, spec } = &change {
            // Before anything looks at the file.
            let at = format!("scheduler.scorers.{name}.plugin");
            if let Some(p) = confined_problem(&spec.plugin, &at, &self.core.base_dir) {
                return Err(LineupError::Invalid { problems: vec![p] });
            }
        }
        let mut st = self.lock();
        let (overrides, vetted) = self.overrides_after(&st, &change)?;
        let settings = Settings::of(&st.file, &overrides);
        let problems = settings.problems(&self.core.base_dir);
        if !problems.is_empty() {
            return Err(LineupError::Invalid { problems });
        }
        if let Change::PutScorer { name, .. } = &change {
            // Known by name means it loads and answers, role or not.
            self.core.load(&mut st, &settings, name)?;
        }
        for name in &vetted {
            self.core.conform(&mut st, &settings, name)?;
        }
        let (scheduler, specs) = self.core.build(&mut st, &settings)?;
        store.apply(Op::SetScheduler(overrides))?;
        // As stored: with the commit's index on what changed.
        st.overrides = (**store.snapshot().scheduler_overrides()).clone();
        st.settings = Settings::of(&st.file, &st.overrides);
        st.stale = None;
        log_lineup(&scheduler, &specs);
        self.current.set(scheduler);
        self.core.shadows.sync(specs);
        drop(st);
        Ok(self.status())
    }

    fn lock(&self) -> MutexGuard<'_, LineupState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The stored settings after `change`, and the scorers it gives a role
    /// that must pass the conformance suite first.
    fn overrides_after(
        &self,
        st: &LineupState,
        change: &Change,
    ) -> Result<(SchedulerOverrides, Vec<String>), LineupError> {
        let mut o = st.overrides.clone();
        let now = now_ms();

        let s = &st.settings;
        let mut vetted = Vec::new();
        match change {
            Change::PutScorer { name, spec } => {
                if builtin_names().contains(&name.as_str())
                    && spec.plugin != *name
                    && spec.plugin != format!("builtin:{name}")
                {
                    return Err(LineupError::Invalid {
                        problems: vec![
                            Problem::new(
                                format!("scheduler.scorers.{name}"),
                                format!("{name} is the name of a built-in scorer"),
                            )
                            .hint("give this scorer another name"),
                        ],
                    });
                }
                o.scorers
                    .insert(name.clone(), stamp_at(now, Some(spec.clone())));
                // A scorer in a role is replaced in force: vet it too.
                if s.primary.value == *name || s.candidates.contains_key(name) {
                    vetted.push(name.clone());
                }
            }
            Change::RemoveScorer { name } => {
                if !s.scorers.contains_key(name) {
                    return Err(not_found("scorer", name, s.scorers.keys()));
                }
                if let Some(role) = role_of(s, name) {
                    return Err(LineupError::Invalid {
                        problems: vec![
                            Problem::new(
                                format!("scheduler.scorers.{name}"),
                                format!("{name} is {role}"),
                            )
                            .hint("remove the candidate, or promote another scorer, first"),
                        ],
                    });
                }
                if st.file.scorers.contains_key(name) {
                    o.scorers.insert(name.clone(), stamp_at(now, None));
                } else {
                    o.scorers.remove(name);
                }
            }
            Change::PutCandidate { name, candidate } => {
                o.candidates
                    .insert(name.clone(), stamp_at(now, Some(candidate.clone())));
                vetted.push(name.clone());
            }
            Change::RemoveCandidate { name } => {
                if !s.candidates.contains_key(name) {
                    return Err(not_found("candidate", name, s.candidates.keys()));
                }
                if st.file.candidates.contains_key(name) {
                    o.candidates.insert(name.clone(), stamp_at(now, None));
                } else {
                    o.candidates.remove(name);
                }
            }
            Change::Promote { name } => {
                if s.spec(name).is_none() {
                    let known = s.known();
                    return Err(not_found("scorer", name, known.iter()));
                }
                if s.primary.value == *name {
                    return Err(LineupError::Invalid {
                        problems: vec![Problem::new(
                            "scheduler.scorer",
                            format!("{name} is the primary already"),
                        )],
                    });
                }
                let old = s.primary.value.clone();
                o.primary = Some(stamp_at(now, name.clone()));
                if st.file.candidates.contains_key(name) {
                    o.candidates.insert(name.clone(), stamp_at(now, None));
                } else {
                    o.candidates.remove(name);
                }
                // The old primary keeps watching, in shadow, so the two
                // can still be compared.
                o.candidates.insert(
                    old,
                    stamp_at(
                        now,
                        Some(Candidate {
                            mode: CandidateMode::Shadow,
                            weight: None,
                            jobs: Vec::new(),
                        }),
                    ),
                );
                vetted.push(name.clone());
            }
            Change::Reset => o = SchedulerOverrides::default(),
        }
        Ok((o, vetted))
    }
}

impl Core {
    /// Runs the conformance suite on scorer `name` (once per digest and
    /// limits).
    fn conform(
        &self,
        st: &mut LineupState,
        settings: &Settings,
        name: &str,
    ) -> Result<(), LineupError> {
        let Some(spec) = settings.spec(name) else {
            return Ok(());
        };
        let limits = settings.limits_of(&spec);
        let source = ScorerSource::resolve(&spec.plugin, &self.base_dir)?;
        let bytes = source.read_with(&self.registry)?;
        let digest = Digest::of(&bytes);
        if st.conforming.contains(&(digest, limits)) {
            return Ok(());
        }
        let options = orch_conformance::Options {
            limits: limits.limits(),
            ..orch_conformance::Options::default()
        };
        let report =
            orch_conformance::test_component(&self.runtime, &source.name(), &bytes, &options);
        if !report.passed {
            return Err(LineupError::NotConforming {
                name: name.to_owned(),
                digest: digest.to_string(),
                failures: report
                    .checks
                    .iter()
                    .filter(|c| c.outcome == orch_conformance::Outcome::Fail)
                    .map(|c| format!("{}: {}", c.check, c.detail))
                    .collect(),
            });
        }
        st.conforming.insert((digest, limits));
        Ok(())
    }

    /// Loads every scorer `settings` gives a role and assembles the
    /// scheduler; on success `st.running` names them.
    fn build(
        &self,
        st: &mut LineupState,
        settings: &Settings,
    ) -> Result<(Scheduler, Vec<ShadowSpec>), ScorerLoadError> {
        let mut running = BTreeMap::new();
        let primary = self.load(st, settings, &settings.primary.value)?;
        running.insert(settings.primary.value.clone(), primary.clone());
        let mut scheduler = Scheduler::new(primary, settings.sampling.sampling())
            .named(settings.primary.value.clone())
            .with_counter(self.counter.clone());
        if let Some(name) = &settings.fallback {
            // A built-in, with the default limits (the config checks it).
            let fallback =
                self.load_spec(st, &ScorerSpec::plugin(name.clone()), settings.limits)?;
            let display = name.strip_prefix("builtin:").unwrap_or(name);
            scheduler = scheduler.with_fallback(fallback).fallback_named(display);
        }
        let mut splits = Vec::new();
        for (name, candidate) in settings.splits() {
            let scorer = self.load(st, settings, name)?;
            running.insert(name.to_owned(), scorer.clone());
            splits.push(Split {
                name: name.to_owned(),
                scorer,
                candidate: candidate.clone(),
                tally: Tally::detached(),
            });
        }
        let mut specs = Vec::new();
        for (name, entry) in &settings.candidates {
            if entry.value.mode != CandidateMode::Shadow {
                continue;
            }
            let scorer = self.load(st, settings, name)?;
            running.insert(name.clone(), scorer.clone());
            specs.push(ShadowSpec {
                name: name.clone(),
                scorer,
                candidate: entry.value.clone(),
            });
        }
        let scheduler = scheduler
            .with_splits(splits)
            .with_shadows(self.shadows.clone())
            .with_metrics(&self.metrics);
        st.running = running;
        Ok((scheduler, specs))
    }

    fn load(
        &self,
        st: &mut LineupState,
        settings: &Settings,
        name: &str,
    ) -> Result<Arc<dyn Scorer>, ScorerLoadError> {
        let spec = settings
            .spec(name)
            .ok_or_else(|| ScorerLoadError::UnknownBuiltin {
                name: name.to_owned(),
                suggestion: None,
                path: self.base_dir.join(name),
            })?;
        let limits = settings.limits_of(&spec);
        self.load_spec(st, &spec, limits)
    }

    fn load_spec(
        &self,
        st: &mut LineupState,
        spec: &ScorerSpec,
        limits: LimitsConfig,
    ) -> Result<Arc<dyn Scorer>, ScorerLoadError> {
        let source = ScorerSource::resolve(&spec.plugin, &self.base_dir)?;
        let bytes = source.read_with(&self.registry)?;
        let digest = Digest::of(&bytes);
        if let Some(scorer) = st.loaded.get(&(digest, limits)) {
            return Ok(scorer.clone());
        }
        let scorer: Arc<dyn Scorer> = Arc::new(accept(
            &self.runtime,
            &source.name(),
            &bytes,
            limits.limits(),
        )?);
        st.loaded.insert((digest, limits), scorer.clone());
        Ok(scorer)
    }
}

/// A setting changed now; index 0 until the store stamps it with the
/// commit's.
fn stamp_at<T>(now: u64, value: T) -> Stamped<T> {
    Stamped {
        value,
        index: 0,
        time_ms: now,
    }
}

/// What `name` does in `settings`, if anything.
fn role_of(settings: &Settings, name: &str) -> Option<&'static str> {
    if settings.primary.value == name {
        return Some("the primary");
    }
    settings.candidates.get(name).map(|c| match c.value.mode {
        CandidateMode::Shadow => "a shadow candidate",
        CandidateMode::Split => "a split candidate",
    })
}

fn not_found<'a>(
    kind: &'static str,
    name: &str,
    known: impl Iterator<Item = &'a String>,
) -> LineupError {
    let known: Vec<&str> = known.map(String::as_str).collect();
    let hint = orch_model::closest(name, known.iter().copied())
        .map(|m| format!("did you mean `{m}`?"))
        .or_else(|| (!known.is_empty()).then(|| format!("known: {}", known.join(", "))));
    LineupError::NotFound {
        kind,
        name: name.to_owned(),
        hint,
    }
}

/// Name → digest of each scorer in force: what a reload compares.
fn fingerprint(running: &BTreeMap<String, Arc<dyn Scorer>>) -> BTreeMap<String, String> {
    running
        .iter()
        .map(|(name, s)| (name.clone(), s.digest().to_owned()))
        .collect()
}

fn log_lineup(scheduler: &Scheduler, shadows: &[ShadowSpec]) {
    let mut line = format!(
        "scheduler: primary {} = {} ({})",
        scheduler.name(),
        scheduler.scorer().label(),
        scheduler.scorer().digest()
    );
    for s in scheduler.splits() {
        line.push_str(&format!(
            "; split {} = {} on {}% of jobs",
            s.name,
            s.scorer.label(),
            s.candidate.weight()
        ));
    }
    for s in shadows {
        line.push_str(&format!(
            "; shadow {} = {} on {}%",
            s.name,
            s.scorer.label(),
            s.candidate.weight()
        ));
    }
    tracing::info!("{line}");
}
