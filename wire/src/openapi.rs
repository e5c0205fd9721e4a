//! The OpenAPI 3.1 description of the server's API, served at
//! `/v1/openapi.json`. Written by hand (it is documentation first), and held
//! by the tests below to the route table and to what the bodies serialize
//! to, so it cannot drift from either; [`schema_problems`] checks any value
//! against it (the end-to-end tests hold real answers to it too).

use serde_json::Value;

/// `openapi.json`, as served.
pub const OPENAPI_JSON: &str = include_str!("../openapi.json");

/// What is wrong with `value` against `schema`, a schema of the OpenAPI
/// `document`, each problem with where it is (`at` and the path below it).
/// JSON Schema as the document uses it: `$ref`, `type`, `properties`,
/// `required`, `additionalProperties`, `items`, `enum`, `allOf`, `oneOf`,
/// `anyOf`. Empty when the value fits.
pub fn schema_problems(document: &Value, schema: &Value, value: &Value, at: &str) -> Vec<String> {
    let mut problems = Vec::new();
    walk(
        document,
        schema,
        "",
        value,
        at,
        &mut problems,
        &mut |_, _| {},
    );
    problems
}

/// The walk behind [`schema_problems`]; `named` is the component schema the
/// value is described by (empty for an inline one), and `seen` is told every
/// field a value of a named schema has.
fn walk(
    document: &Value,
    schema: &Value,
    named: &str,
    value: &Value,
    at: &str,
    problems: &mut Vec<String>,
    seen: &mut dyn FnMut(&str, &str),
) {
    if let Some(r) = schema["$ref"].as_str() {
        let name = r.rsplit('/').next().unwrap_or(r);
        let target = lookup(document, r);
        if target.is_null() {
            problems.push(format!("{at}: $ref {r} points nowhere"));
            return;
        }
        return walk(document, target, name, value, at, problems, seen);
    }
    for s in schema["allOf"].as_array().into_iter().flatten() {
        walk(document, s, named, value, at, problems, seen);
    }
    for key in ["oneOf", "anyOf"] {
        if let Some(any) = schema[key].as_array() {
            let fits = any.iter().find(|s| {
                let mut trial = Vec::new();
                walk(document, s, named, value, at, &mut trial, &mut |_, _| {});
                trial.is_empty()
            });
            match fits {
                Some(s) => walk(document, s, named, value, at, problems, seen),
                None => problems.push(format!("{at}: {value} matches none of its {key}")),
            }
        }
    }
    if let Some(allowed) = schema["enum"].as_array()
        && !allowed.contains(value)
    {
        problems.push(format!("{at}: {value} is not one of {allowed:?}"));
    }
    let types: Vec<&str> = match &schema["type"] {
        Value::String(t) => vec![t.as_str()],
        Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    if !types.is_empty() && !types.iter().any(|t| is_type(value, t)) {
        problems.push(format!("{at}: {value} is not of type {types:?}"));
        return;
    }
    if let Some(fields) = value.as_object() {
        for key in schema["required"].as_array().into_iter().flatten() {
            let key = key.as_str().unwrap_or_default();
            if !fields.contains_key(key) {
                problems.push(format!("{at}: required `{key}` is missing"));
            }
        }
        for (key, v) in fields {
            if !named.is_empty() && schema["properties"].is_object() {
                seen(named, key);
            }
            let at = format!("{at}.{key}");
            match (&schema["properties"][key], &schema["additionalProperties"]) {
                (Value::Null, Value::Bool(false)) => {
                    problems.push(format!("{at}: not in the schema"));
                }
                (Value::Null, extra @ Value::Object(_)) => {
                    walk(document, extra, "", v, &at, problems, seen);
                }
                // Free-form, like a task's driver config.
                (Value::Null, _) => {}
                (property, _) => walk(document, property, "", v, &at, problems, seen),
            }
        }
    }
    if let (Some(items), Some(item_schema)) = (value.as_array(), schema.get("items")) {
        for (i, v) in items.iter().enumerate() {
            walk(
                document,
                item_schema,
                "",
                v,
                &format!("{at}[{i}]"),
                problems,
                seen,
            );
        }
    }
}

/// What a local `$ref` (`#/components/schemas/Job`) points at; `Null` if
/// nothing.
fn lookup<'a>(document: &'a Value, r: &str) -> &'a Value {
    r.trim_start_matches("#/")
        .split('/')
        .fold(document, |v, k| &v[k])
}

fn is_type(value: &Value, t: &str) -> bool {
    match t {
        "object" => value.is_object(),
        "array" => value.is_array(),
        "string" => value.is_string(),
        "integer" => value.is_u64() || value.is_i64(),
        "number" => value.is_number(),
        "boolean" => value.is_boolean(),
        "null" => value.is_null(),
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    #![allow(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        reason = "tests may"
    )]

    use super::{OPENAPI_JSON, lookup, walk};
    use crate::*;
    use orch_model::{
        AllocMetric, Allocation, ClientStatus, Decision, Evaluation, Job, Node, Problem, Sampling,
        TaskState,
    };
    use serde_json::{Value, json};
    use std::collections::{BTreeMap, BTreeSet};

    fn spec() -> Value {
        serde_json::from_str(OPENAPI_JSON).expect("openapi.json is JSON")
    }

    /// Every route served is documented, under its operation id, and every
    /// documented route is served.
    #[test]
    fn openapi_matches_the_routes() {
        let spec = spec();
        assert_eq!(spec["openapi"].as_str().unwrap(), "3.1.0");
        let served: BTreeSet<(String, String, String)> = ROUTES
            .iter()
            .map(|r| {
                (
                    r.method.as_str().to_lowercase(),
                    r.path.to_owned(),
                    r.operation.to_owned(),
                )
            })
            .collect();
        let mut documented = BTreeSet::new();
        for (path, item) in spec["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                if ["get", "post", "put", "delete", "patch", "head", "options"]
                    .contains(&method.as_str())
                {
                    let id = op["operationId"].as_str().unwrap_or_default().to_owned();
                    documented.insert((method.clone(), path.clone(), id));
                }
            }
        }
        let missing: Vec<_> = served.difference(&documented).collect();
        let extra: Vec<_> = documented.difference(&served).collect();
        assert!(
            missing.is_empty(),
            "served but not in openapi.json (method, path, operationId): {missing:?}"
        );
        assert!(
            extra.is_empty(),
            "in openapi.json but not served: {extra:?}"
        );
    }

    /// Each `{param}` of a path is declared, every operation says what it
    /// answers, and every `$ref` points at a schema that exists.
    #[test]
    fn openapi_is_complete_and_consistent() {
        let spec = spec();
        for (path, item) in spec["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                if method == "parameters" {
                    continue;
                }
                let mut declared: Vec<String> = Vec::new();
                for list in [&item["parameters"], &op["parameters"]] {
                    for p in list.as_array().into_iter().flatten() {
                        let p = resolve(&spec, p);
                        declared.push(p["name"].as_str().unwrap().to_owned());
                    }
                }
                for segment in path.split('/') {
                    if let Some(name) = segment.strip_prefix('{').and_then(|s| s.strip_suffix('}'))
                    {
                        assert!(
                            declared.iter().any(|d| d == name),
                            "{method} {path}: path parameter {name} not declared"
                        );
                    }
                }
                if method == "get" {
                    for name in ["index", "wait"] {
                        assert!(
                            declared.iter().any(|d| d == name),
                            "{method} {path}: blocking parameter {name} not declared"
                        );
                    }
                }
                assert!(
                    op["responses"].as_object().is_some_and(|r| !r.is_empty()),
                    "{method} {path}: no responses"
                );
            }
        }
        let mut refs = Vec::new();
        collect_refs(&spec, &mut refs);
        assert!(!refs.is_empty());
        for r in refs {
            assert!(!lookup(&spec, &r).is_null(), "$ref {r} points nowhere");
        }
    }

    /// The bodies as the Rust types serialize them, each held to the schema
    /// the document gives it: no field the schema does not know, every
    /// required field there, values of the documented types and enums. For
    /// the bodies this crate declares, every documented field must also be
    /// produced by some sample, so a field added to either side alone fails.
    #[test]
    fn bodies_match_their_schemas() {
        let spec = spec();
        let mut checker = Checker {
            spec: &spec,
            seen: BTreeMap::new(),
        };
        let job = job();
        let node = node();
        let alloc = allocation();
        let decision = decision();
        let eval = evaluation(&job);
        let mut problem = Problem::new("job.group[0].count", "must be at least 0").hint("e.g. 1");
        problem.line = Some(3);
        problem.column = Some(9);
        checker.check(
            "ErrorBody",
            &ErrorBody {
                code: "invalid_job".into(),
                message: "the job is invalid".into(),
                details: vec![problem],
            },
        );
        checker.check(
            "JobRegisterRequest",
            &JobRegisterRequest {
                job: job.clone(),
                enforce_index: Some(7),
            },
        );
        checker.check(
            "JobRegisterResponse",
            &JobRegisterResponse {
                eval_id: Some("e1".into()),
                job_version: 2,
                job_modify_index: 9,
                index: 10,
                warnings: vec!["a warning".into()],
            },
        );
        checker.check(
            "JobStopResponse",
            &JobStopResponse {
                eval_id: "e1".into(),
                index: 3,
            },
        );
        checker.check(
            "JobPlanResponse",
            &JobPlanResponse {
                diff_type: "edit".into(),
                diff: vec![FieldDiff {
                    kind: "edited".into(),
                    field: "group[web].count".into(),
                    old: Some("1".into()),
                    new: Some("2".into()),
                }],
                groups: vec![GroupPlan {
                    name: "web".into(),
                    place: 1,
                    stop: 0,
                    replace: 0,
                    in_place: 1,
                    ignore: 0,
                }],
                placements: vec![PlannedPlacement {
                    name: "hello.web[1]".into(),
                    node_id: "n1".into(),
                    node_name: "box".into(),
                    score: 0.5,
                }],
                failed_tg_allocs: BTreeMap::from([("web".into(), metric())]),
                job_modify_index: 4,
                why_not: Some(plan_why_not()),
            },
        );
        checker.check(
            "AllocWhyNot",
            &AllocWhyNot {
                alloc_id: "a1".into(),
                alloc_name: "hello.web[0]".into(),
                alloc_node_id: "n1".into(),
                node_id: "n2".into(),
                node_name: "box-2".into(),
                basis: WhyNotBasis::Now,
                verdict: NodeVerdict::Fits,
                funnel: Some(PlacementFunnel {
                    nodes_evaluated: 3,
                    nodes_filtered: 1,
                    nodes_exhausted: 0,
                    nodes_skipped: 0,
                    candidates: 2,
                }),
            },
        );
        checker.check(
            "JobSummary",
            &JobSummary {
                id: "hello".into(),
                name: "hello".into(),
                job_type: "service".into(),
                priority: 50,
                status: "running".into(),
                version: 0,
                stop: false,
                allocs: BTreeMap::from([("running".into(), 3)]),
                modify_index: 5,
            },
        );
        checker.check("Job", &job);
        checker.check("Node", &node);
        checker.check("Allocation", &alloc);
        checker.check("Decision", &decision);
        checker.check(
            "DecisionPage",
            &DecisionPage {
                decisions: vec![decision.clone()],
                total: 3,
                since_ms: 1,
                next: Some(2),
            },
        );
        checker.check(
            "AllocationDetail",
            &AllocationDetail {
                allocation: alloc.clone(),
                decision: Some(decision.clone()),
                shadows: vec![orch_model::ShadowDecision {
                    alloc_id: "a1".into(),
                    job_id: "hello".into(),
                    candidate: "spread".into(),
                    scorer: "spread 0.1.0".into(),
                    scorer_digest: "sha256:01".into(),
                    time_ms: 1,
                    scores: vec![0.25],
                    part_names: vec!["fit".into()],
                    parts: vec![0.25],
                    pick: Some(0),
                    agrees: true,
                    cluster_node: Some("n1".into()),
                    fault: Some("a fault".into()),
                    scorer_micros: 12,
                }],
            },
        );
        scheduler_bodies(&mut checker);
        checker.check("Evaluation", &eval);
        checker.check(
            "EvaluationDetail",
            &EvaluationDetail {
                evaluation: eval.clone(),
                placed: vec!["a1".into()],
            },
        );
        let scorer = ScorerInfo {
            label: "binpack 0.1.0".into(),
            digest: orch_model::Digest::of(b"binpack").to_string(),
        };
        checker.check(
            "Status",
            &ServerStatus {
                index: 12,
                version: "0.1.0".into(),
                scorer: scorer.clone(),
                fallback: Some(scorer),
                sampling: Sampling::default(),
                nodes: 3,
                jobs: 1,
                allocations: 3,
                broker: BrokerInfo::default(),
            },
        );
        checker.check(
            "NodeAlive",
            &Alive {
                index: 1,
                heartbeat_ttl_ms: 30_000,
            },
        );
        checker.check("DrainRequest", &DrainRequest { enable: true });
        checker.check(
            "EligibilityRequest",
            &EligibilityRequest { eligible: false },
        );
        checker.check(
            "NodeUpdated",
            &NodeUpdated {
                index: 4,
                eval_ids: vec!["e2".into()],
            },
        );
        checker.check(
            "AllocStatusUpdates",
            &StatusUpdates {
                updates: vec![StatusUpdate {
                    alloc_id: "a1".into(),
                    client_status: ClientStatus::Running,
                    description: "Tasks are running".into(),
                    task_states: Some(alloc.task_states.clone()),
                }],
            },
        );
        checker.check(
            "AllocStatusUpdated",
            &StatusUpdated {
                index: 8,
                unknown: vec!["a9".into()],
            },
        );

        // The bodies declared here: every field the document gives them is
        // one the type produces.
        for schema in [
            "ErrorBody",
            "Problem",
            "JobRegisterRequest",
            "JobRegisterResponse",
            "JobStopResponse",
            "JobPlanResponse",
            "FieldDiff",
            "GroupPlan",
            "PlannedPlacement",
            "JobSummary",
            "AllocationDetail",
            "EvaluationDetail",
            "Status",
            "NodeAlive",
            "DrainRequest",
            "EligibilityRequest",
            "NodeUpdated",
            "AllocStatusUpdates",
            "AllocStatusUpdate",
            "AllocStatusUpdated",
            "Allocation",
            "AllocMetric",
            "Decision",
            "ShadowDecision",
            "SchedulerStatus",
            "ScorerRole",
            "CandidateStatus",
            "ShadowCounters",
            "NamedScorer",
            "Origin",
            "ScorerSpec",
            "Candidate",
            "Comparison",
            "ScorerFigures",
            "Packing",
            "ResourcePacking",
            "SpreadCount",
            "UsageSample",
            "PlanWhyNot",
            "GroupWhyNot",
            "PlacementWhyNot",
            "CandidateScore",
            "AllocWhyNot",
            "PlacementFunnel",
        ] {
            let documented = properties(&spec, schema);
            let produced = checker.seen.get(schema).cloned().unwrap_or_default();
            let never: Vec<_> = documented.difference(&produced).collect();
            assert!(
                never.is_empty(),
                "openapi.json's {schema} documents {never:?}, which no sample of its Rust type produces"
            );
        }
    }

    /// Samples of `/v1/scheduler…`'s bodies, every optional field set in one
    /// of them.
    fn scheduler_bodies(checker: &mut Checker<'_>) {
        use orch_model::{Candidate, CandidateMode, Origin, ScorerSpec};
        let spec = ScorerSpec {
            plugin: "builtin:binpack".into(),
            deadline_ms: Some(50),
            memory_mib: Some(64),
            fuel: Some(1_000_000),
        };
        let candidate = Candidate {
            mode: CandidateMode::Split,
            weight: Some(10),
            jobs: vec!["batch-*".into()],
        };
        checker.check("ScorerSpec", &spec);
        checker.check("Candidate", &candidate);
        let api = Origin::Api {
            index: 7,
            time_ms: 1000,
        };
        checker.check(
            "SchedulerStatus",
            &SchedulerStatus {
                index: 9,
                primary: ScorerRole {
                    name: "binpack".into(),
                    label: "binpack 0.1.0".into(),
                    digest: "sha256:00".into(),
                    origin: Origin::Config,
                },
                fallback: Some("binpack".into()),
                sampling: Sampling::default(),
                candidates: vec![CandidateStatus {
                    name: "spread".into(),
                    mode: CandidateMode::Shadow,
                    weight: 100,
                    jobs: vec!["web-*".into()],
                    label: "spread 0.1.0".into(),
                    digest: "sha256:01".into(),
                    origin: api,
                    shadow: Some(ShadowCounters::default()),
                }],
                scorers: vec![NamedScorer {
                    name: "tight".into(),
                    spec,
                    origin: api,
                    role: Some("split".into()),
                }],
                stale: Some("a reason".into()),
            },
        );
        let resources = vec![ResourcePacking {
            resource: "cpu".into(),
            mean: 0.5,
            p90: 0.75,
            stranded: 0.01,
        }];
        checker.check(
            "Comparison",
            &Comparison {
                since_ms: 1,
                index: 2,
                scorers: vec![ScorerFigures {
                    name: "spread".into(),
                    role: "shadow".into(),
                    label: "spread 0.1.0".into(),
                    decisions: 3,
                    agreement: Some(0.5),
                    latency_p50_us: 4,
                    latency_p99_us: 9,
                    faults: 0,
                    fallbacks: 0,
                    drops: 1,
                    packing: Some(Packing {
                        nodes: 3,
                        nodes_used: 2,
                        allocations: 3,
                        unplaced: 1,
                        resources,
                        spread: vec![SpreadCount {
                            value: "dc1".into(),
                            allocations: 3,
                        }],
                        per_node: vec![0.5, 0.25],
                    }),
                }],
                history: vec![UsageSample {
                    time_ms: 3,
                    scorer: "spread".into(),
                    nodes_used: 2,
                    cpu: 0.5,
                    memory: 0.25,
                }],
            },
        );
    }

    /// Holds samples to the document, and remembers the fields produced
    /// per schema across every sample.
    struct Checker<'a> {
        spec: &'a Value,
        seen: BTreeMap<String, BTreeSet<String>>,
    }

    impl Checker<'_> {
        fn check<T: serde::Serialize>(&mut self, schema: &str, value: &T) {
            let value = serde_json::to_value(value).unwrap();
            let target = json!({ "$ref": format!("#/components/schemas/{schema}") });
            let mut problems = Vec::new();
            let seen = &mut self.seen;
            let mut record = |named: &str, field: &str| {
                seen.entry(named.to_owned())
                    .or_default()
                    .insert(field.to_owned());
            };
            walk(
                self.spec,
                &target,
                "",
                &value,
                schema,
                &mut problems,
                &mut record,
            );
            assert!(
                problems.is_empty(),
                "the Rust type and openapi.json disagree:\n  {}\n  value: {value}",
                problems.join("\n  ")
            );
        }
    }

    fn properties(spec: &Value, schema: &str) -> BTreeSet<String> {
        spec["components"]["schemas"][schema]["properties"]
            .as_object()
            .map(|p| p.keys().cloned().collect())
            .unwrap_or_default()
    }

    fn resolve<'a>(spec: &'a Value, v: &'a Value) -> &'a Value {
        match v["$ref"].as_str() {
            Some(r) => lookup(spec, r),
            None => v,
        }
    }

    fn collect_refs(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(map) => {
                for (k, v) in map {
                    if k == "$ref" {
                        out.push(v.as_str().unwrap().to_owned());
                    } else {
                        collect_refs(v, out);
                    }
                }
            }
            Value::Array(items) => items.iter().for_each(|v| collect_refs(v, out)),
            _ => {}
        }
    }

    /// The example job every new user runs, as the CLI sends it.
    /// A plan's why-not with every kind of verdict.
    fn plan_why_not() -> PlanWhyNot {
        let row = |id: &str| CandidateScore {
            node_id: id.into(),
            node_name: "box".into(),
            score: 0.5,
            scorer_score: 0.25,
            host_adjustment: 0.25,
            parts: vec![0.1, 0.2],
        };
        let parts = || vec!["cpu".to_owned(), "memory".to_owned()];
        let placed = |verdict| PlacementWhyNot {
            allocation: Some("hello.web[0]".into()),
            unplaced: 0,
            verdict,
        };
        PlanWhyNot {
            node_id: "n2".into(),
            node_name: "box-2".into(),
            groups: vec![GroupWhyNot {
                group: "web".into(),
                placements: vec![
                    placed(NodeVerdict::NotEvaluated {
                        reason: "the node is draining".into(),
                    }),
                    placed(NodeVerdict::Filtered {
                        reason: "distinct_hosts".into(),
                    }),
                    placed(NodeVerdict::Exhausted {
                        dimension: "memory".into(),
                        ask: orch_model::Resources::new(500, 256, 0),
                        free: orch_model::Resources::new(100, 100, 100),
                    }),
                    placed(NodeVerdict::NotSampled {
                        sampled: 2,
                        feasible: 9,
                    }),
                    placed(NodeVerdict::Outscored {
                        part_names: parts(),
                        node: row("n2"),
                        winner: row("n1"),
                    }),
                    placed(NodeVerdict::Tied {
                        part_names: parts(),
                        node: row("n2"),
                        winner: row("n1"),
                    }),
                    placed(NodeVerdict::Picked {
                        part_names: parts(),
                        node: row("n2"),
                    }),
                    PlacementWhyNot {
                        allocation: None,
                        unplaced: 2,
                        verdict: NodeVerdict::Fits,
                    },
                ],
            }],
        }
    }

    fn job() -> Job {
        let text = include_str!("../../examples/jobs/hello.toml");
        orch_model::parse_job_file("examples/jobs/hello.toml", text)
            .expect("examples/jobs/hello.toml parses")
    }

    fn node() -> Node {
        serde_json::from_str(include_str!("../../examples/nodes/node1.json"))
            .expect("examples/nodes/node1.json is a node")
    }

    /// An evaluation of `job` that left a blocked one behind, every field
    /// set (the type refuses unknown ones).
    fn evaluation(job: &Job) -> Evaluation {
        serde_json::from_value(json!({
            "id": "e1", "job_id": job.id, "priority": 50, "triggered_by": "node-update",
            "status": "complete", "status_description": "placed 2 of 3",
            "node_id": "n1", "job_version": 1,
            "failed_tg_allocs": {"web": metric()}, "queued_allocations": {"web": 1},
            "blocked_eval": "e2", "previous_eval": "e0", "wait_until_ms": 5,
            "attempts": 1, "snapshot_index": 4, "create_index": 2, "modify_index": 3,
            "create_time_ms": 1
        }))
        .expect("an Evaluation")
    }

    fn metric() -> AllocMetric {
        serde_json::from_value(json!({
            "nodes_evaluated": 3, "nodes_filtered": {"${attr.os} = linux": 1},
            "nodes_exhausted": 1, "dimension_exhausted": {"memory": 1},
            "coalesced_failures": 2
        }))
        .expect("an AllocMetric")
    }

    /// Every field set: the type refuses unknown ones, so this is what an
    /// allocation carries.
    fn allocation() -> Allocation {
        let task: TaskState = serde_json::from_value(json!({
            "state": "running", "failed": false, "restarts": 1,
            "started_at_ms": 1, "finished_at_ms": 0,
            "events": [{"type": "terminated", "time_ms": 1, "message": "exited", "exit_code": 0, "signal": 9}]
        }))
        .expect("a TaskState");
        serde_json::from_value(json!({
            "id": "a1", "name": "hello.web[0]", "job_id": "hello", "job_version": 0,
            "group": "web", "index": 0, "node_id": "n1", "eval_id": "e1",
            "resources": {"cpu": 100, "memory": 64, "disk": 0},
            "spec_hash": "h", "desired_status": "run", "desired_description": "d",
            "client_status": "running", "client_description": "c",
            "previous_allocation": "a0", "reschedule_times_ms": [1],
            "create_index": 1, "modify_index": 2, "create_time_ms": 3, "client_time_ms": 4,
            "task_states": {"server": task}
        }))
        .expect("an Allocation")
    }

    fn decision() -> Decision {
        serde_json::from_value(json!({
            "alloc_id": "a1", "eval_id": "e1", "job_id": "hello", "group": "web",
            "scorer": "binpack 0.1.0", "scorer_digest": "sha256:00",
            "scorer_name": "binpack", "policy": "tight", "split": true, "time_ms": 5,
            "scorer_failure": "tight: deadline", "nodes_filtered": {"missing driver exec": 2},
            "host_adjustments": [0.1], "host_divisor": 2.0,
            "placement": 3, "snapshot_index": 9, "job_priority": 50,
            "ask": {"cpu": 100, "memory": 64, "disk": 0},
            "inputs": {
                "cpu_capacity": [4000], "memory_capacity": [8192], "disk_capacity": [0],
                "cpu_allocated": [0], "memory_allocated": [0], "disk_allocated": [0],
                "job_allocs": [0], "total_allocs": [0]
            },
            "nodes_evaluated": 1, "nodes_skipped": 0, "candidates": ["n1"],
            "scores": [0.5], "part_names": ["fit"], "parts": [0.5], "pick": 0,
            "scorer_micros": 10, "total_micros": 20
        }))
        .expect("a Decision")
    }
}
