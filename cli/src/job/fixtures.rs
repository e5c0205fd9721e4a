//! Model values for the snapshot tests: a small cluster with a web job
//! that could place two of its three allocations.
#![allow(clippy::unwrap_used, reason = "tests may")]

use orch_model::*;
use orch_wire::EvaluationDetail;
use std::collections::BTreeMap;

pub const NOW: u64 = 1_795_000_000_000;

pub fn job(version: u64) -> Job {
    let mut job = parse_job_file(
        "web.toml",
        r#"
id = "web"
datacenters = ["home", "cloud"]

[[group]]
name = "frontend"
count = 3

[[group.task]]
name = "server"
driver = "exec"
config = { command = "/usr/bin/server" }

[group.task.resources]
cpu = 500
memory = 256
"#,
    )
    .unwrap();
    job.version = version;
    job.modify_index = 10 + version * 7;
    job.create_index = 10;
    job.submit_time_ms = NOW - 3_600_000 + version * 600_000;
    job
}

pub fn node(id: &str, name: &str, dc: &str) -> Node {
    Node {
        id: id.into(),
        name: name.into(),
        datacenter: dc.into(),
        node_class: if dc == "cloud" {
            "vm".into()
        } else {
            String::new()
        },
        attributes: [
            ("kernel.name".to_owned(), "linux".to_owned()),
            ("cpu.arch".to_owned(), "x86_64".to_owned()),
        ]
        .into(),
        meta: BTreeMap::new(),
        resources: Resources::new(4000, 8192, 100_000),
        reserved: Resources::new(500, 512, 0),
        drivers: [
            ("exec".to_owned(), DriverInfo::default()),
            (
                "oci".to_owned(),
                DriverInfo {
                    detected: true,
                    healthy: false,
                    health_description: "docker socket not found".into(),
                    attributes: BTreeMap::new(),
                },
            ),
        ]
        .into(),
        http_addr: String::new(),
        status: NodeStatus::Ready,
        status_description: String::new(),
        eligibility: Eligibility::Eligible,
        drain: false,
        create_index: 2,
        modify_index: 2,
    }
}

pub fn alloc(i: u32, node: &str, status: ClientStatus) -> Allocation {
    Allocation {
        id: format!("a{i}c0ffee-0000-4000-8000-00000000000{i}"),
        name: format!("web.frontend[{i}]"),
        job_id: "web".into(),
        job_version: 1,
        group: "frontend".into(),
        index: i,
        node_id: node.into(),
        eval_id: "e1e1e1e1-0000-4000-8000-000000000001".into(),
        resources: Resources::new(500, 256, 0),
        desired_status: DesiredStatus::Run,
        desired_description: String::new(),
        client_status: status,
        client_description: String::new(),
        previous_allocation: None,
        reschedule_times_ms: Vec::new(),
        create_index: 20 + u64::from(i),
        modify_index: 20 + u64::from(i),
        create_time_ms: NOW - 65_000 + u64::from(i) * 1000,
        client_time_ms: 0,
        task_states: Default::default(),
        spec_hash: String::new(),
    }
}

pub fn failed_metric() -> AllocMetric {
    AllocMetric {
        nodes_evaluated: 5,
        nodes_filtered: [
            ("missing driver exec".to_owned(), 1),
            ("constraint ${attr.kernel.name} = linux".to_owned(), 2),
        ]
        .into(),
        nodes_exhausted: 2,
        dimension_exhausted: [("memory".to_owned(), 2)].into(),
        coalesced_failures: 0,
    }
}

pub fn eval_with_failures() -> EvaluationDetail {
    EvaluationDetail {
        evaluation: Evaluation {
            id: "e1e1e1e1-0000-4000-8000-000000000001".into(),
            job_id: "web".into(),
            priority: 50,
            triggered_by: TriggeredBy::JobRegister,
            status: EvalStatus::Complete,
            status_description: String::new(),
            node_id: None,
            job_version: 1,
            failed_tg_allocs: [("frontend".to_owned(), failed_metric())].into(),
            queued_allocations: [("frontend".to_owned(), 1)].into(),
            blocked_eval: Some("b10cked0-0000-4000-8000-000000000002".into()),
            previous_eval: None,
            wait_until_ms: None,
            attempts: 0,
            snapshot_index: 0,
            create_index: 19,
            modify_index: 22,
            create_time_ms: NOW - 66_000,
        },
        placed: vec![
            "a0c0ffee-0000-4000-8000-000000000000".into(),
            "a1c0ffee-0000-4000-8000-000000000001".into(),
        ],
    }
}

pub fn node_name_map() -> BTreeMap<String, String> {
    [
        (
            "n1a2b3c4-0000-4000-8000-000000000001".to_owned(),
            "box-1".to_owned(),
        ),
        (
            "n2a2b3c4-0000-4000-8000-000000000002".to_owned(),
            "box-2".to_owned(),
        ),
    ]
    .into()
}
