//! End to end: a real `orch server` process on loopback with its own data
//! dir and config file, nodes registered through the HTTP API (no agent
//! yet), jobs run with the real `orch` CLI. A job lands where binpack says;
//! the config switches to spread and the next job lands differently; the
//! server is killed with SIGKILL mid-run and restarted, and everything it
//! acknowledged is there, once, with pending evaluations resumed; bad input
//! is refused clearly and nothing half-written.

use crate::common::{Server, write_config};
use orch_testkit::node;
use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

/// `dir/ID.toml`: a job of one group `web` of `count` sleeps of 500 MHz and
/// 256 MiB; `extra` goes at the top level.
fn job_file(dir: &Path, id: &str, count: u32, extra: &str) -> PathBuf {
    crate::common::sleep_job_file(dir, id, "web", count, 256, extra)
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn allocs_by_node(server: &Server, job: &str) -> std::collections::BTreeMap<String, usize> {
    let allocs = server.get(&format!("/v1/job/{job}/allocations"));
    let mut per = std::collections::BTreeMap::new();
    for a in allocs.as_array().unwrap() {
        if a["desired_status"] == "run" {
            *per.entry(a["node_id"].as_str().unwrap().to_owned())
                .or_default() += 1;
        }
    }
    per
}

#[test]
fn jobs_land_where_the_configured_scorer_says_and_survive_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    for n in ["n1", "n2", "n3"] {
        server.register(&node(n, 4000, 8192, "linux"));
    }
    let nodes = server.get("/v1/nodes");
    assert!(
        nodes
            .as_array()
            .unwrap()
            .iter()
            .all(|n| n["status"] == "ready")
    );

    // Binpack: four allocations of 500 MHz fill one node before the next.
    let file = job_file(dir.path(), "packed", 4, "");
    let out = server.orch(&["job", "run", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let per = allocs_by_node(&server, "packed");
    assert_eq!(per.values().sum::<usize>(), 4);
    assert_eq!(per.len(), 1, "binpack packs one node: {per:?}");
    let packed_node = per.keys().next().unwrap().clone();
    let status = server.get("/v1/status");
    assert!(
        status["scorer"]["label"]
            .as_str()
            .unwrap()
            .starts_with("binpack"),
        "{status}"
    );

    // The verbose allocation status shows the decision's score table.
    let alloc_id = server.get("/v1/job/packed/allocations")[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let out = server.orch(&["alloc", "status", &alloc_id[..8], "--verbose"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("binpack"), "{}", text(&out));

    // Switch the config to spread: the server reloads it by itself.
    write_config(&server.config, "spread");
    server.until("/v1/status", "the spread scorer", |s| {
        s["scorer"]["label"]
            .as_str()
            .is_some_and(|l| l.starts_with("spread"))
    });
    let file = job_file(dir.path(), "spread-out", 3, "");
    let out = server.orch(&["job", "run", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    // Binpack would have added these to the packed node (it has room for
    // four more); spread (worst fit) prefers the empty ones.
    let per = allocs_by_node(&server, "spread-out");
    assert_eq!(per.values().sum::<usize>(), 3);
    assert!(per.len() >= 2, "spread spreads: {per:?}");
    assert!(
        !per.contains_key(&packed_node),
        "spread avoids the packed node: {per:?}"
    );

    // A scorer that cannot load is refused on SIGHUP; the old one stays
    // and evaluations keep being scheduled with it.
    std::fs::write(dir.path().join("broken.wasm"), b"not a component").unwrap();
    let config = std::fs::read_to_string(&server.config).unwrap();
    std::fs::write(
        &server.config,
        config.replace("scorer = \"spread\"", "scorer = \"broken.wasm\""),
    )
    .unwrap();
    server.sighup();
    let refused = server.logged("config reload refused");
    assert!(refused.contains("broken.wasm"), "{refused}");
    assert!(refused.contains("still scoring with spread"), "{refused}");
    let status = server.get("/v1/status");
    assert!(
        status["scorer"]["label"]
            .as_str()
            .unwrap()
            .starts_with("spread")
    );
    let file = job_file(dir.path(), "after-refusal", 1, "");
    let out = server.orch(&["job", "run", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    write_config(&server.config, "spread");

    // Kill -9 mid-run: submit jobs as fast as the API takes them, kill the
    // server, restart it on the same data dir.
    let mut acknowledged = Vec::new();
    for i in 0..30 {
        let job = json!({"job": {
            "id": format!("burst-{i}"),
            "group": [{"name": "g", "count": 2, "task": [{"name": "t", "driver": "exec",
                       "resources": {"cpu": 100, "memory": 64}}]}],
        }});
        let (status, body) = server.post("/v1/jobs", &job);
        assert_eq!(status, 200, "{body}");
        acknowledged.push((
            format!("burst-{i}"),
            body["eval_id"].as_str().unwrap().to_owned(),
        ));
    }
    // Jobs no node can take yet wait on blocked evaluations, which must
    // survive the crash too.
    let mut waiting = Vec::new();
    for i in 0..5 {
        let job = json!({"job": {
            "id": format!("gpu-{i}"),
            "constraint": [{"attribute": "${attr.gpu}", "value": "true"}],
            "group": [{"name": "g", "task": [{"name": "t", "driver": "exec",
                       "resources": {"cpu": 100, "memory": 64}}]}],
        }});
        let (status, body) = server.post("/v1/jobs", &job);
        assert_eq!(status, 200, "{body}");
        waiting.push(format!("gpu-{i}"));
    }
    let data = server.data.clone();
    server.kill9();
    let db = rusqlite::Connection::open(data.join("state.db")).unwrap();
    let pending: i64 = db
        .query_row(
            "SELECT count(*) FROM evaluations WHERE status = 'pending'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    eprintln!("evaluations pending at the kill: {pending}");
    drop(db);

    let server = Server::start(dir.path());
    for (job, eval) in &acknowledged {
        let j = server.get(&format!("/v1/job/{job}"));
        assert_eq!(j["id"], job.as_str());
        let e = server.until(
            &format!("/v1/evaluation/{eval}"),
            "the resumed evaluation",
            |e| e["status"] != "pending",
        );
        assert_eq!(e["status"], "complete", "{e:#}");
    }
    // Every job has exactly its two allocations, one per slot.
    for (job, _) in &acknowledged {
        let allocs = server.get(&format!("/v1/job/{job}/allocations"));
        let mut names: Vec<&str> = allocs
            .as_array()
            .unwrap()
            .iter()
            .filter(|a| a["desired_status"] == "run")
            .map(|a| a["name"].as_str().unwrap())
            .collect();
        names.sort();
        assert_eq!(
            names,
            [format!("{job}.g[0]"), format!("{job}.g[1]")],
            "{allocs:#}"
        );
    }
    // Nothing before the crash was lost or doubled.
    assert_eq!(allocs_by_node(&server, "packed").values().sum::<usize>(), 4);
    assert_eq!(
        allocs_by_node(&server, "spread-out")
            .values()
            .sum::<usize>(),
        3
    );
    let jobs = server.get("/v1/jobs");
    assert_eq!(jobs.as_array().unwrap().len(), 38);
    // A GPU node joins: every blocked job is placed on it.
    let mut gpu = node("n4", 4000, 8192, "linux");
    gpu.attributes.insert("gpu".into(), "true".into());
    server.register(&gpu);
    for job in &waiting {
        server.until(
            &format!("/v1/job/{job}/allocations"),
            "the blocked job placed",
            |a| {
                a.as_array()
                    .is_some_and(|a| a.len() == 1 && a[0]["node_id"] == "n4")
            },
        );
    }
}

#[test]
fn bad_input_is_refused_clearly_and_nothing_is_half_written() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    server.register(&node("n1", 2000, 4096, "linux"));
    let index_before = server.get("/v1/status")["index"].as_u64().unwrap();

    // Malformed TOML: the CLI says where, sends nothing, exits 2.
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "id = \"x\"\n[[group]\nname = 1\n").unwrap();
    let out = server.orch(&["job", "run", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("bad.toml:2:"), "{}", text(&out));

    // An unknown field: named, with the field meant.
    let typo = job_file(dir.path(), "typo", 1, "")
        .to_str()
        .unwrap()
        .to_owned();
    let content = std::fs::read_to_string(&typo)
        .unwrap()
        .replace("count = 1", "cont = 1");
    std::fs::write(&typo, content).unwrap();
    let out = server.orch(&["job", "run", &typo]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("count"), "{}", text(&out));

    // The same through the API: a 400 naming the field.
    let (status, body) = server.post(
        "/v1/jobs",
        &json!({"job": {"id": "j", "group": [{"name": "g", "cont": 1, "task": []}]}}),
    );
    assert_eq!(status, 400, "{body}");
    assert!(body["message"].as_str().unwrap().contains("cont"), "{body}");

    // Impossible resources: every problem in the details.
    let (status, body) = server.post(
        "/v1/jobs",
        &json!({"job": {"id": "huge", "priority": 0, "group": [{"name": "g", "task": [
            {"name": "t", "driver": "exec", "resources": {"cpu": 0, "memory": 0}}]}]}}),
    );
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["code"], "invalid_job");
    assert!(body["details"].as_array().unwrap().len() >= 2, "{body:#}");

    // Valid, but no node can meet it: placement fails with the reasons,
    // exit 2, and the job waits on a blocked evaluation.
    let file = job_file(
        dir.path(),
        "darwin-only",
        1,
        "[[constraint]]\nattribute = \"${attr.os.name}\"\nvalue = \"darwin\"\n",
    );
    let out = server.orch(&["job", "run", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("constraint ${attr.os.name} = darwin"),
        "{}",
        text(&out)
    );
    let file = job_file(dir.path(), "too-big", 1, "")
        .to_str()
        .unwrap()
        .to_owned();
    let content = std::fs::read_to_string(&file)
        .unwrap()
        .replace("memory = 256", "memory = 999999");
    std::fs::write(&file, content).unwrap();
    let out = server.orch(&["job", "run", &file]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("memory"), "{}", text(&out));

    // A huge body: 413, and the server keeps serving.
    let huge = json!({"job": {"id": "x".repeat(4 << 20)}});
    let (status, body) = server.post("/v1/jobs", &huge);
    assert_eq!(status, 413, "{body}");
    assert_eq!(body["code"], "body_too_large");

    // Only the two valid jobs were stored; the refused ones left nothing.
    let jobs = server.get("/v1/jobs");
    let mut ids: Vec<&str> = jobs
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["id"].as_str().unwrap())
        .collect();
    ids.sort();
    assert_eq!(ids, ["darwin-only", "too-big"]);
    assert!(server.get("/v1/status")["index"].as_u64().unwrap() > index_before);
}

#[test]
fn evaluations_left_pending_by_a_stopped_server_are_scheduled_at_restart() {
    // A store written the way a server that died before its workers got to
    // anything leaves it: nodes, jobs, and their evaluations still pending.
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    {
        let store =
            orch_server::Store::open(&data.join("state.db"), orch_server::StoreOptions::default())
                .unwrap();
        let node = node("n1", 8000, 8192, "linux");
        store
            .apply(orch_server::Op::UpsertNode(orch_model::Node {
                status: orch_model::NodeStatus::Ready,
                ..node
            }))
            .unwrap();
        for i in 0..5 {
            let job: orch_model::Job = serde_json::from_value(json!({
                "id": format!("left-{i}"),
                "group": [{"name": "g", "count": 2, "task": [{"name": "t", "driver": "exec",
                           "resources": {"cpu": 100, "memory": 64}}]}],
            }))
            .unwrap();
            store
                .apply(orch_server::Op::RegisterJob {
                    job,
                    enforce_index: None,
                    now_ms: 1,
                })
                .unwrap();
        }
        let pending = store
            .snapshot()
            .evals()
            .filter(|e| e.status == orch_model::EvalStatus::Pending)
            .count();
        assert_eq!(pending, 5);
    }
    let server = Server::start(dir.path());
    server.logged("resuming 5 pending or blocked evaluations");
    for i in 0..5 {
        server.until(
            &format!("/v1/job/left-{i}/allocations"),
            "the resumed placements",
            |a| a.as_array().is_some_and(|a| a.len() == 2),
        );
    }
}

#[test]
fn every_answer_matches_the_openapi_description() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    for (n, rack) in [("n1", "r1"), ("n2", "r2")] {
        let mut body = node(n, 4000, 8192, "linux");
        body.attributes.insert("rack".into(), rack.into());
        server.register(&body);
    }
    let placed = json!({"job": {
        "id": "web", "type": "service",
        "affinity": [{"attribute": "${attr.rack}", "value": "r1", "weight": 40}],
        "spread": [{"attribute": "${attr.rack}"}],
        "group": [{"name": "g", "count": 3, "task": [{"name": "t", "driver": "exec",
                   "config": {"command": "/bin/true"}, "resources": {"cpu": 200, "memory": 64}}]}],
    }});
    let (status, registered) = server.post("/v1/jobs", &placed);
    assert_eq!(status, 200, "{registered}");
    let failing = json!({"job": {
        "id": "nowhere",
        "constraint": [{"attribute": "${attr.os.name}", "value": "plan9"}],
        "group": [{"name": "g", "task": [{"name": "t", "driver": "exec"}]}],
    }});
    let (status, _) = server.post("/v1/jobs", &failing);
    assert_eq!(status, 200);
    let allocs = server.until("/v1/job/web/allocations", "the placements", |a| {
        a.as_array().is_some_and(|a| a.len() == 3)
    });
    let alloc = allocs[0]["id"].as_str().unwrap().to_owned();
    let eval = registered["eval_id"].as_str().unwrap().to_owned();
    let nowhere = server.until("/v1/job/nowhere/evaluations", "the failed placement", |e| {
        e.as_array()
            .is_some_and(|e| e.iter().any(|e| e["status"] == "complete"))
    });
    let blocked_parent = nowhere
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["status"] == "complete")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();

    let openapi = server.get("/v1/openapi.json");
    let reads = [
        ("/v1/status", "/v1/status".to_owned()),
        ("/v1/jobs", "/v1/jobs".to_owned()),
        ("/v1/job/{id}", "/v1/job/web".to_owned()),
        ("/v1/job/{id}/versions", "/v1/job/web/versions".to_owned()),
        (
            "/v1/job/{id}/allocations",
            "/v1/job/web/allocations".to_owned(),
        ),
        (
            "/v1/job/{id}/evaluations",
            "/v1/job/nowhere/evaluations".to_owned(),
        ),
        ("/v1/nodes", "/v1/nodes".to_owned()),
        ("/v1/node/{id}", "/v1/node/n1".to_owned()),
        (
            "/v1/node/{id}/allocations",
            "/v1/node/n1/allocations".to_owned(),
        ),
        ("/v1/evaluations", "/v1/evaluations".to_owned()),
        ("/v1/evaluation/{id}", format!("/v1/evaluation/{eval}")),
        (
            "/v1/evaluation/{id}",
            format!("/v1/evaluation/{blocked_parent}"),
        ),
        ("/v1/allocations", "/v1/allocations".to_owned()),
        (
            "/v1/allocation/{id}",
            format!("/v1/allocation/{alloc}?verbose=true"),
        ),
        (
            "/v1/allocation/{id}/why-not/{node}",
            format!("/v1/allocation/{alloc}/why-not/n2"),
        ),
    ];
    let mut problems = Vec::new();
    for (route, path) in reads {
        let answer = server.get(&path);
        let schema = &openapi["paths"][route]["get"]["responses"]["200"]["content"]["application/json"]
            ["schema"];
        assert!(!schema.is_null(), "{route} has no 200 schema");
        problems.extend(orch_wire::schema_problems(&openapi, schema, &answer, &path));
    }
    let decision = server.get(&format!("/v1/allocation/{alloc}?verbose=true"));
    assert!(
        decision["decision"]["inputs"]["cpu_capacity"].is_array(),
        "{decision:#}"
    );
    assert!(
        problems.is_empty(),
        "answers the OpenAPI document does not describe:\n{}",
        problems.join("\n")
    );
}

#[test]
fn sighup_without_a_config_is_harmless_and_sigterm_does_not_wait_for_blocking_queries() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start_with(dir.path(), false);
    server.sighup();
    server.logged("no config file to reload");
    assert!(server.get("/v1/status")["index"].is_u64(), "still serving");

    // A blocking query that would wait ten minutes, then SIGTERM: the
    // query is answered and the server exits without waiting it out.
    let index = server.get("/v1/status")["index"].as_u64().unwrap();
    let addr = server.addr.clone();
    let query = std::thread::spawn(move || {
        ureq::get(&format!("{addr}/v1/jobs?index={index}&wait=10m"))
            .call()
            .map(|r| r.status().as_u16())
    });
    // Give the query time to reach the server (its answer is checked, not
    // its timing).
    std::thread::sleep(Duration::from_millis(300));
    server.signal("TERM");
    let status = server
        .exited()
        .expect("the server exits while a blocking query is open");
    assert!(status.success(), "{status:?}");
    server.logged("shutting down");
    // What is checked is the exit above; the query may not have reached
    // the server before the signal, but if it did, it was answered.
    if let Ok(code) = query.join().unwrap() {
        assert_eq!(code, 200);
    }
}

#[test]
fn a_node_that_misses_its_heartbeat_goes_down_and_its_work_moves_after_a_restart_grace() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("orch.toml"),
        "data_dir = \"data\"\n[heartbeat]\nttl_ms = 500\ngrace_ms = 3000\n",
    )
    .unwrap();
    let server = Server::start(dir.path());
    let alive = server.register(&node("n1", 4000, 8192, "linux"));
    assert_eq!(alive.heartbeat_ttl_ms, 500);
    server.register(&node("n2", 4000, 8192, "linux"));
    let nobody = server.agent(node("nobody", 4000, 8192, "linux"));
    let e = nobody.heartbeat().unwrap_err();
    assert_eq!(e.status(), Some(404), "{e}");
    let (status, _) = server.post(
        "/v1/jobs",
        &json!({"job": {"id": "web", "group": [{"name": "g", "task": [
            {"name": "t", "driver": "exec", "resources": {"cpu": 100, "memory": 64}}]}]}}),
    );
    assert_eq!(status, 200);
    let allocs = server.until("/v1/job/web/allocations", "the placement", |a| {
        a.as_array().is_some_and(|a| a.len() == 1)
    });
    let first = allocs[0]["node_id"].as_str().unwrap().to_owned();
    let other = if first == "n1" { "n2" } else { "n1" };

    // Only the other node's agent keeps beating.
    let beating = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let beat = {
        let (agent, beating) = (
            server.agent(node(other, 4000, 8192, "linux")),
            beating.clone(),
        );
        std::thread::spawn(move || {
            while beating.load(std::sync::atomic::Ordering::Relaxed) {
                let _ = agent.heartbeat();
                std::thread::sleep(Duration::from_millis(100));
            }
        })
    };
    let down = server.until(&format!("/v1/node/{first}"), "the silent node down", |n| {
        n["status"] == "down"
    });
    assert!(
        down["status_description"]
            .as_str()
            .unwrap()
            .contains("heartbeat"),
        "{down}"
    );
    server.until("/v1/job/web/allocations", "the replacement", |a| {
        a.as_array().is_some_and(|a| {
            a.iter()
                .any(|x| x["node_id"] == other && x["desired_status"] == "run")
        })
    });
    let lost = server.get("/v1/job/web/allocations");
    assert!(
        lost.as_array()
            .unwrap()
            .iter()
            .any(|a| a["node_id"] == first.as_str() && a["client_status"] == "lost"),
        "{lost:#}"
    );
    // Beating again brings it back.
    let silent = server.agent(node(&first, 4000, 8192, "linux"));
    if let Err(e) = silent.heartbeat() {
        panic!("the silent node's heartbeat: {e}");
    }
    assert_eq!(server.get(&format!("/v1/node/{first}"))["status"], "ready");
    beating.store(false, std::sync::atomic::Ordering::Relaxed);
    beat.join().unwrap();

    // A restart of the control plane: no agent beats, yet nothing is marked
    // down before the TTL plus the grace period.
    server.kill9();
    let server = Server::start(dir.path());
    let nodes = server.get("/v1/nodes");
    assert!(
        nodes
            .as_array()
            .unwrap()
            .iter()
            .all(|n| n["status"] == "ready"),
        "within the grace period: {nodes:#}"
    );
    server.until("/v1/nodes", "both nodes down after the grace", |n| {
        n.as_array()
            .is_some_and(|n| n.iter().all(|n| n["status"] == "down"))
    });
}
