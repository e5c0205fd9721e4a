//! Semantic checks of a typed [`Job`]: what serde cannot say, such as a
//! priority out of range, a regexp that does not compile or a group name
//! used twice.
//!
//! Both doors into the server use these checks: the API on JSON bodies,
//! and the job file parser, which adds line and column from the field
//! paths. Every problem is reported, not just the first, so a user fixes a
//! file in one round. Paths use the serde names with indexes, e.g.
//! `group[0].task[1].resources.memory`.

use crate::{
    Affinity, Artifact, Constraint, Job, JobType, Operator, PRIORITY_RANGE, ReschedulePolicy,
    Resources, RestartMode, RestartPolicy, Spread, Task, TaskGroup, VersionRange,
};
use crate::{Dur, Problem};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

/// Longest job or group id: ids end up in URLs, paths and log lines.
const MAX_ID_LEN: usize = 128;
/// More allocations than this per group is a typo, not a plan.
pub(crate) const MAX_COUNT: u32 = 10_000;
/// The largest CPU and memory no node will ever have: asks above are typos
/// (a value in Hz or bytes), refused rather than left pending forever.
const MAX_CPU_MHZ: u32 = 4_000_000;
const MAX_MEMORY_MIB: u64 = 64 * 1024 * 1024; // 64 TiB
const MAX_DISK_MIB: u64 = 1024 * 1024 * 1024; // 1 PiB
const MIN_MEMORY_MIB: u64 = 10;
/// Restart and reschedule attempts above this are unbounded in all but
/// name; `unlimited = true` says so honestly.
const MAX_ATTEMPTS: u32 = 1_000;
/// Nomad's floors: shorter intervals make a crash loop look healthy.
const RESTART_MIN_INTERVAL: Duration = Duration::from_secs(5);
const RESCHEDULE_MIN_INTERVAL: Duration = Duration::from_secs(15);

const NODE_ATTRIBUTES: [&str; 6] = [
    "id",
    "name",
    "datacenter",
    "class",
    "unique.id",
    "unique.name",
];

/// Every semantic problem with `job`, in the order of its fields; empty when the job
/// can be registered.
pub fn validate_job(job: &Job) -> Vec<Problem> {
    let mut out = Problems::default();
    check_id(&mut out, "id", "job id", &job.id);
    if !PRIORITY_RANGE.contains(&job.priority) {
        out.push(
            Problem::new(
                "priority",
                format!(
                    "priority {} is out of range {}..={}",
                    job.priority,
                    PRIORITY_RANGE.start(),
                    PRIORITY_RANGE.end()
                ),
            )
            .hint(format!(
                "use 1 (lowest) to 100 (highest); the default is {}",
                crate::DEFAULT_PRIORITY
            )),
        );
    }
    for (i, dc) in job.datacenters.iter().enumerate() {
        if dc.trim().is_empty() {
            out.push(
                Problem::new(format!("datacenters[{i}]"), "datacenter name is empty")
                    .hint("remove it, or leave `datacenters` out to run in any datacenter"),
            );
        }
    }
    check_meta(&mut out, "meta", &job.meta);
    check_constraints(&mut out, "", &job.constraints);
    check_affinities(&mut out, "", &job.affinities);
    check_spreads(&mut out, "", &job.spreads);

    if job.groups.is_empty() {
        out.push(
            Problem::new("group", "the job has no groups")
                .hint("add a [[group]] table with at least one [[group.task]]"),
        );
    }
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for (i, group) in job.groups.iter().enumerate() {
        let path = format!("group[{i}]");
        if !group.name.is_empty() {
            if let Some(first) = seen.get(group.name.as_str()) {
                out.push(
                    Problem::new(
                        format!("{path}.name"),
                        format!("group name `{}` is used twice", group.name),
                    )
                    .hint(format!(
                        "group[{first}] has it already; group names must be unique within a job"
                    )),
                );
            } else {
                seen.insert(&group.name, i);
            }
        }
        check_group(&mut out, &path, group);
    }
    out.0
}

/// What is legal but probably not meant, e.g. a `count` on a system job.
/// The server returns these with a successful register; the CLI prints them.
pub fn job_warnings(job: &Job) -> Vec<Problem> {
    let mut out = Vec::new();
    if job.job_type == JobType::System {
        for (i, group) in job.groups.iter().enumerate() {
            if group.count != 1 {
                out.push(
                    Problem::new(
                        format!("group[{i}].count"),
                        format!(
                            "count = {} is ignored: a system job runs one allocation on every eligible node",
                            group.count
                        ),
                    )
                    .hint("remove `count`, or use type = \"service\" to run a fixed number"),
                );
            }
            if !group.spreads.is_empty() {
                out.push(
                    Problem::new(
                        format!("group[{i}].spread"),
                        "spread is ignored: a system job runs on every eligible node",
                    )
                    .hint("remove the spread blocks"),
                );
            }
        }
        if !job.spreads.is_empty() {
            out.push(
                Problem::new(
                    "spread",
                    "spread is ignored: a system job runs on every eligible node",
                )
                .hint("remove the spread blocks"),
            );
        }
    }
    out
}

#[derive(Default)]
struct Problems(Vec<Problem>);

impl Problems {
    fn push(&mut self, p: Problem) {
        self.0.push(p);
    }
}

fn join(prefix: &str, field: &str) -> String {
    if prefix.is_empty() {
        field.to_owned()
    } else {
        format!("{prefix}.{field}")
    }
}

/// Whether `s` is a valid job or group id: `[a-z0-9][a-z0-9_.-]*`.
pub(crate) fn is_valid_id(s: &str) -> bool {
    let mut bytes = s.bytes();
    matches!(bytes.next(), Some(b'a'..=b'z' | b'0'..=b'9'))
        && bytes.all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'_' | b'.' | b'-'))
}

fn check_id(out: &mut Problems, path: &str, what: &str, id: &str) {
    if id.is_empty() {
        out.push(
            Problem::new(path, format!("{what} is empty"))
                .hint("use lowercase letters, digits, `_`, `.` and `-`, e.g. \"web\""),
        );
    } else if id.chars().count() > MAX_ID_LEN {
        out.push(
            Problem::new(
                path,
                format!(
                    "{what} is {} characters long, more than {MAX_ID_LEN}",
                    id.chars().count()
                ),
            )
            .hint("use a shorter name; put descriptions in `meta`"),
        );
    } else if !is_valid_id(id) {
        out.push(
            Problem::new(path, format!("{what} `{id}` is not a valid name"))
                .hint("start with a lowercase letter or digit, then use lowercase letters, digits, `_`, `.` and `-`"),
        );
    }
}

fn check_group(out: &mut Problems, path: &str, group: &TaskGroup) {
    check_id(out, &join(path, "name"), "group name", &group.name);
    if group.count > MAX_COUNT {
        out.push(
            Problem::new(
                join(path, "count"),
                format!(
                    "count {} is impossible: at most {MAX_COUNT} allocations per group",
                    group.count
                ),
            )
            .hint("split the work over several groups or jobs if you really need more"),
        );
    }
    check_constraints(out, path, &group.constraints);
    check_affinities(out, path, &group.affinities);
    check_spreads(out, path, &group.spreads);
    check_restart(out, &join(path, "restart"), &group.restart);
    check_reschedule(out, &join(path, "reschedule"), &group.reschedule);
    check_meta(out, &join(path, "meta"), &group.meta);

    if group.tasks.is_empty() {
        out.push(
            Problem::new(join(path, "task"), "the group has no tasks")
                .hint("add a [[group.task]] table after the group's [[group]]"),
        );
    }
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for (i, task) in group.tasks.iter().enumerate() {
        let task_path = format!("{path}.task[{i}]");
        if !task.name.is_empty() {
            if let Some(first) = seen.get(task.name.as_str()) {
                out.push(
                    Problem::new(
                        join(&task_path, "name"),
                        format!("task name `{}` is used twice in this group", task.name),
                    )
                    .hint(format!("{path}.task[{first}] has it already; task names must be unique within a group")),
                );
            } else {
                seen.insert(&task.name, i);
            }
        }
        check_task(out, &task_path, task);
    }
}

fn check_task(out: &mut Problems, path: &str, task: &Task) {
    if task.name.trim().is_empty() {
        out.push(
            Problem::new(join(path, "name"), "task name is empty")
                .hint("name the task, e.g. name = \"server\""),
        );
    } else if task.name.contains(['/', '\\', '\0']) || task.name == "." || task.name == ".." {
        // The agent makes a directory per task, named after it.
        out.push(
            Problem::new(
                join(path, "name"),
                format!("task name `{}` cannot be a directory name", task.name),
            )
            .hint("leave out `/`, `\\` and NUL, and do not use `.` or `..`"),
        );
    } else if task.name.starts_with('.') || task.name == "logs" || task.name == "alloc" {
        // Beside the task directories the agent keeps the allocation's
        // logs, its shared `alloc` directory and its own `.`-files.
        out.push(
            Problem::new(
                join(path, "name"),
                format!("task name `{}` is reserved", task.name),
            )
            .hint("`logs`, `alloc` and names starting with `.` name the agent's own directories; pick another name"),
        );
    }
    if task.driver.trim().is_empty() {
        out.push(
            Problem::new(join(path, "driver"), "driver is empty")
                .hint("name the task driver that runs the task, e.g. driver = \"exec\""),
        );
    }
    check_resources(out, &join(path, "resources"), task.resources);
    for key in task.env.keys() {
        if !is_env_name(key) {
            out.push(
                Problem::new(
                    format!("{path}.env.{key}"),
                    format!("`{key}` is not a valid environment variable name"),
                )
                .hint("use letters, digits and `_`, not starting with a digit"),
            );
        }
    }
    for (i, artifact) in task.artifacts.iter().enumerate() {
        check_artifact(out, &format!("{path}.artifact[{i}]"), artifact);
    }
    check_constraints(out, path, &task.constraints);
    check_affinities(out, path, &task.affinities);
    check_meta(out, &join(path, "meta"), &task.meta);
}

fn check_resources(out: &mut Problems, path: &str, r: Resources) {
    let cpu = join(path, "cpu");
    let memory = join(path, "memory");
    if r.cpu < 1 {
        out.push(Problem::new(cpu, "cpu must be at least 1 MHz").hint("e.g. cpu = 100"));
    } else if r.cpu > MAX_CPU_MHZ {
        out.push(
            Problem::new(
                cpu,
                format!(
                    "cpu {} MHz is impossible: no node has more than {MAX_CPU_MHZ} MHz",
                    r.cpu
                ),
            )
            .hint("cpu is in MHz: 500 is half of a 1 GHz core"),
        );
    }
    if r.memory < MIN_MEMORY_MIB {
        out.push(
            Problem::new(
                memory,
                format!(
                    "memory {} MiB is too little: at least {MIN_MEMORY_MIB} MiB",
                    r.memory
                ),
            )
            .hint("memory is in MiB, e.g. memory = 256"),
        );
    } else if r.memory > MAX_MEMORY_MIB {
        out.push(
            Problem::new(
                memory,
                format!("memory {} MiB is impossible: more than 64 TiB", r.memory),
            )
            .hint("memory is in MiB, not bytes: 256 means 256 MiB"),
        );
    }
    if r.disk > MAX_DISK_MIB {
        out.push(
            Problem::new(
                join(path, "disk"),
                format!("disk {} MiB is impossible: more than 1 PiB", r.disk),
            )
            .hint("disk is in MiB, not bytes: 1024 means 1 GiB"),
        );
    }
}

fn is_env_name(s: &str) -> bool {
    let mut bytes = s.bytes();
    matches!(bytes.next(), Some(b'A'..=b'Z' | b'a'..=b'z' | b'_'))
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

fn check_meta(out: &mut Problems, path: &str, meta: &BTreeMap<String, String>) {
    if meta.contains_key("") {
        out.push(Problem::new(path, "a meta key is empty").hint("give every meta value a name"));
    }
}

fn check_artifact(out: &mut Problems, path: &str, a: &Artifact) {
    let source = join(path, "source");
    let http = ["http://", "https://"]
        .iter()
        .find_map(|s| a.source.strip_prefix(s));
    if let Some(rest) = http {
        if rest.is_empty() || rest.starts_with('/') {
            out.push(
                Problem::new(&source, format!("`{}` has no host", a.source))
                    .hint("e.g. https://example.com/app.tar.gz"),
            );
        }
        if a.sha256.is_none() {
            out.push(
                Problem::new(
                    join(path, "sha256"),
                    "an http(s) artifact needs a sha256 checksum",
                )
                .hint("add sha256 = \"<64 hex digits>\"; `sha256sum FILE` prints it"),
            );
        }
    } else if let Some(rest) = a.source.strip_prefix("file://") {
        if rest.is_empty() {
            out.push(
                Problem::new(&source, "the file:// source has no path")
                    .hint("e.g. file:///opt/app/bin"),
            );
        }
    } else if a.source.is_empty() {
        out.push(
            Problem::new(&source, "source is empty")
                .hint("use an http://, https:// or file:// URL"),
        );
    } else {
        out.push(
            Problem::new(&source, format!("`{}` is not a supported source", a.source))
                .hint("use an http://, https:// or file:// URL"),
        );
    }
    if let Some(sum) = &a.sha256
        && (sum.len() != 64 || !sum.bytes().all(|b| b.is_ascii_hexdigit()))
    {
        out.push(
            Problem::new(
                join(path, "sha256"),
                format!("`{sum}` is not a sha256: expected 64 hex digits"),
            )
            .hint("`sha256sum FILE` prints it"),
        );
    }
    let dest = join(path, "destination");
    if a.destination.starts_with('/') || a.destination.starts_with('\\') {
        out.push(
            Problem::new(
                &dest,
                format!("destination `{}` is absolute", a.destination),
            )
            .hint("use a path inside the task directory, e.g. \"local/\""),
        );
    } else if a.destination.split(['/', '\\']).any(|part| part == "..") {
        out.push(
            Problem::new(
                &dest,
                format!("destination `{}` leaves the task directory", a.destination),
            )
            .hint("remove the `..` parts"),
        );
    }
}

/// Where a predicate (attribute, operator, value) sits: the three blocks
/// share the attribute rules but differ in what they allow.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Block {
    Constraint,
    Affinity,
}

fn check_constraints(out: &mut Problems, prefix: &str, list: &[Constraint]) {
    for (i, c) in list.iter().enumerate() {
        let path = join(prefix, &format!("constraint[{i}]"));
        check_predicate(
            out,
            &path,
            Block::Constraint,
            &c.attribute,
            c.operator,
            &c.value,
        );
    }
}

fn check_affinities(out: &mut Problems, prefix: &str, list: &[Affinity]) {
    for (i, a) in list.iter().enumerate() {
        let path = join(prefix, &format!("affinity[{i}]"));
        check_predicate(
            out,
            &path,
            Block::Affinity,
            &a.attribute,
            a.operator,
            &a.value,
        );
        if a.weight == 0 || !(-100..=100).contains(&a.weight) {
            out.push(
                Problem::new(
                    join(&path, "weight"),
                    format!("affinity weight {} is out of range", a.weight),
                )
                .hint("use -100 to 100, not 0; negative weights steer away from matching nodes"),
            );
        }
    }
}

fn check_spreads(out: &mut Problems, prefix: &str, list: &[Spread]) {
    for (i, s) in list.iter().enumerate() {
        let path = join(prefix, &format!("spread[{i}]"));
        check_attribute(out, &join(&path, "attribute"), &s.attribute);
        if !(1..=100).contains(&s.weight) {
            out.push(
                Problem::new(
                    join(&path, "weight"),
                    format!("spread weight {} is out of range", s.weight),
                )
                .hint("use 1 to 100"),
            );
        }
        let mut sum: u32 = 0;
        let mut seen = HashSet::new();
        for (j, t) in s.targets.iter().enumerate() {
            let tpath = format!("{path}.target[{j}]");
            sum += u32::from(t.percent);
            if t.value.is_empty() {
                out.push(
                    Problem::new(join(&tpath, "value"), "target value is empty")
                        .hint("name the attribute value, e.g. value = \"dc1\""),
                );
            } else if !seen.insert(t.value.as_str()) {
                out.push(
                    Problem::new(
                        join(&tpath, "value"),
                        format!("target value `{}` is listed twice", t.value),
                    )
                    .hint("give each value one target"),
                );
            }
            if t.percent > 100 {
                out.push(
                    Problem::new(
                        join(&tpath, "percent"),
                        format!("percent {} is more than 100", t.percent),
                    )
                    .hint("use 0 to 100"),
                );
            }
        }
        if sum > 100 {
            out.push(
                Problem::new(
                    join(&path, "target"),
                    format!("target percents add up to {sum}, more than 100"),
                )
                .hint("lower them; values without a target share what is left"),
            );
        }
    }
}

fn check_predicate(
    out: &mut Problems,
    path: &str,
    block: Block,
    attribute: &str,
    op: Operator,
    value: &str,
) {
    let attr_path = join(path, "attribute");
    let value_path = join(path, "value");
    if op == Operator::DistinctHosts {
        if block == Block::Affinity {
            out.push(
                Problem::new(
                    join(path, "operator"),
                    "distinct_hosts is a constraint, not an affinity",
                )
                .hint("move it to a [[constraint]] block"),
            );
            return;
        }
        if !attribute.is_empty() {
            out.push(
                Problem::new(attr_path, "distinct_hosts takes no attribute")
                    .hint("remove `attribute`; distinct_hosts applies to the node itself"),
            );
        }
        if !value.is_empty() {
            out.push(
                Problem::new(value_path, "distinct_hosts takes no value").hint("remove `value`"),
            );
        }
        return;
    }
    check_attribute(out, &attr_path, attribute);
    if matches!(op, Operator::IsSet | Operator::IsNotSet) {
        if !value.is_empty() {
            out.push(
                Problem::new(value_path, format!("{} takes no value", op.as_str()))
                    .hint("remove `value`; to compare the value use operator = \"=\""),
            );
        }
        return;
    }
    match op {
        _ if value.is_empty() => {
            let hint = match op {
                Operator::Equal | Operator::NotEqual => {
                    "to require that the attribute is missing, use operator = \"is_not_set\""
                }
                _ => "set `value`, the operand the attribute is compared with",
            };
            out.push(
                Problem::new(
                    value_path,
                    format!("operator {} needs a value", op.as_str()),
                )
                .hint(hint),
            );
        }
        Operator::Regexp => {
            if let Err(e) = regex::Regex::new(value) {
                out.push(
                    Problem::new(
                        value_path,
                        format!("`{value}` is not a valid regexp: {}", regex_reason(&e)),
                    )
                    .hint("the syntax is Rust's `regex` crate's, like RE2's"),
                );
            }
        }
        Operator::Version => {
            if let Err(e) = VersionRange::parse(value) {
                out.push(
                    Problem::new(value_path, format!("`{value}` is not a version range: {e}"))
                        .hint("write clauses like `>= 1.2, < 2.0` or `~> 1.4`"),
                );
            }
        }
        _ => {}
    }
}

/// The regex crate's errors span several lines with a caret diagram; a
/// problem is one line, so keep the line that says what is wrong.
fn regex_reason(e: &regex::Error) -> String {
    let text = e.to_string();
    text.lines()
        .find_map(|l| l.trim().strip_prefix("error: "))
        .or_else(|| text.lines().next())
        .unwrap_or("invalid")
        .to_owned()
}

fn check_attribute(out: &mut Problems, path: &str, attribute: &str) {
    if attribute.is_empty() {
        out.push(
            Problem::new(path, "attribute is empty")
                .hint("e.g. attribute = \"${attr.kernel.name}\" or \"${node.datacenter}\""),
        );
        return;
    }
    let Some(inner) = attribute
        .strip_prefix("${")
        .and_then(|a| a.strip_suffix('}'))
    else {
        let bare = attribute.trim_start_matches('$');
        let hint = if looks_like_target(bare) {
            format!("did you mean `${{{bare}}}`?")
        } else {
            "write ${attr.<name>}, ${meta.<name>} or ${node.<field>}".to_owned()
        };
        out.push(
            Problem::new(
                path,
                format!(
                    "attribute `{attribute}` is not an interpolation like ${{attr.kernel.name}}"
                ),
            )
            .hint(hint),
        );
        return;
    };
    if !looks_like_target(inner) {
        let hint = match inner.strip_prefix("node.") {
            Some(field) if !field.is_empty() => format!(
                "${{node.<field>}} takes {}; for the node's own metadata use `${{meta.{field}}}`",
                NODE_ATTRIBUTES.join(", ")
            ),
            _ => format!(
                "use ${{attr.<name>}}, ${{meta.<name>}} or ${{node.<field>}} where <field> is one of {}",
                NODE_ATTRIBUTES.join(", ")
            ),
        };
        out.push(Problem::new(path, format!("unknown attribute `{attribute}`")).hint(hint));
    }
}

fn looks_like_target(s: &str) -> bool {
    if let Some(name) = s.strip_prefix("attr.").or_else(|| s.strip_prefix("meta.")) {
        return !name.is_empty();
    }
    s.strip_prefix("node.")
        .is_some_and(|f| NODE_ATTRIBUTES.contains(&f))
}

fn check_restart(out: &mut Problems, path: &str, r: &RestartPolicy) {
    if r.attempts > MAX_ATTEMPTS {
        out.push(
            Problem::new(
                join(path, "attempts"),
                format!("{} restart attempts is too many", r.attempts),
            )
            .hint(format!(
                "use at most {MAX_ATTEMPTS}; mode = \"delay\" keeps trying after each interval"
            )),
        );
    }
    if r.attempts == 0 && r.mode == RestartMode::Delay {
        out.push(
            Problem::new(
                join(path, "attempts"),
                "mode = \"delay\" with 0 attempts is ambiguous",
            )
            .hint("set attempts to 1 or more, or use mode = \"fail\" to never restart"),
        );
    }
    if r.interval.0 < RESTART_MIN_INTERVAL {
        out.push(
            Problem::new(
                join(path, "interval"),
                format!("interval {} is shorter than 5s", r.interval),
            )
            .hint("a crash loop would never be noticed; use 5s or more"),
        );
    } else if let Some(total) = r.delay.0.checked_mul(r.attempts)
        && total > r.interval.0
    {
        // Nomad's rule: the attempts, each after `delay`, must fit in the
        // interval, or the limit could never be reached.
        out.push(
            Problem::new(
                join(path, "delay"),
                format!(
                    "{} restarts with a delay of {} take {}, longer than the interval of {}",
                    r.attempts,
                    r.delay,
                    Dur(total),
                    r.interval
                ),
            )
            .hint(
                "attempts × delay must fit in interval: lower attempts or delay, or raise interval",
            ),
        );
    } else if r.delay.0.checked_mul(r.attempts).is_none() {
        out.push(
            Problem::new(
                join(path, "delay"),
                format!(
                    "{} restarts with a delay of {} never end",
                    r.attempts, r.delay
                ),
            )
            .hint("attempts × delay must fit in interval"),
        );
    }
}

fn check_reschedule(out: &mut Problems, path: &str, r: &ReschedulePolicy) {
    if r.max_delay < r.delay {
        out.push(
            Problem::new(
                join(path, "max_delay"),
                format!(
                    "max_delay {} is shorter than delay {}",
                    r.max_delay, r.delay
                ),
            )
            .hint("the delay doubles up to max_delay; raise max_delay or lower delay"),
        );
        return;
    }
    if r.unlimited {
        return;
    }
    if r.attempts > MAX_ATTEMPTS {
        out.push(
            Problem::new(
                join(path, "attempts"),
                format!("{} reschedule attempts is too many", r.attempts),
            )
            .hint(format!("use at most {MAX_ATTEMPTS}, or unlimited = true")),
        );
        return;
    }
    if r.attempts == 0 {
        return;
    }
    if r.interval.0 < RESCHEDULE_MIN_INTERVAL {
        out.push(
            Problem::new(
                join(path, "interval"),
                format!("interval {} is shorter than 15s", r.interval),
            )
            .hint("use 15s or more"),
        );
        return;
    }
    // The delays double from `delay` up to `max_delay`; all attempts must
    // fit in the interval, as in Nomad.
    let (total, fit) = reschedule_span(r);
    if total > r.interval.0 {
        out.push(
            Problem::new(
                join(path, "interval"),
                format!(
                    "{} reschedules with a delay of {} doubling up to {} take {}, longer than the interval of {}",
                    r.attempts,
                    r.delay,
                    r.max_delay,
                    Dur(total),
                    r.interval
                ),
            )
            .hint(format!(
                "only {fit} fit in {}: lower attempts or delay, or raise interval",
                r.interval
            )),
        );
    }
}

/// Total wait of all reschedule attempts, and how many attempts fit into
/// the interval.
fn reschedule_span(r: &ReschedulePolicy) -> (Duration, u32) {
    let mut total = Duration::ZERO;
    let mut delay = r.delay.0;
    let mut fit = 0;
    for _ in 0..r.attempts {
        total = total.saturating_add(delay.min(r.max_delay.0));
        if total <= r.interval.0 {
            fit += 1;
        }
        delay = delay.saturating_mul(2);
    }
    (total, fit)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests may")]
    use super::*;
    use crate::{SpreadTarget, Task};

    fn task(name: &str) -> Task {
        serde_json::from_value(serde_json::json!({"name": name, "driver": "exec"})).unwrap()
    }

    fn job() -> Job {
        serde_json::from_value(serde_json::json!({
            "id": "web",
            "group": [{"name": "app", "task": [{"name": "server", "driver": "exec"}]}]
        }))
        .unwrap()
    }

    fn fields(problems: &[Problem]) -> Vec<&str> {
        problems.iter().map(|p| p.field.as_str()).collect()
    }

    #[test]
    fn a_minimal_job_is_valid() {
        assert_eq!(validate_job(&job()), vec![]);
        assert_eq!(job_warnings(&job()), vec![]);
    }

    #[test]
    fn ids() {
        for good in ["web", "0", "a.b-c_d", &"a".repeat(128)] {
            assert!(is_valid_id(good), "{good}");
        }
        for bad in ["", "Web", "-web", "_x", "web app", "wéb"] {
            assert!(!is_valid_id(bad), "{bad}");
        }
        let mut j = job();
        j.id = "a".repeat(129);
        assert_eq!(fields(&validate_job(&j)), ["id"]);
    }

    #[test]
    fn every_problem_is_reported() {
        let mut j = job();
        j.id = "Web".into();
        j.priority = 0;
        j.groups[0].count = 10_001;
        j.groups[0].tasks.push(task("server"));
        j.groups[0].tasks[1].driver = String::new();
        j.groups[0].tasks[1].resources = Resources::new(0, 1 << 40, 0);
        j.groups.push(j.groups[0].clone());
        let p = validate_job(&j);
        assert_eq!(
            fields(&p),
            [
                "id",
                "priority",
                "group[0].count",
                "group[0].task[1].name",
                "group[0].task[1].driver",
                "group[0].task[1].resources.cpu",
                "group[0].task[1].resources.memory",
                "group[1].name",
                "group[1].count",
                "group[1].task[1].name",
                "group[1].task[1].driver",
                "group[1].task[1].resources.cpu",
                "group[1].task[1].resources.memory",
            ]
        );
    }

    #[test]
    fn no_groups_and_no_tasks() {
        let mut j = job();
        j.groups[0].tasks.clear();
        assert_eq!(fields(&validate_job(&j)), ["group[0].task"]);
        j.groups.clear();
        assert_eq!(fields(&validate_job(&j)), ["group"]);
    }

    fn constraint(attribute: &str, operator: Operator, value: &str) -> Constraint {
        Constraint {
            attribute: attribute.into(),
            operator,
            value: value.into(),
        }
    }

    #[test]
    fn constraints() {
        let mut j = job();
        j.constraints = vec![
            constraint("${attr.kernel.name}", Operator::Equal, "linux"),
            constraint("${node.rack}", Operator::Equal, "r1"),
            constraint("attr.kernel.name", Operator::Equal, "linux"),
            constraint("", Operator::DistinctHosts, ""),
            constraint("${node.id}", Operator::DistinctHosts, ""),
            constraint("${meta.x}", Operator::Regexp, "(a"),
            constraint("${attr.v}", Operator::Version, ">= 1.x"),
            constraint("${attr.cpu}", Operator::Greater, ""),
            constraint("${meta.x}", Operator::IsSet, "yes"),
            constraint("${meta.x}", Operator::IsNotSet, ""),
            constraint("${node.unique.name}", Operator::Version, "~> 1.2"),
        ];
        let p = validate_job(&j);
        assert_eq!(
            fields(&p),
            [
                "constraint[1].attribute",
                "constraint[2].attribute",
                "constraint[4].attribute",
                "constraint[5].value",
                "constraint[6].value",
                "constraint[7].value",
                "constraint[8].value",
            ]
        );
        assert_eq!(
            p[1].hint.as_deref(),
            Some("did you mean `${attr.kernel.name}`?")
        );
        assert_eq!(p[3].message, "`(a` is not a valid regexp: unclosed group");
    }

    #[test]
    fn affinities_and_spreads() {
        let mut j = job();
        j.groups[0].affinities = vec![
            Affinity {
                attribute: "${node.datacenter}".into(),
                operator: Operator::Equal,
                value: "dc1".into(),
                weight: 0,
            },
            Affinity {
                attribute: "${node.datacenter}".into(),
                operator: Operator::DistinctHosts,
                value: String::new(),
                weight: -101,
            },
        ];
        let target = |value: &str, percent| SpreadTarget {
            value: value.into(),
            percent,
        };
        j.groups[0].spreads = vec![Spread {
            attribute: "${node.datacenter}".into(),
            weight: 0,
            targets: vec![target("dc1", 60), target("dc1", 50)],
        }];
        assert_eq!(
            fields(&validate_job(&j)),
            [
                "group[0].affinity[0].weight",
                "group[0].affinity[1].operator",
                "group[0].affinity[1].weight",
                "group[0].spread[0].weight",
                "group[0].spread[0].target[1].value",
                "group[0].spread[0].target",
            ]
        );
    }

    #[test]
    fn restart_attempts_must_fit_the_interval() {
        let mut j = job();
        j.groups[0].restart = RestartPolicy {
            attempts: 10,
            delay: Dur::secs(60),
            interval: Dur::secs(300),
            mode: RestartMode::Fail,
        };
        let p = validate_job(&j);
        assert_eq!(fields(&p), ["group[0].restart.delay"]);
        assert_eq!(
            p[0].message,
            "10 restarts with a delay of 1m take 10m, longer than the interval of 5m"
        );
        j.groups[0].restart = RestartPolicy {
            attempts: 0,
            mode: RestartMode::Delay,
            ..RestartPolicy::default()
        };
        assert_eq!(fields(&validate_job(&j)), ["group[0].restart.attempts"]);
    }

    #[test]
    fn reschedule_delays_double_within_the_interval() {
        let mut j = job();
        j.groups[0].reschedule = ReschedulePolicy {
            attempts: 5,
            delay: Dur::secs(60),
            max_delay: Dur::secs(600),
            interval: Dur::secs(600),
            unlimited: false,
        };
        // 1m + 2m + 4m + 8m→10m... 7m fit after 3 attempts.
        let p = validate_job(&j);
        assert_eq!(fields(&p), ["group[0].reschedule.interval"]);
        assert_eq!(
            p[0].hint.as_deref(),
            Some("only 3 fit in 10m: lower attempts or delay, or raise interval")
        );
        j.groups[0].reschedule.unlimited = true;
        assert_eq!(validate_job(&j), vec![]);
        j.groups[0].reschedule.max_delay = Dur::secs(1);
        assert_eq!(fields(&validate_job(&j)), ["group[0].reschedule.max_delay"]);
    }

    #[test]
    fn artifacts_and_env() {
        let mut j = job();
        let t = &mut j.groups[0].tasks[0];
        let artifact = |source: &str, sha: Option<&str>, dest: &str| Artifact {
            source: source.into(),
            destination: dest.into(),
            sha256: sha.map(Into::into),
            executable: false,
        };
        t.artifacts = vec![
            artifact("https://example.com/a", Some(&"ab".repeat(32)), "local/"),
            artifact("https://example.com/a", None, "local/"),
            artifact("ftp://example.com/a", None, "/etc"),
            artifact("file:///opt/a", Some("xyz"), "local/../../x"),
        ];
        t.env.insert("GOOD_1".into(), "x".into());
        t.env.insert("1BAD".into(), "x".into());
        t.env.insert("BAD-NAME".into(), "x".into());
        assert_eq!(
            fields(&validate_job(&j)),
            [
                "group[0].task[0].env.1BAD",
                "group[0].task[0].env.BAD-NAME",
                "group[0].task[0].artifact[1].sha256",
                "group[0].task[0].artifact[2].source",
                "group[0].task[0].artifact[2].destination",
                "group[0].task[0].artifact[3].sha256",
                "group[0].task[0].artifact[3].destination",
            ]
        );
    }

    #[test]
    fn system_jobs_warn_about_count() {
        let mut j = job();
        j.job_type = JobType::System;
        j.groups[0].count = 3;
        assert_eq!(validate_job(&j), vec![]);
        assert_eq!(fields(&job_warnings(&j)), ["group[0].count"]);
    }
}
