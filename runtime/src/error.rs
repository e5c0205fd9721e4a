use crate::Digest;
use std::fmt;
use std::time::Duration;

/// Why a plugin could not be loaded or a call into it failed.
///
/// Every variant names the plugin and, once its bytes are known, its digest,
/// so one log line is enough to tell which plugin did what.
#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    #[error("plugin {plugin}: cannot read {path}: {source}")]
    Read {
        plugin: String,
        path: String,
        source: std::io::Error,
    },
    #[error(
        "plugin {plugin}@{digest:?}: not a WebAssembly component ({detail}); build it for wasm32-wasip2 or wrap a core module with `wasm-tools component new`"
    )]
    NotAComponent {
        plugin: String,
        digest: Digest,
        detail: String,
    },
    #[error(
        "plugin {plugin}@{digest:?}: compiling took longer than {limit:?}; raise compile_timeout_ms if the component is this large on purpose"
    )]
    CompileTimeout {
        plugin: String,
        digest: Digest,
        limit: Duration,
    },
    #[error("plugin {plugin}@{digest:?}: {detail}")]
    WrongWorld {
        plugin: String,
        digest: Digest,
        detail: String,
    },
    #[error(
        "plugin {plugin}@{digest:?}: imports `{import}`, which the {world} world does not allow (only WASI 0.2 and the world's own imports may be linked)"
    )]
    ForbiddenImport {
        plugin: String,
        digest: Digest,
        world: &'static str,
        import: String,
    },
    #[error(
        "plugin {plugin}@{digest:?}: imports the `{capability}` capability, which it is not granted; grant it in the agent config, e.g. `[driver.exec] grants = [\"process\", \"log\"]`, or use a driver that does not need it"
    )]
    NotGranted {
        plugin: String,
        digest: Digest,
        /// `process`, `artifacts`, `containers` or `log`.
        capability: &'static str,
    },
    #[error("plugin {plugin}@{digest:?}: ran past its {deadline:?} deadline and was stopped")]
    Deadline {
        plugin: String,
        digest: Digest,
        deadline: Duration,
    },
    /// The instance's own cap (`memory_bytes`) or the plugin's total budget
    /// across its instances (`total_memory_bytes`), as `scope` says.
    #[error("plugin {plugin}@{digest:?}: {}", memory_limit(*.requested, *.cap, .scope))]
    MemoryLimit {
        plugin: String,
        digest: Digest,
        /// What the instance tried to grow to, in bytes.
        requested: usize,
        /// The limit it ran into, in bytes: the instance's cap, or the
        /// plugin's total budget.
        cap: usize,
        scope: MemoryScope,
    },
    #[error(
        "plugin {plugin}@{digest:?}: recursed too deep: overflowed its wasm stack of {cap} bytes"
    )]
    StackOverflow {
        plugin: String,
        digest: Digest,
        cap: usize,
    },
    #[error("plugin {plugin}@{digest:?}: ran out of fuel ({fuel} units) and was stopped")]
    OutOfFuel {
        plugin: String,
        digest: Digest,
        fuel: u64,
    },
    #[error("plugin {plugin}@{digest:?}: trapped: {trap}{}", stderr_suffix(.stderr))]
    Trap {
        plugin: String,
        digest: Digest,
        trap: String,
        /// The last line the plugin wrote to stderr (a Rust panic message, a
        /// Python traceback's last line), if any.
        stderr: Option<String>,
    },
    #[error("plugin {plugin}@{digest:?}: refused the request: {message}")]
    Refused {
        plugin: String,
        digest: Digest,
        message: String,
    },
    #[error("plugin {plugin}@{digest:?}: returned bad output: {problem}")]
    BadOutput {
        plugin: String,
        digest: Digest,
        problem: OutputProblem,
    },
    /// A driver's `start` answered with a handle the agent cannot keep: for
    /// another task, or too big.
    #[error("plugin {plugin}@{digest:?}: returned a task handle the agent cannot keep: {detail}")]
    BadHandle {
        plugin: String,
        digest: Digest,
        detail: String,
    },
    #[error(
        "plugin {plugin}@{digest:?}: not called: it faulted {faults} times in a row; the next try is in {retry_in:?}"
    )]
    BreakerOpen {
        plugin: String,
        digest: Digest,
        faults: u32,
        retry_in: Duration,
    },
    #[error("plugin {plugin}: {detail}")]
    Config { plugin: String, detail: String },
    #[error("plugin runtime: {0}")]
    Runtime(String),
}

/// Which memory limit a plugin ran into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemoryScope {
    /// The cap of one instance, [`crate::Limits::memory_bytes`].
    Instance,
    /// The budget of all the plugin's instances together,
    /// [`crate::Limits::total_memory_bytes`]; `together` is what they would
    /// have held had the growth been allowed.
    Plugin { together: usize },
}

fn memory_limit(requested: usize, cap: usize, scope: &MemoryScope) -> String {
    match scope {
        MemoryScope::Instance => format!(
            "tried to grow its memory to {requested} bytes, over its cap of {cap} bytes, and was stopped"
        ),
        MemoryScope::Plugin { together } => format!(
            "tried to grow an instance's memory to {requested} bytes, which would bring all its instances together to {together} bytes, over the plugin's total memory budget of {cap} bytes (not the per-instance cap), and was stopped; raise total_memory_mib, or let fewer calls of this plugin run at once"
        ),
    }
}

fn stderr_suffix(stderr: &Option<String>) -> String {
    match stderr {
        Some(line) => format!(" (stderr: {line})"),
        None => String::new(),
    }
}

impl PluginError {
    /// Whether this is the plugin misbehaving (and counts towards its
    /// breaker), rather than a refusal it chose or a problem of the host's.
    pub fn is_fault(&self) -> bool {
        matches!(
            self,
            Self::Deadline { .. }
                | Self::MemoryLimit { .. }
                | Self::StackOverflow { .. }
                | Self::OutOfFuel { .. }
                | Self::Trap { .. }
                | Self::BadOutput { .. }
                | Self::BadHandle { .. }
        )
    }

    /// A short, stable name for the kind of failure, for `--json` output and
    /// metrics: `deadline`, `memory`, `trap`, …
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Read { .. } => "read",
            Self::NotAComponent { .. } => "not-a-component",
            Self::CompileTimeout { .. } => "compile-timeout",
            Self::WrongWorld { .. } => "wrong-world",
            Self::ForbiddenImport { .. } => "forbidden-import",
            Self::NotGranted { .. } => "not-granted",
            Self::Deadline { .. } => "deadline",
            Self::MemoryLimit { .. } => "memory",
            Self::StackOverflow { .. } => "stack-overflow",
            Self::OutOfFuel { .. } => "fuel",
            Self::Trap { .. } => "trap",
            Self::Refused { .. } => "refused",
            Self::BadOutput { problem, .. } => problem.kind(),
            Self::BadHandle { .. } => "bad-handle",
            Self::BreakerOpen { .. } => "breaker-open",
            Self::Config { .. } => "config",
            Self::Runtime(_) => "runtime",
        }
    }
}

/// What was wrong with a plugin's answer.
#[derive(Debug, Clone, PartialEq)]
pub enum OutputProblem {
    /// Not one score per node.
    WrongLength { expected: usize, got: usize },
    /// A score that is NaN or infinite.
    NotFinite { node: usize, value: f64 },
    /// A score outside [-1, 1].
    OutOfRange { node: usize, value: f64 },
    /// Part names or values that are not well formed.
    BadParts(String),
}

impl OutputProblem {
    pub fn kind(&self) -> &'static str {
        match self {
            Self::WrongLength { .. } => "wrong-length",
            Self::NotFinite { .. } => "not-finite",
            Self::OutOfRange { .. } => "out-of-range",
            Self::BadParts(_) => "bad-parts",
        }
    }
}

impl std::error::Error for OutputProblem {}

impl fmt::Display for OutputProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::WrongLength { expected, got } => {
                write!(
                    f,
                    "{got} scores for {expected} nodes (one per node is required)"
                )
            }
            Self::NotFinite { node, value } => {
                write!(f, "score of node {node} is {value} (scores must be finite)")
            }
            Self::OutOfRange { node, value } => {
                write!(f, "score of node {node} is {value}, outside [-1, 1]")
            }
            Self::BadParts(detail) => write!(f, "explanation parts: {detail}"),
        }
    }
}

/// Text a plugin produced, made safe to print: control characters (which
/// could move a terminal's cursor or fake a log line) become spaces, and it
/// is cut to `max` characters.
pub(crate) fn printable(text: &str, max: usize) -> String {
    let mut out: String = text
        .chars()
        .take(max)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if text.chars().nth(max).is_some() {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::printable;

    #[test]
    fn plugin_text_cannot_drive_the_terminal() {
        assert_eq!(printable("ok\x1b[2J\nfake", 100), "ok [2J fake");
        assert_eq!(printable("abcdef", 3), "abc…");
        assert_eq!(printable("abc", 3), "abc");
    }
}
