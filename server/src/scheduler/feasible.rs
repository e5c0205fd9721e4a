//! Feasibility: can this node take an allocation of this group at all?
//! Every node filtered out gets a reason, counted in the evaluation's
//! metrics so `orch eval status` can say why placement failed.

use orch_model::{Constraint, Job, Node, Operator, TaskGroup, VersionRange};
use regex::Regex;
use std::cmp::Ordering;

/// The hard requirements of one task group, compiled once per evaluation.
pub struct Feasibility {
    datacenters: Vec<String>,
    /// Each driver the group needs, with the reason a node without it is
    /// filtered under.
    drivers: Vec<(String, String)>,
    constraints: Vec<Compiled>,
    /// `distinct_hosts`, and whether it keeps the whole job's allocations
    /// apart or only the group's.
    pub distinct_hosts: Option<DistinctHosts>,
}

/// What `distinct_hosts` keeps apart: set on the job, no two allocations of
/// the job share a node; set on a group (or a task), no two of the group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DistinctHosts {
    Job,
    Group,
}

struct Compiled {
    constraint: Constraint,
    regex: Option<Regex>,
    /// What a filtered node is counted under.
    reason: String,
}

impl Feasibility {
    /// Compiles the job's, the group's and its tasks' constraints. A
    /// constraint that cannot be compiled (a bad regexp that slipped past
    /// validation) is an error naming it.
    pub fn new(job: &Job, group: &TaskGroup) -> Result<Self, String> {
        let mut names: Vec<&str> = group.drivers().collect();
        names.sort_unstable();
        names.dedup();
        let drivers = names
            .into_iter()
            .map(|d| (d.to_owned(), format!("missing driver {d}")))
            .collect();
        let group_level = group
            .constraints
            .iter()
            .chain(group.tasks.iter().flat_map(|t| &t.constraints));
        let all = job
            .constraints
            .iter()
            .map(|c| (c, DistinctHosts::Job))
            .chain(group_level.map(|c| (c, DistinctHosts::Group)));
        let mut constraints = Vec::new();
        let mut distinct_hosts = None;
        for (c, scope) in all {
            if c.operator == Operator::DistinctHosts {
                // The job's wins: it keeps more apart.
                if distinct_hosts != Some(DistinctHosts::Job) {
                    distinct_hosts = Some(scope);
                }
                continue;
            }
            let regex = match c.operator {
                Operator::Regexp => Some(
                    Regex::new(&c.value)
                        .map_err(|e| format!("constraint {}: bad regexp: {e}", describe(c)))?,
                ),
                _ => None,
            };
            constraints.push(Compiled {
                reason: format!("constraint {}", describe(c)),
                constraint: c.clone(),
                regex,
            });
        }
        Ok(Self {
            datacenters: job.datacenters.clone(),
            drivers,
            constraints,
            distinct_hosts,
        })
    }

    /// `Ok` when the node meets every requirement, else the first unmet
    /// one, as the reason it is filtered.
    pub fn check<'a>(&'a self, node: &Node) -> Result<(), &'a str> {
        if !self.datacenters.is_empty() && !self.datacenters.contains(&node.datacenter) {
            return Err("datacenter not in the job's datacenters");
        }
        for (driver, reason) in &self.drivers {
            if !node.has_driver(driver) {
                return Err(reason);
            }
        }
        for c in &self.constraints {
            if !meets(node, &c.constraint, c.regex.as_ref()) {
                return Err(&c.reason);
            }
        }
        Ok(())
    }
}

/// `${attr.kernel.name} = linux`, as metrics and messages show it.
pub fn describe(c: &Constraint) -> String {
    match c.operator {
        Operator::IsSet | Operator::IsNotSet => format!("{} {}", c.attribute, c.operator.as_str()),
        _ => format!("{} {} {}", c.attribute, c.operator.as_str(), c.value),
    }
}

/// Whether `node` meets the constraint (or matches the affinity, which has
/// the same operators).
pub fn meets(node: &Node, c: &Constraint, regex: Option<&Regex>) -> bool {
    let value = node.lookup(&c.attribute);
    match c.operator {
        Operator::IsSet => value.is_some(),
        Operator::IsNotSet => value.is_none(),
        Operator::DistinctHosts => true,
        _ => {
            let Some(value) = value else {
                return false;
            };
            match c.operator {
                Operator::Equal => value == c.value,
                Operator::NotEqual => value != c.value,
                Operator::Less => compare(value, &c.value) == Ordering::Less,
                Operator::LessEqual => compare(value, &c.value) != Ordering::Greater,
                Operator::Greater => compare(value, &c.value) == Ordering::Greater,
                Operator::GreaterEqual => compare(value, &c.value) != Ordering::Less,
                Operator::Regexp => match regex {
                    Some(r) => r.is_match(value),
                    None => Regex::new(&c.value).is_ok_and(|r| r.is_match(value)),
                },
                Operator::SetContains => {
                    let have: Vec<&str> = value.split(',').map(str::trim).collect();
                    c.value.split(',').map(str::trim).all(|v| have.contains(&v))
                }
                Operator::Version => VersionRange::parse(&c.value).is_ok_and(|r| r.matches(value)),
                Operator::IsSet | Operator::IsNotSet | Operator::DistinctHosts => true,
            }
        }
    }
}

/// Numbers compare as numbers, anything else lexically (Nomad's rule).
fn compare(a: &str, b: &str) -> Ordering {
    match (a.parse::<f64>(), b.parse::<f64>()) {
        (Ok(x), Ok(y)) => x.partial_cmp(&y).unwrap_or(Ordering::Equal),
        _ => a.cmp(b),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests may")]
    use super::*;

    fn node(attrs: &[(&str, &str)]) -> Node {
        serde_json::from_value(serde_json::json!({
            "id": "n1", "name": "n1", "resources": {"cpu": 1000, "memory": 1000},
            "attributes": attrs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect::<std::collections::BTreeMap<_, _>>(),
            "drivers": {"exec": {"detected": true, "healthy": true}},
            "status": "ready",
        }))
        .unwrap()
    }

    fn c(attribute: &str, op: &str, value: &str) -> Constraint {
        serde_json::from_value(
            serde_json::json!({"attribute": attribute, "operator": op, "value": value}),
        )
        .unwrap()
    }

    #[test]
    fn operators() {
        let n = node(&[
            ("kernel.name", "linux"),
            ("cpu.cores", "16"),
            ("kernel.version", "6.1.0-13-amd64"),
            ("tags", "ssd, gpu"),
        ]);
        let yes = |attr: &str, op: &str, v: &str| meets(&n, &c(attr, op, v), None);
        assert!(yes("${attr.kernel.name}", "=", "linux"));
        assert!(!yes("${attr.kernel.name}", "!=", "linux"));
        assert!(yes("${attr.cpu.cores}", ">", "8"), "numeric, not lexical");
        assert!(yes("${attr.cpu.cores}", "<=", "16"));
        assert!(yes("${attr.kernel.name}", "regexp", "^lin"));
        assert!(yes("${attr.kernel.version}", "version", ">= 5.10, < 7"));
        assert!(!yes("${attr.kernel.version}", "version", ">= 6.2"));
        assert!(yes("${attr.tags}", "set_contains", "gpu,ssd"));
        assert!(!yes("${attr.tags}", "set_contains", "gpu,nvme"));
        assert!(yes("${attr.kernel.name}", "is_set", ""));
        assert!(yes("${attr.missing}", "is_not_set", ""));
        assert!(
            !yes("${attr.missing}", "=", ""),
            "a missing attribute meets nothing"
        );
    }

    #[test]
    fn every_filtered_node_has_a_reason() {
        let job: Job = serde_json::from_value(serde_json::json!({
            "id": "j", "constraint": [{"attribute": "${attr.kernel.name}", "value": "darwin"}],
            "group": [{"name": "g", "task": [{"name": "t", "driver": "exec"}]}],
        }))
        .unwrap();
        let f = Feasibility::new(&job, &job.groups[0]).unwrap();
        let linux = node(&[("kernel.name", "linux")]);
        assert_eq!(
            f.check(&linux),
            Err("constraint ${attr.kernel.name} = darwin")
        );
        let mut no_exec = node(&[("kernel.name", "darwin")]);
        assert_eq!(f.check(&no_exec), Ok(()));
        no_exec.drivers.clear();
        assert_eq!(f.check(&no_exec), Err("missing driver exec"));
    }
}
