//! Field-level differences between two versions of a job, for
//! `orch job plan`.
//!
//! Both jobs are turned into JSON values as the API writes them and walked
//! side by side; every scalar that differs is one [`FieldDiff`]. Paths:
//!
//! - object keys are joined by dots: `meta.owner`, `restart.attempts`;
//! - arrays whose elements are all objects with distinct `name`s (groups,
//!   tasks) are matched by name, written in brackets:
//!   `group[web].task[server].resources.memory`. Matching by name means a
//!   group moved in the file is not a change, and a removed group does not
//!   show every later group as edited;
//! - other arrays are matched by position: `datacenters[1]`,
//!   `group[web].constraint[0].value`;
//! - a whole object or array added or deleted shows as each of its fields
//!   added or deleted; an empty one as the value `{}` or `[]`.
//!
//! Values are written as compact JSON, so strings keep their quotes and
//! `"5"` is told from `5`.

use orch_model::Job;
use orch_wire::FieldDiff;
use serde_json::{Map, Value};

/// What `diff_type` says: `create` (no registered job), `none` or `edit`.
pub fn diff_type(old: Option<&Job>, diff: &[FieldDiff]) -> &'static str {
    match old {
        None => "create",
        Some(_) if diff.is_empty() => "none",
        Some(_) => "edit",
    }
}

/// The differences between the registered job (`None` if there is none)
/// and `new` as it would be registered. Fields the server sets (version,
/// indexes, submit time) are not compared; `stop` is, because registering
/// a stopped job starts it again.
pub fn job_diff(old: Option<&Job>, new: &Job) -> Vec<FieldDiff> {
    let mut new = new.clone();
    // Registering clears `stop`, whatever the body said.
    new.stop = false;
    let mut out = Vec::new();
    match old {
        None => walk(&mut out, String::new(), None, Some(&comparable(&new))),
        Some(old) => walk(
            &mut out,
            String::new(),
            Some(&comparable(old)),
            Some(&comparable(&new)),
        ),
    }
    out
}

/// `job` as JSON without the fields the server sets on every version, and
/// with `stop` written even when false (serde leaves it out then), so that
/// restarting a stopped job reads `stop: true => false`.
fn comparable(job: &Job) -> Value {
    // A Job is plain data: serializing it cannot fail; if it ever did, the
    // diff would show everything as changed rather than nothing.
    let mut value = serde_json::to_value(job).unwrap_or(Value::Null);
    if let Value::Object(map) = &mut value {
        for key in ["version", "create_index", "modify_index", "submit_time_ms"] {
            map.remove(key);
        }
        map.insert("stop".to_owned(), Value::Bool(job.stop));
    }
    value
}

fn walk(out: &mut Vec<FieldDiff>, path: String, old: Option<&Value>, new: Option<&Value>) {
    match (old, new) {
        (None, None) => {}
        (Some(Value::Object(a)), Some(Value::Object(b))) => {
            walk_objects(out, &path, Some(a), Some(b))
        }
        (Some(Value::Array(a)), Some(Value::Array(b))) => walk_arrays(out, &path, a, b),
        (Some(Value::Object(a)), None) if !a.is_empty() => walk_objects(out, &path, Some(a), None),
        (None, Some(Value::Object(b))) if !b.is_empty() => walk_objects(out, &path, None, Some(b)),
        (Some(Value::Array(a)), None) if !a.is_empty() => walk_arrays(out, &path, a, &[]),
        (None, Some(Value::Array(b))) if !b.is_empty() => walk_arrays(out, &path, &[], b),
        (Some(a), Some(b)) if a == b => {}
        (a, b) => out.push(leaf(path, a, b)),
    }
}

fn leaf(field: String, old: Option<&Value>, new: Option<&Value>) -> FieldDiff {
    let kind = match (old, new) {
        (None, _) => "added",
        (_, None) => "deleted",
        _ => "edited",
    };
    FieldDiff {
        kind: kind.to_owned(),
        field,
        old: old.map(Value::to_string),
        new: new.map(Value::to_string),
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

fn walk_objects(
    out: &mut Vec<FieldDiff>,
    path: &str,
    old: Option<&Map<String, Value>>,
    new: Option<&Map<String, Value>>,
) {
    // serde_json's map is ordered by key here, so the output order is
    // stable: the old object's keys, then keys only the new one has.
    let empty = Map::new();
    let (old, new) = (old.unwrap_or(&empty), new.unwrap_or(&empty));
    for (key, a) in old {
        walk(out, join(path, key), Some(a), new.get(key));
    }
    for (key, b) in new {
        if !old.contains_key(key) {
            walk(out, join(path, key), None, Some(b));
        }
    }
}

fn walk_arrays(out: &mut Vec<FieldDiff>, path: &str, old: &[Value], new: &[Value]) {
    if let (Some(old_names), Some(new_names)) = (names(old), names(new)) {
        for (name, a) in old_names.iter().zip(old) {
            let b = new_names
                .iter()
                .position(|n| n == name)
                .and_then(|i| new.get(i));
            walk(out, format!("{path}[{name}]"), Some(a), b);
        }
        for (name, b) in new_names.iter().zip(new) {
            if !old_names.contains(name) {
                walk(out, format!("{path}[{name}]"), None, Some(b));
            }
        }
        return;
    }
    for i in 0..old.len().max(new.len()) {
        walk(out, format!("{path}[{i}]"), old.get(i), new.get(i));
    }
}

/// The elements' `name`s, when every element has a distinct one.
fn names(items: &[Value]) -> Option<Vec<&str>> {
    let mut names = Vec::with_capacity(items.len());
    for item in items {
        let name = item.get("name")?.as_str()?;
        if names.contains(&name) {
            return None;
        }
        names.push(name);
    }
    Some(names)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests may")]
    use super::*;

    fn job(text: &str) -> Job {
        serde_json::from_str(text).unwrap()
    }

    fn web() -> Job {
        job(r#"{"id": "web", "datacenters": ["a", "b"],
                "group": [
                  {"name": "front", "count": 2, "task": [{"name": "server", "driver": "exec", "config": {"cmd": "srv"}}]},
                  {"name": "cache", "task": [{"name": "redis", "driver": "exec"}]}
                ]}"#)
    }

    fn lines(diff: &[FieldDiff]) -> Vec<String> {
        diff.iter()
            .map(|d| {
                format!(
                    "{} {}: {} => {}",
                    d.kind,
                    d.field,
                    d.old.as_deref().unwrap_or("-"),
                    d.new.as_deref().unwrap_or("-")
                )
            })
            .collect()
    }

    #[test]
    fn the_same_job_is_no_change_whatever_the_server_fields() {
        let old = web();
        let mut new = web();
        new.version = 7;
        new.modify_index = 99;
        new.submit_time_ms = 12345;
        let diff = job_diff(Some(&old), &new);
        assert!(diff.is_empty(), "{diff:?}");
        assert_eq!(diff_type(Some(&old), &diff), "none");
    }

    #[test]
    fn edits_are_paths_by_group_and_task_name() {
        let old = web();
        let mut new = web();
        new.groups.swap(0, 1); // moving a group is not a change
        new.groups[1].count = 3;
        new.groups[1].tasks[0].resources.memory = 512;
        new.groups[1].tasks[0]
            .config
            .insert("cmd".into(), Value::String("srv2".into()));
        new.datacenters.pop();
        let diff = job_diff(Some(&old), &new);
        assert_eq!(
            lines(&diff),
            [
                "deleted datacenters[1]: \"b\" => -",
                "edited group[front].count: 2 => 3",
                "edited group[front].task[server].config.cmd: \"srv\" => \"srv2\"",
                "edited group[front].task[server].resources.memory: 300 => 512",
            ]
        );
        assert_eq!(diff_type(Some(&old), &diff), "edit");
    }

    #[test]
    fn added_and_deleted_groups_list_their_fields() {
        let old = web();
        let mut new = web();
        new.groups.remove(1);
        let diff = job_diff(Some(&old), &new);
        assert!(diff.iter().all(|d| d.kind == "deleted"));
        assert!(lines(&diff).contains(&"deleted group[cache].count: 1 => -".to_owned()));
        assert!(
            lines(&diff)
                .contains(&"deleted group[cache].task[redis].driver: \"exec\" => -".to_owned())
        );
        let back = job_diff(Some(&new), &old);
        assert_eq!(back.len(), diff.len());
        assert!(
            back.iter()
                .all(|d| d.kind == "added" && d.field.starts_with("group[cache]."))
        );
    }

    #[test]
    fn a_new_job_is_created_with_every_field_added() {
        let diff = job_diff(None, &web());
        assert_eq!(diff_type(None, &diff), "create");
        assert!(diff.iter().all(|d| d.kind == "added" && d.old.is_none()));
        assert!(lines(&diff).contains(&"added id: - => \"web\"".to_owned()));
        assert!(
            !diff
                .iter()
                .any(|d| d.field == "version" || d.field == "modify_index")
        );
        assert!(lines(&diff).contains(&"added stop: - => false".to_owned()));
    }

    #[test]
    fn restarting_a_stopped_job_shows_stop() {
        let mut old = web();
        old.stop = true;
        let diff = job_diff(Some(&old), &web());
        assert_eq!(lines(&diff), ["edited stop: true => false"]);
        assert_eq!(diff_type(Some(&old), &diff), "edit");
    }

    #[test]
    fn arrays_without_names_match_by_position() {
        let mut old = web();
        old.constraints = vec![orch_model::Constraint {
            attribute: "${attr.os}".into(),
            operator: orch_model::Operator::Equal,
            value: "linux".into(),
        }];
        let mut new = old.clone();
        new.constraints[0].value = "darwin".into();
        assert_eq!(
            lines(&job_diff(Some(&old), &new)),
            ["edited constraint[0].value: \"linux\" => \"darwin\""]
        );
    }
}
