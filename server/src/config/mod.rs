//! `orch.toml`, the server's config: what it reads, the scorer it names, and
//! reloading both while the server runs.
//!
//! An empty file is a valid config: every field has a default. Relative
//! paths resolve against the folder of the config file, so a config works
//! the same whatever directory the server was started from.
//!
//! The server's whole use of this module:
//!
//! ```text
//! let mut config = Config::load(&path)?;
//! // CLI overrides go straight into the public fields, before anything
//! // else reads them (the runtime's cache lives under data_dir):
//! config.listen = args.listen.unwrap_or(config.listen);
//! let runtime = Runtime::new(config.runtime_config())?;
//! // The scorers [scheduler] and the store's run-time settings name,
//! // loaded and checked; refuses to start on a bad one:
//! let lineup = Arc::new(Lineup::start(&config, runtime, &store, shadows, &metrics)?);
//! let reloader = Arc::new(Reloader::new(&path, config, lineup.clone()));
//! reloader.spawn_watch()?; // follows edits of the file; stops when dropped
//! // on each SIGHUP, off the async threads (it may compile a component):
//! let r = reloader.clone();
//! tokio::task::spawn_blocking(move || r.reload_now());
//! // the API's `orch scheduler …` changes, also off the async threads:
//! lineup.change(&store, Change::Promote { name })?;
//! ```
//!
//! A reload only ever swaps the scheduler (scorers, roles, sampling,
//! limits), and only for scorers that passed the same checks as at start;
//! anything else that changed is logged as needing a restart.

mod lineup;
mod reload;
mod scorer;
mod settings;

pub use lineup::{Change, Lineup, LineupError, LineupStatus};
pub use reload::{Reloaded, Reloader};
pub use scorer::{MAX_SCORER_BYTES, RegistryAuthConfig, ScorerLoadError, ScorerSource};
pub use settings::{Entry, Settings};

use crate::Durability;
use crate::scheduler::sample::Sampling;
use orch_model::{Candidate, Problem, ScorerSpec, closest, one_line, place_problems};
use orch_plugin_runtime::{Limits, RuntimeConfig};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;
use toml::Spanned;
use toml::de::{DeTable, DeValue};

/// The whole `orch.toml`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Where the state database and compiled components are kept. Resolved
    /// against the config file's folder when relative.
    pub data_dir: PathBuf,
    /// Address the HTTP API listens on (`IP:PORT`).
    #[serde(with = "socket_addr")]
    pub listen: SocketAddr,
    /// Scheduler worker threads, 1 to 64.
    pub workers: usize,
    pub scheduler: SchedulerConfig,
    pub state: StateConfig,
    pub api: ApiConfig,
    pub heartbeat: HeartbeatConfig,
    /// `[registry."HOST:PORT"]`: credentials for pulling `oci://` plugins.
    pub registry: std::collections::BTreeMap<String, RegistryAuthConfig>,
    /// The folder relative paths were resolved against: the config file's.
    #[serde(skip)]
    pub base_dir: PathBuf,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("./orch-data"),
            listen: SocketAddr::from(([127, 0, 0, 1], 4646)),
            workers: 2,
            scheduler: SchedulerConfig::default(),
            state: StateConfig::default(),
            api: ApiConfig::default(),
            heartbeat: HeartbeatConfig::default(),
            registry: Default::default(),
            base_dir: PathBuf::from("."),
        }
    }
}

/// `[scheduler]`: the one part of the config a reload applies.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct SchedulerConfig {
    /// A built-in scorer (`binpack`, `spread`, `epvm`, `round-robin`, or the
    /// same written `builtin:NAME`), or a path to a `.wasm` scorer component.
    pub scorer: String,
    /// The failure policy: unset, a placement whose scorer fails (traps,
    /// overruns a limit, answers nonsense, or is held off by its breaker)
    /// fails and its evaluation is retried (fail closed); set to a
    /// built-in's name, that built-in scores the placement instead and the
    /// decision record says why.
    pub fallback: Option<String>,
    pub sampling: SamplingConfig,
    /// The limits of every scorer's calls; a scorer's own table may
    /// override each.
    pub limits: LimitsConfig,
    /// `[scheduler.scorers.NAME]`: scorers known by name, so that a
    /// candidate or a promote can name them. Built-ins are known by their
    /// own names without being listed.
    pub scorers: BTreeMap<String, ScorerSpec>,
    /// `[scheduler.candidates.NAME]`: scorers tried beside the primary, in
    /// shadow or in split; NAME is a scorer's name.
    pub candidates: BTreeMap<String, Candidate>,
}

impl Default for SchedulerConfig {
    fn default() -> Self {
        Self {
            scorer: "binpack".to_owned(),
            fallback: None,
            sampling: SamplingConfig::default(),
            limits: LimitsConfig::default(),
            scorers: BTreeMap::new(),
            candidates: BTreeMap::new(),
        }
    }
}

/// `[scheduler.sampling]`: how many feasible nodes are scored per placement
/// (see [`Sampling`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct SamplingConfig {
    /// At least this many candidates (all of them on smaller clusters).
    pub candidates: usize,
    /// Or this percentage of the schedulable nodes, if that is more; 0 to 100.
    // Wider than `Sampling`'s u8 so that 300 gets this module's message
    // ("at most 100") rather than serde's "expected u8".
    pub percent: u32,
}

impl Default for SamplingConfig {
    fn default() -> Self {
        let s = Sampling::default();
        Self {
            candidates: s.candidates,
            percent: u32::from(s.percent),
        }
    }
}

impl SamplingConfig {
    /// The scheduler's setting; `percent` is capped at 100 (validation has
    /// already refused more).
    pub fn sampling(&self) -> Sampling {
        Sampling {
            candidates: self.candidates,
            percent: u8::try_from(self.percent.min(100)).unwrap_or(100),
        }
    }
}

/// `[scheduler.limits]`: what one scorer call may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsConfig {
    /// Wall-clock deadline of one call, in milliseconds (1 to 60000).
    pub deadline_ms: u64,
    /// Memory one instance may grow to, in MiB (1 to 4096: a wasm32 memory
    /// cannot be larger).
    pub memory_mib: u64,
    /// Memory all instances of one scorer may hold together, in MiB (the
    /// warm ones and the calls in flight, whatever the worker count): the
    /// real ceiling per scorer. At least `memory_mib`.
    pub total_memory_mib: u64,
    /// Fuel (about one unit per wasm instruction) one call may burn; unset
    /// leaves calls unmetered. Setting it makes the runtime meter fuel for
    /// every plugin, which takes a restart to turn on.
    pub fuel: Option<u64>,
}

const MAX_DEADLINE_MS: u64 = 60_000;
const MAX_MEMORY_MIB: u64 = 4096;
const MAX_WORKERS: usize = 64;

impl Default for LimitsConfig {
    fn default() -> Self {
        let l = Limits::default();
        Self {
            deadline_ms: u64::try_from(l.deadline.as_millis()).unwrap_or(1000),
            memory_mib: (l.memory_bytes >> 20) as u64,
            total_memory_mib: (l.total_memory_bytes >> 20) as u64,
            fuel: l.fuel,
        }
    }
}

impl LimitsConfig {
    /// These limits with what `spec` overrides.
    pub fn with(&self, spec: &ScorerSpec) -> Self {
        Self {
            deadline_ms: spec.deadline_ms.unwrap_or(self.deadline_ms),
            memory_mib: spec.memory_mib.unwrap_or(self.memory_mib),
            total_memory_mib: self.total_memory_mib,
            fuel: spec.fuel.or(self.fuel),
        }
    }

    /// What is out of range, each problem at `at.KEY`.
    pub fn problems(&self, at: &str) -> Vec<Problem> {
        let mut problems = Vec::new();
        if !(1..=MAX_DEADLINE_MS).contains(&self.deadline_ms) {
            problems.push(
                Problem::new(
                    format!("{at}.deadline_ms"),
                    format!("{} ms is out of range", self.deadline_ms),
                )
                .hint(format!(
                    "use 1 to {MAX_DEADLINE_MS}: every placement waits for this call, so a scorer needing seconds holds up the whole queue"
                )),
            );
        }
        if !(1..=MAX_MEMORY_MIB).contains(&self.memory_mib) {
            problems.push(
                Problem::new(
                    format!("{at}.memory_mib"),
                    format!("{} MiB is out of range", self.memory_mib),
                )
                .hint(format!(
                    "use 1 to {MAX_MEMORY_MIB} (a wasm32 memory cannot grow past 4 GiB)"
                )),
            );
        }
        // (A memory_mib out of range is reported above, once.)
        if self.total_memory_mib < self.memory_mib && self.memory_mib <= MAX_MEMORY_MIB {
            problems.push(
                Problem::new(
                    format!("{at}.total_memory_mib"),
                    format!(
                        "{} MiB is less than memory_mib ({} MiB): no instance could grow to its cap",
                        self.total_memory_mib, self.memory_mib
                    ),
                )
                .hint("raise total_memory_mib to at least memory_mib (the default is 1024)"),
            );
        }
        if self.fuel == Some(0) {
            problems.push(
                Problem::new(format!("{at}.fuel"), "0 fuel would stop every call at once")
                    .hint("remove it to leave calls unmetered, or give a budget such as 100000000"),
            );
        }
        problems
    }

    /// The runtime's limits; what this table does not set keeps the
    /// runtime's defaults.
    pub fn limits(&self) -> Limits {
        Limits {
            deadline: Duration::from_millis(self.deadline_ms),
            memory_bytes: usize::try_from(self.memory_mib.min(MAX_MEMORY_MIB) << 20)
                .unwrap_or(usize::MAX),
            total_memory_bytes: usize::try_from(self.total_memory_mib.min(1 << 20) << 20)
                .unwrap_or(usize::MAX),
            fuel: self.fuel,
            ..Limits::default()
        }
    }
}

/// `[state]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct StateConfig {
    /// `full` (fsync every commit) or `normal` (survives a crash of orch,
    /// may lose the last commits on power loss).
    pub durability: Durability,
}

/// `[heartbeat]`: how long a node's agent may stay silent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct HeartbeatConfig {
    /// A node that has not checked in for this long is marked down and its
    /// allocations are replaced elsewhere.
    pub ttl_ms: u64,
    /// After the server starts, nodes get this much more than the TTL to
    /// check in, so a restart of the control plane marks nothing down.
    pub grace_ms: u64,
}

impl Default for HeartbeatConfig {
    fn default() -> Self {
        Self {
            ttl_ms: 10_000,
            grace_ms: 10_000,
        }
    }
}

impl HeartbeatConfig {
    pub fn ttl(&self) -> Duration {
        Duration::from_millis(self.ttl_ms)
    }

    pub fn grace(&self) -> Duration {
        Duration::from_millis(self.grace_ms)
    }
}

/// `[api]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct ApiConfig {
    /// Largest request body the API accepts, in bytes.
    pub max_body_bytes: usize,
}

impl Default for ApiConfig {
    fn default() -> Self {
        Self {
            max_body_bytes: 1 << 20,
        }
    }
}

/// Why a config file was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    /// Every problem found, in file order.
    #[error("{}", display_problems(.file, .problems))]
    Invalid {
        file: String,
        problems: Vec<Problem>,
    },
}

fn display_problems(file: &str, problems: &[Problem]) -> String {
    let lines: Vec<String> = problems
        .iter()
        .map(|p| match p.line {
            Some(_) => format!("{file}:{p}"),
            None => format!("{file}: {p}"),
        })
        .collect();
    lines.join("\n")
}

impl Config {
    /// Reads and checks the config at `path`.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::parse(&text, path)
    }

    /// Parses and checks `text`, read from `path`: relative paths resolve
    /// against `path`'s folder, and errors name it.
    pub fn parse(text: &str, path: &Path) -> Result<Self, ConfigError> {
        let file = path.display().to_string();
        let fail = |problems: Vec<(Problem, Option<Range<usize>>)>| ConfigError::Invalid {
            file: file.clone(),
            problems: place_problems(text, problems),
        };
        let doc = DeTable::parse(text).map_err(|e| {
            let problem =
                Problem::new("", one_line(e.message())).hint("see https://toml.io for the syntax");
            fail(vec![(problem, e.span())])
        })?;
        let spans = Spans::of(&doc);
        let mut config = Config::deserialize(toml::de::Deserializer::from(doc))
            .map_err(|e| fail(vec![serde_problem(&e, &spans)]))?;
        config.base_dir = base_dir(path);
        // `./orch-data` joins as `BASE/orch-data`, not `BASE/./orch-data`.
        let data_dir = config
            .data_dir
            .strip_prefix(".")
            .unwrap_or(&config.data_dir);
        config.data_dir = config.base_dir.join(data_dir);
        let problems: Vec<_> = config
            .problems()
            .into_iter()
            .map(|p| {
                let span = spans.get(&p.field);
                (p, span)
            })
            .collect();
        if problems.is_empty() {
            Ok(config)
        } else {
            Err(fail(problems))
        }
    }

    /// What serde cannot check: ranges, and that a scorer file is there.
    fn problems(&self) -> Vec<Problem> {
        let mut problems = Vec::new();
        if !(1..=MAX_WORKERS).contains(&self.workers) {
            problems.push(
                Problem::new("workers", format!("{} is out of range", self.workers))
                    .hint(format!("use 1 to {MAX_WORKERS} scheduler worker threads")),
            );
        }
        if !(100..=3_600_000).contains(&self.heartbeat.ttl_ms) {
            problems.push(
                Problem::new(
                    "heartbeat.ttl_ms",
                    format!("{} ms is out of range", self.heartbeat.ttl_ms),
                )
                .hint(
                    "use 100 to 3600000; agents check in well within it (Nomad's default is 10 s)",
                ),
            );
        }
        if self.heartbeat.grace_ms > 3_600_000 {
            problems.push(
                Problem::new(
                    "heartbeat.grace_ms",
                    format!("{} ms is more than an hour", self.heartbeat.grace_ms),
                )
                .hint("a restart gives nodes the TTL plus this; 10000 is usual"),
            );
        }
        let s = &self.scheduler;
        if s.sampling.percent > 100 {
            problems.push(
                Problem::new(
                    "scheduler.sampling.percent",
                    format!("{} is more than 100", s.sampling.percent),
                )
                .hint("a percentage of the schedulable nodes, 0 to 100"),
            );
        }
        if s.sampling.candidates == 0 && s.sampling.percent == 0 {
            problems.push(
                Problem::new(
                    "scheduler.sampling.candidates",
                    "0 candidates and 0 percent would score a single node per placement",
                )
                .hint("set candidates to 1 or more (64 is the default), or a percent"),
            );
        }
        problems.extend(s.limits.problems("scheduler.limits"));
        if let Some(fallback) = &s.fallback {
            match ScorerSource::resolve(fallback, &self.base_dir) {
                Ok(ScorerSource::Builtin(_)) => {}
                Ok(ScorerSource::File(_) | ScorerSource::Oci { .. }) => problems.push(
                    Problem::new(
                        "scheduler.fallback",
                        format!("{fallback:?} is not a built-in scorer"),
                    )
                    .hint(format!(
                        "the fallback must be one that cannot go missing: {}",
                        scorer::builtin_names().join(", ")
                    )),
                ),
                Err(e) => problems.push(Problem::new("scheduler.fallback", e.to_string())),
            }
        }
        // Limits were checked above; the rest is the settings' own check,
        // the same the API runs on a change made at run time.
        problems.extend(
            Settings::of(s, &orch_model::SchedulerOverrides::default()).problems(&self.base_dir),
        );
        for (host, auth) in &self.registry {
            if let Err(problem) = auth.credentials() {
                problems.push(Problem::new(format!("registry.{host}"), problem).hint(
                    "[registry.\"HOST:PORT\"] takes username and password_env (or password)",
                ));
            }
        }
        problems
    }

    /// The plugin runtime's settings this config needs: compiled components
    /// cached under the data dir, and fuel metered when the scorer has a
    /// fuel limit.
    pub fn runtime_config(&self) -> RuntimeConfig {
        RuntimeConfig {
            cache_dir: Some(self.data_dir.join("components")),
            fuel: self.scheduler.limits.fuel.is_some()
                || self.scheduler.scorers.values().any(|s| s.fuel.is_some()),
            ..RuntimeConfig::default()
        }
    }

    /// The settings a running server cannot change: which of them differ
    /// between `self` and `other`, by key.
    pub fn restart_needed(&self, other: &Config) -> Vec<&'static str> {
        let mut changed = Vec::new();
        if self.data_dir != other.data_dir {
            changed.push("data_dir");
        }
        if self.listen != other.listen {
            changed.push("listen");
        }
        if self.workers != other.workers {
            changed.push("workers");
        }
        if self.state.durability != other.state.durability {
            changed.push("state.durability");
        }
        if self.api.max_body_bytes != other.api.max_body_bytes {
            changed.push("api.max_body_bytes");
        }
        if self.heartbeat != other.heartbeat {
            changed.push("heartbeat");
        }
        changed
    }
}

/// The folder of the config file; `.` for a bare file name, so that joined
/// paths stay relative to where the server started rather than becoming
/// `/name`.
fn base_dir(path: &Path) -> PathBuf {
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::path::absolute(&parent).unwrap_or(parent)
}

mod socket_addr {
    use serde::{Deserialize, Deserializer, Serializer, de::Error};
    use std::net::SocketAddr;

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<SocketAddr, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(|_| {
            D::Error::custom(format!(
                "`{text}` is not a socket address; write IP:PORT, such as 127.0.0.1:4646 or [::1]:4646 (host names are not looked up)"
            ))
        })
    }

    pub fn serialize<S: Serializer>(addr: &SocketAddr, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(addr)
    }
}

/// Turns a serde error into a problem at its span, with a suggestion for
/// a misspelt key or value.
fn serde_problem(e: &toml::de::Error, spans: &Spans) -> (Problem, Option<Range<usize>>) {
    let message = one_line(e.message());
    let field = e.span().map(|s| spans.path_at(s.start)).unwrap_or_default();
    let mut problem = Problem::new(&field, message.clone());
    if message.starts_with("unknown field") || message.starts_with("unknown variant") {
        // serde writes "unknown field `typed`, expected one of `a`, `b`":
        // the quoted words are what was typed, then what is accepted.
        let mut quoted = message.split('`').skip(1).step_by(2);
        if let Some(typed) = quoted.next()
            && let Some(meant) = meant(typed, &quoted.collect::<Vec<_>>())
        {
            problem = problem.hint(format!("did you mean `{meant}`?"));
        }
    }
    (problem, e.span())
}

/// A typo's correction, or the key with its unit added: `deadline` is
/// three edits from `deadline_ms`, but plainly meant it.
fn meant<'a>(typed: &str, accepted: &[&'a str]) -> Option<&'a str> {
    closest(typed, accepted.iter().copied()).or_else(|| {
        accepted.iter().copied().find(|a| {
            a.strip_prefix(typed)
                .is_some_and(|unit| unit.starts_with('_'))
        })
    })
}

/// Where each key of the document is, by dotted path, so that problems
/// found after deserializing can be placed in the text.
struct Spans(Vec<(String, Range<usize>, Range<usize>)>);

impl Spans {
    fn of(doc: &Spanned<DeTable<'_>>) -> Self {
        let mut spans = Vec::new();
        collect(&mut spans, "", doc.get_ref());
        Self(spans)
    }

    /// The key's span, or its nearest ancestor's for a key the file leaves
    /// out (a default that is out of range with another setting).
    fn get(&self, path: &str) -> Option<Range<usize>> {
        let mut path = path;
        loop {
            if let Some((_, key, _)) = self.0.iter().find(|(p, _, _)| p == path) {
                return Some(key.clone());
            }
            path = &path[..path.rfind('.')?];
        }
    }

    /// The deepest key whose key or value holds `offset`.
    fn path_at(&self, offset: usize) -> String {
        self.0
            .iter()
            .filter(|(_, key, value)| key.contains(&offset) || value.contains(&offset))
            .max_by_key(|(path, _, _)| path.matches('.').count())
            .map(|(path, _, _)| path.clone())
            .unwrap_or_default()
    }
}

fn collect(out: &mut Vec<(String, Range<usize>, Range<usize>)>, prefix: &str, table: &DeTable<'_>) {
    for (key, value) in table.iter() {
        let path = if prefix.is_empty() {
            key.get_ref().to_string()
        } else {
            format!("{prefix}.{}", key.get_ref())
        };
        out.push((path.clone(), key.span(), value.span()));
        if let DeValue::Table(t) = value.get_ref() {
            collect(out, &path, t);
        }
    }
}

#[cfg(test)]
mod tests;
