//! The lineup: the scorers the scheduler settings name, loaded and
//! checked, and the one place those settings change — from the config file
//! (a reload) or from the API (`orch scheduler …`). Both go through the same
//! checks; a change from the API is written to the store before it is put
//! in force, so a restart finds it.
//!
//! Loaded scorers are kept by digest and limits: a change that keeps a
//! scorer keeps its warm instances and its breaker. Only what the lineup
//! in force uses or names is kept.
//!
//! Changes are made one at a time, and the slow part of one (reading,
//! pulling and compiling a component, the conformance suite: seconds) never
//! holds up a reader: [`Lineup::status`] reads a snapshot that a change
//! replaces whole once it is in force.

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

/// What a loaded scorer is cached by.
type Key = (Digest, LimitsConfig);

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
    /// Refused while the stored run-time settings are not in force.
    #[error(
        "{error}; note: the settings changed at run time are not in force ({why}), and every change is checked with them; `orch scheduler reset` drops them"
    )]
    Stale {
        /// Why the stored settings could not be applied over the file.
        why: String,
        error: Box<LineupError>,
    },
}

/// The scorers in force and how they came to be.
pub struct Lineup {
    core: Core,
    current: Current,
    /// Held by a change (a reload, an API change) from start to end, so
    /// changes are made one at a time; readers never take it.
    work: Mutex<LineupState>,
    /// What readers see, replaced whole when a change is put in force.
    shown: Mutex<Shown>,
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
    /// The settings in force.
    settings: Settings,
    /// Why what was set at run time is not in force, when it could not be
    /// applied over the file.
    stale: Option<String>,
    loaded: HashMap<Key, Arc<dyn Scorer>>,
    /// Plugins that passed the conformance suite.
    conforming: HashSet<Key>,
    /// What each scorer name was last loaded as.
    named: HashMap<String, Key>,
    /// The scorer in force under each name that has a role.
    running: BTreeMap<String, Arc<dyn Scorer>>,
    /// Every scorer the scheduler in force uses, the fallback too.
    in_force: HashSet<Key>,
}

/// A scheduler assembled, not yet in force.
struct Built {
    scheduler: Scheduler,
    shadows: Vec<ShadowSpec>,
    /// The scorer under each name with a role.
    running: BTreeMap<String, Arc<dyn Scorer>>,
    uses: HashSet<Key>,
}

/// The snapshot readers get.
struct Shown {
    status: Arc<LineupStatus>,
    files: Arc<Vec<PathBuf>>,
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
            named: HashMap::new(),
            running: BTreeMap::new(),
            in_force: HashSet::new(),
        };
        let core = Core {
            runtime,
            base_dir: config.base_dir.clone(),
            registry: config.registry.clone(),
            shadows,
            counter: Arc::new(AtomicU64::new(0)),
            metrics: metrics.clone(),
        };
        let (settings, built, stale) = core.settle(&mut st, &config.scheduler)?;
        if let Some(why) = &stale {
            tracing::error!(
                "scheduler: the settings changed at run time cannot be applied over the config: {why}; running with the config's alone (`orch scheduler reset` drops them)"
            );
        }
        log_lineup(&built.scheduler, &built.shadows);
        core.shadows.sync(built.shadows);
        let current = Current::new(built.scheduler);
        st.adopt(settings, built.running, built.uses, stale);
        st.prune();
        let shown = Mutex::new(core.shown(&st));
        let history = History::start(store.clone(), current.clone(), core.shadows.clone());
        Ok(Self {
            core,
            current,
            work: Mutex::new(st),
            shown,
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

    /// The settings in force and the scorers behind them. Never waits for
    /// a change in progress: it shows the last one put in force.
    pub fn status(&self) -> Arc<LineupStatus> {
        lock(&self.shown).status.clone()
    }

    /// Files of the scorers in force, for the config watcher.
    pub fn scorer_files(&self) -> Vec<PathBuf> {
        lock(&self.shown).files.to_vec()
    }

    /// Applies the config file's `[scheduler]` (a reload), with what was
    /// set at run time still on top. While what was set at run time is not
    /// in force (stale), the reload is applied like a start: with it when
    /// it now fits the file, else the file's alone.
    pub fn set_file(&self, config: &Config) -> Reloaded {
        let mut st = lock(&self.work);
        let reloaded = self.reload(&mut st, config);
        st.prune();
        reloaded
    }

    fn reload(&self, st: &mut LineupState, config: &Config) -> Reloaded {
        let refused = |e: ConfigError| {
            tracing::error!(
                "config reload refused: {}",
                e.to_string().replace('\n', "; ")
            );
            Reloaded::ConfigRefused(e)
        };
        let scorer_refused = |e: ScorerLoadError| {
            tracing::error!(
                "config reload refused: {e}; still scoring with {}",
                self.current.get().scorer().label()
            );
            Reloaded::ScorerRefused(e)
        };
        let file = &config.scheduler;
        let (settings, built, stale) = if st.stale.is_some() {
            let alone = Settings::of(file, &SchedulerOverrides::default());
            let problems = alone.problems(&self.core.base_dir);
            if !problems.is_empty() {
                return refused(ConfigError::Invalid {
                    file: "the config's [scheduler]".to_owned(),
                    problems,
                });
            }
            match self.core.settle(st, file) {
                Ok(settled) => settled,
                Err(e) => return scorer_refused(e),
            }
        } else {
            let settings = Settings::of(file, &st.overrides);
            let problems = settings.problems(&self.core.base_dir);
            if !problems.is_empty() {
                return refused(ConfigError::Invalid {
                    file: "the config with the settings changed at run time (`orch scheduler reset` drops those)".to_owned(),
                    problems,
                });
            }
            match self.core.build(st, &settings) {
                Ok(built) => (settings, built, None),
                Err(e) => return scorer_refused(e),
            }
        };
        if settings == st.settings
            && *file == st.file
            && stale == st.stale
            && fingerprint(&built.running) == fingerprint(&st.running)
        {
            return Reloaded::Unchanged;
        }
        match (&st.stale, &stale) {
            (_, Some(why)) => tracing::error!(
                "config reload: the settings changed at run time cannot be applied over the config: {why}; applying the config's alone (`orch scheduler reset` drops them)"
            ),
            (Some(_), None) => tracing::info!(
                "config reload: the settings changed at run time apply over the config again"
            ),
            (None, None) => {}
        }
        st.file = file.clone();
        let applied = Reloaded::Applied {
            label: built.scheduler.scorer().label().to_owned(),
            digest: built.scheduler.scorer().digest().to_owned(),
        };
        self.put_in_force(st, settings, built, stale);
        applied
    }

    /// Makes `change`, or nothing: the new settings are checked, every
    /// scorer they name is loaded (and a scorer given a role passes the
    /// conformance suite), they are stored, and only then put in force.
    /// Blocks while a component compiles and while another change is made:
    /// call it off the async threads.
    pub fn change(&self, store: &Store, change: Change) -> Result<Arc<LineupStatus>, LineupError> {
        let mut st = lock(&self.work);
        let stale = st.stale.clone();
        let made = self.make(&mut st, store, &change);
        st.prune();
        drop(st);
        match (made, stale) {
            (Ok(()), _) => Ok(self.status()),
            (Err(e @ LineupError::Store(_)), _) | (Err(e), None) => Err(e),
            (Err(e), Some(why)) => Err(LineupError::Stale {
                why,
                error: Box::new(e),
            }),
        }
    }

    fn make(
        &self,
        st: &mut LineupState,
        store: &Store,
        change: &Change,
    ) -> Result<(), LineupError> {
        let base_dir = &self.core.base_dir;
        if let Change::PutScorer { name, spec } = change {
            // Before anything looks at the file.
            let at = format!("scheduler.scorers.{name}.plugin");
            if let Some(p) = confined_problem(&spec.plugin, &at, base_dir) {
                return Err(LineupError::Invalid { problems: vec![p] });
            }
        }
        let (overrides, vetted) = overrides_after(st, change)?;
        let settings = Settings::of(&st.file, &overrides);
        let problems = settings.problems(base_dir);
        if !problems.is_empty() {
            return Err(LineupError::Invalid { problems });
        }
        if let Change::PutScorer { name, .. } = change {
            // Known by name means it loads and answers, role or not.
            self.core.load(st, &settings, name)?;
        }
        for name in &vetted {
            self.core.conform(st, &settings, name)?;
        }
        let built = self.core.build(st, &settings)?;
        // What was put through the suite is what runs: a file that changed
        // between the two reads is refused, not put in force untested.
        for name in &vetted {
            if let Some(key) = st.named.get(name)
                && !st.conforming.contains(key)
            {
                return Err(LineupError::NotConforming {
                    name: name.clone(),
                    digest: key.0.to_string(),
                    failures: vec![
                        "its file changed while the suite ran; nothing was changed, try again"
                            .to_owned(),
                    ],
                });
            }
        }
        store.apply(Op::SetScheduler(overrides))?;
        // As stored: with the commit's index on what changed.
        st.overrides = (**store.snapshot().scheduler_overrides()).clone();
        let settings = Settings::of(&st.file, &st.overrides);
        self.put_in_force(st, settings, built, None);
        Ok(())
    }

    /// Puts `built` in force with `settings`, and shows it.
    fn put_in_force(
        &self,
        st: &mut LineupState,
        settings: Settings,
        built: Built,
        stale: Option<String>,
    ) {
        log_lineup(&built.scheduler, &built.shadows);
        self.current.set(built.scheduler);
        self.core.shadows.sync(built.shadows);
        st.adopt(settings, built.running, built.uses, stale);
        let shown = self.core.shown(st);
        *lock(&self.shown) = shown;
    }
}

impl LineupState {
    /// Records what was put in force.
    fn adopt(
        &mut self,
        settings: Settings,
        running: BTreeMap<String, Arc<dyn Scorer>>,
        uses: HashSet<Key>,
        stale: Option<String>,
    ) {
        self.settings = settings;
        self.running = running;
        self.in_force = uses;
        self.stale = stale;
    }

    /// Forgets the scorers neither in force nor known by name in the
    /// settings in force, and their conformance results.
    fn prune(&mut self) {
        let settings = &self.settings;
        let running = &self.running;
        self.named
            .retain(|name, _| settings.scorers.contains_key(name) || running.contains_key(name));
        let keep: HashSet<Key> = self
            .in_force
            .iter()
            .chain(self.named.values())
            .copied()
            .collect();
        self.loaded.retain(|key, _| keep.contains(key));
        self.conforming.retain(|key| keep.contains(key));
    }
}

/// The stored settings after `change`, and the scorers it gives a role
/// that must pass the conformance suite first. The change is read against
/// what the stored settings ask for, in force or not (they are not while
/// stale), so a change can mend them.
fn overrides_after(
    st: &LineupState,
    change: &Change,
) -> Result<(SchedulerOverrides, Vec<String>), LineupError> {
    let mut o = st.overrides.clone();
    let now = now_ms();
    let asked = Settings::of(&st.file, &st.overrides);
    let s = &asked;
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

    /// The settings of `file` with the stored ones on top when they fit
    /// and their scorers load, else the file's alone and why the stored
    /// ones are not in force (what a start does, and a reload while stale).
    fn settle(
        &self,
        st: &mut LineupState,
        file: &SchedulerConfig,
    ) -> Result<(Settings, Built, Option<String>), ScorerLoadError> {
        let mut stale = None;
        if !st.overrides.is_empty() {
            let settings = Settings::of(file, &st.overrides);
            let problems = settings.problems(&self.base_dir);
            if problems.is_empty() {
                match self.build(st, &settings) {
                    Ok(built) => return Ok((settings, built, None)),
                    Err(e) => stale = Some(e.to_string()),
                }
            } else {
                stale = Some(
                    problems
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join("; "),
                );
            }
        }
        let settings = Settings::of(file, &SchedulerOverrides::default());
        let built = self.build(st, &settings)?;
        Ok((settings, built, stale))
    }

    /// Loads every scorer `settings` gives a role and assembles the
    /// scheduler, without putting it in force.
    fn build(&self, st: &mut LineupState, settings: &Settings) -> Result<Built, ScorerLoadError> {
        let mut running = BTreeMap::new();
        let mut uses = HashSet::new();
        let mut load = |st: &mut LineupState, name: &str| {
            let (scorer, key) = self.load(st, settings, name)?;
            running.insert(name.to_owned(), scorer.clone());
            uses.insert(key);
            Ok::<_, ScorerLoadError>(scorer)
        };
        let primary = load(st, &settings.primary.value)?;
        let mut splits = Vec::new();
        for (name, candidate) in settings.splits() {
            splits.push(Split {
                name: name.to_owned(),
                scorer: load(st, name)?,
                candidate: candidate.clone(),
                tally: Tally::detached(),
            });
        }
        let mut shadows = Vec::new();
        for (name, entry) in &settings.candidates {
            if entry.value.mode != CandidateMode::Shadow {
                continue;
            }
            shadows.push(ShadowSpec {
                name: name.clone(),
                scorer: load(st, name)?,
                candidate: entry.value.clone(),
            });
        }
        let mut scheduler = Scheduler::new(primary, settings.sampling.sampling())
            .named(settings.primary.value.clone())
            .with_counter(self.counter.clone());
        if let Some(name) = &settings.fallback {
            // A built-in, with the default limits (the config checks it).
            let (fallback, key) =
                self.load_spec(st, &ScorerSpec::plugin(name.clone()), settings.limits)?;
            uses.insert(key);
            let display = name.strip_prefix("builtin:").unwrap_or(name);
            scheduler = scheduler.with_fallback(fallback).fallback_named(display);
        }
        let scheduler = scheduler
            .with_splits(splits)
            .with_shadows(self.shadows.clone())
            .with_metrics(&self.metrics);
        Ok(Built {
            scheduler,
            shadows,
            running,
            uses,
        })
    }

    /// Scorer `name` of `settings`, loaded (or as loaded before).
    fn load(
        &self,
        st: &mut LineupState,
        settings: &Settings,
        name: &str,
    ) -> Result<(Arc<dyn Scorer>, Key), ScorerLoadError> {
        let spec = settings
            .spec(name)
            .ok_or_else(|| ScorerLoadError::UnknownBuiltin {
                name: name.to_owned(),
                suggestion: None,
                path: self.base_dir.join(name),
            })?;
        let limits = settings.limits_of(&spec);
        let (scorer, key) = self.load_spec(st, &spec, limits)?;
        st.named.insert(name.to_owned(), key);
        Ok((scorer, key))
    }

    fn load_spec(
        &self,
        st: &mut LineupState,
        spec: &ScorerSpec,
        limits: LimitsConfig,
    ) -> Result<(Arc<dyn Scorer>, Key), ScorerLoadError> {
        let source = ScorerSource::resolve(&spec.plugin, &self.base_dir)?;
        let bytes = source.read_with(&self.registry)?;
        let key = (Digest::of(&bytes), limits);
        if let Some(scorer) = st.loaded.get(&key) {
            return Ok((scorer.clone(), key));
        }
        let scorer: Arc<dyn Scorer> = Arc::new(accept(
            &self.runtime,
            &source.name(),
            &bytes,
            limits.limits(),
        )?);
        st.loaded.insert(key, scorer.clone());
        Ok((scorer, key))
    }

    /// What readers are shown of `st`.
    fn shown(&self, st: &LineupState) -> Shown {
        let status = LineupStatus {
            settings: st.settings.clone(),
            running: st
                .running
                .iter()
                .map(|(name, s)| (name.clone(), (s.label().to_owned(), s.digest().to_owned())))
                .collect(),
            stale: st.stale.clone(),
        };
        let files = st
            .running
            .keys()
            .filter_map(|name| st.settings.spec(name))
            .filter_map(
                |spec| match ScorerSource::resolve(&spec.plugin, &self.base_dir) {
                    Ok(ScorerSource::File(path)) => Some(path),
                    _ => None,
                },
            )
            .collect();
        Shown {
            status: Arc::new(status),
            files: Arc::new(files),
        }
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

/// A poisoned lock means a change panicked part way; what it guards is
/// only ever replaced whole or pruned, so carry on.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
