//! Scheduler A/B on a real server: settings changed at run time through the
//! CLI survive a restart and bad changes change nothing; a shadow scores
//! every decision and keeps its own cluster, which `compare` measures and
//! an independent count from the allocations confirms; promote switches the
//! policy without a restart; a split places whole jobs by a hash of their
//! id; a shadow that loops never holds up the primary.
//!
//! Nodes are simulated (registered through the API, never heartbeating: the
//! TTL is an hour); the scorers are the real built-in components.

use crate::common::Server;
use orch_model::{DriverInfo, Node, Resources};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// A config with nodes that never expire, and `extra` appended.
fn config(dir: &Path, extra: &str) {
    std::fs::write(
        dir.join("orch.toml"),
        format!(
            "data_dir = \"data\"\nworkers = 2\n[heartbeat]\nttl_ms = 3600000\ngrace_ms = 3600000\n[scheduler]\nscorer = \"binpack\"\n{extra}"
        ),
    )
    .unwrap();
}

/// A node of `cpu` MHz and `memory` MiB in datacenter `dc`.
fn node(i: usize, cpu: u32, memory: u64, dc: &str, meta: &[(&str, &str)]) -> Node {
    let mut n = orch_testkit::node(&orch_testkit::sim_node_id(i), cpu, memory, "linux");
    n.name = format!("node-{i:03}");
    n.datacenter = dc.to_owned();
    n.resources = Resources::new(cpu, memory, 100_000);
    n.drivers = [("exec".to_owned(), DriverInfo::default())].into();
    n.meta = meta
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    n
}

/// 100 machines shaped like the 2011 Google cluster trace's classes
/// (normalized cpu / memory, share of machines): 0.5/0.5 53.5%, 0.5/0.25
/// 30.7%, 0.5/0.75 8%, 1/1 6.3%, 0.25/0.25 1%, 0.5/0.12 0.4% (one here);
/// 1.0 is 32 cores and 128 GiB; two datacenters, alternately.
fn google_shaped(server: &Server) -> usize {
    let classes: [(f64, f64, usize); 6] = [
        (0.5, 0.5, 53),
        (0.5, 0.25, 31),
        (0.5, 0.75, 8),
        (1.0, 1.0, 6),
        (0.25, 0.25, 1),
        (0.5, 0.12, 1),
    ];
    let mut i = 0;
    for (cpu, mem, n) in classes {
        for _ in 0..n {
            let dc = if i % 2 == 0 { "dc1" } else { "dc2" };
            let node = node(
                i,
                (cpu * 32.0 * 2400.0) as u32,
                (mem * 131_072.0) as u64,
                dc,
                &[],
            );
            server.register(&node);
            i += 1;
        }
    }
    i
}

/// A service job of `count` allocations asking `cpu` MHz and `memory` MiB.
fn job(id: &str, count: u32, cpu: u32, memory: u64, affinity: Option<&str>) -> Value {
    let mut job = json!({
        "id": id, "type": "service",
        "group": [{
            "name": "g", "count": count,
            "task": [{
                "name": "t", "driver": "exec",
                "config": {"command": "/bin/sleep", "args": ["3600"]},
                "resources": {"cpu": cpu, "memory": memory},
            }],
        }],
    });
    if let Some(attribute) = affinity {
        job["affinity"] = json!([{ "attribute": attribute, "value": "yes", "weight": 50 }]);
    }
    job
}

fn submit(server: &Server, job: &Value) {
    let (status, body) = server.post("/v1/jobs", &json!({ "job": job }));
    assert_eq!(status, 200, "submitting: {body}");
}

/// Runs the CLI; its stdout, insisting it succeeded.
fn orch_ok(server: &Server, args: &[&str]) -> String {
    let out = server.orch(args);
    assert!(
        out.status.success(),
        "orch {args:?}: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs the CLI expecting exit code 2; its stderr.
fn orch_refused(server: &Server, args: &[&str]) -> String {
    let out = server.orch(args);
    assert_eq!(
        out.status.code(),
        Some(2),
        "orch {args:?} should be refused: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn status(server: &Server) -> Value {
    let mut s = server.get("/v1/scheduler");
    // The read's index moves with every commit; the settings do not.
    s["index"] = Value::Null;
    for c in s["candidates"].as_array_mut().into_iter().flatten() {
        c["shadow"] = Value::Null;
    }
    s
}

/// The entry of `list` (a JSON array of objects with a `name`) named
/// `name`.
fn named<'a>(list: &'a Value, name: &str) -> &'a Value {
    list.as_array()
        .and_then(|a| a.iter().find(|v| v["name"] == name))
        .unwrap_or_else(|| panic!("no {name} in {list:#}"))
}

/// Every allocation of the cluster, waiting until there are `n`.
fn allocations(server: &Server, n: usize) -> Vec<Value> {
    server
        .until("/v1/allocations", &format!("{n} allocations"), |v| {
            v.as_array().is_some_and(|a| a.len() == n)
        })
        .as_array()
        .unwrap()
        .clone()
}

/// Waits until candidate `name`'s lane was offered `offered` decisions and
/// answered them all, and its answers are stored (what compare counts).
fn shadow_drained(server: &Server, name: &str, offered: u64) -> Value {
    let s = server.until("/v1/scheduler", &format!("shadow {name} to drain"), |s| {
        s["candidates"].as_array().is_some_and(|cs| {
            cs.iter().any(|c| {
                c["name"] == name
                    && c["shadow"]["offered"].as_u64() == Some(offered)
                    && c["shadow"]["queued"] == 0
            })
        })
    });
    server.until(
        "/v1/scheduler/compare",
        &format!("{name}'s answers to be stored"),
        |c| {
            c["scorers"].as_array().is_some_and(|f| {
                f.iter()
                    .any(|f| f["name"] == name && f["decisions"].as_u64() == Some(offered))
            })
        },
    );
    named(&s["candidates"], name)["shadow"].clone()
}

#[test]
fn settings_changed_at_run_time_survive_a_restart_and_bad_changes_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    config(dir.path(), "");
    let server = Server::start(dir.path());
    let before = status(&server);
    assert_eq!(before["primary"]["name"], "binpack");
    assert_eq!(before["primary"]["origin"]["source"], "config");

    // Each refused with a reason naming the field or the scorer; nothing
    // stored changes.
    let e = orch_refused(
        &server,
        &["scheduler", "candidate", "set", "sprad", "--mode", "shadow"],
    );
    assert!(
        e.contains("no scorer is named \"sprad\"") && e.contains("spread"),
        "{e}"
    );
    let e = orch_refused(
        &server,
        &["scheduler", "candidate", "set", "spread", "--mode", "split"],
    );
    assert!(
        e.contains("scheduler.candidates.spread.weight") && e.contains("needs a weight"),
        "{e}"
    );
    orch_ok(
        &server,
        &[
            "scheduler",
            "candidate",
            "set",
            "epvm",
            "--mode",
            "split",
            "--weight",
            "60",
        ],
    );
    let split_set = status(&server);
    let e = orch_refused(
        &server,
        &[
            "scheduler",
            "candidate",
            "set",
            "spread",
            "--mode",
            "split",
            "--weight",
            "50",
        ],
    );
    assert!(e.contains("add up to 110%"), "{e}");
    assert_eq!(status(&server), split_set, "a refused change was stored");
    orch_ok(&server, &["scheduler", "candidate", "remove", "epvm"]);
    let e = orch_refused(&server, &["scheduler", "promote", "nope"]);
    assert!(e.contains("no scorer is named \"nope\""), "{e}");
    let e = orch_refused(
        &server,
        &["scheduler", "scorer", "add", "Bad", "builtin:binpack"],
    );
    assert!(e.contains("\"Bad\" is not a scorer name"), "{e}");
    let e = orch_refused(&server, &["scheduler", "scorer", "remove", "binpack"]);
    assert!(e.contains("binpack is the primary"), "{e}");
    // A file the API names is read only from under the config's folder,
    // whether it is there or not.
    for far in ["/etc/passwd", "/nonexistent.wasm", "../elsewhere.wasm"] {
        let e = orch_refused(&server, &["scheduler", "scorer", "add", "far", far]);
        assert!(
            e.contains("scheduler.scorers.far.plugin")
                && e.contains("is not under")
                && e.contains("push it to a registry"),
            "{e}"
        );
        assert!(!e.contains("does not exist"), "{e}");
    }
    // A scorer that cannot even answer a typical request is not added…
    std::fs::copy(
        orch_conformance::fixture_wasm("loop-forever"),
        dir.path().join("loopy.wasm"),
    )
    .unwrap();
    let e = orch_refused(
        &server,
        &[
            "scheduler",
            "scorer",
            "add",
            "loopy",
            "loopy.wasm",
            "--deadline-ms",
            "50",
        ],
    );
    assert!(e.contains("failed the basic checks"), "{e}");
    // …and one that answers but fails `orch plugin test` is known by name
    // but cannot be a candidate or the primary, with the reason.
    std::fs::copy(
        orch_conformance::fixture_wasm("keeps-state"),
        dir.path().join("stateful.wasm"),
    )
    .unwrap();
    orch_ok(
        &server,
        &["scheduler", "scorer", "add", "stateful", "stateful.wasm"],
    );
    let known = status(&server);
    let e = orch_refused(
        &server,
        &[
            "scheduler",
            "candidate",
            "set",
            "stateful",
            "--mode",
            "shadow",
        ],
    );
    assert!(
        e.contains("does not pass `orch plugin test`") && e.contains("deterministic"),
        "{e}"
    );
    let e = orch_refused(&server, &["scheduler", "promote", "stateful"]);
    assert!(e.contains("does not pass"), "{e}");
    assert_eq!(status(&server), known, "a refused change was stored");
    orch_ok(&server, &["scheduler", "scorer", "remove", "stateful"]);
    assert_eq!(status(&server), before);

    // A good change: in force at once, stored, and the status says so.
    let out = orch_ok(
        &server,
        &[
            "scheduler",
            "candidate",
            "set",
            "spread",
            "--mode",
            "shadow",
        ],
    );
    assert!(out.contains("Candidate spread runs in shadow"), "{out}");
    let set = status(&server);
    assert_eq!(set["candidates"][0]["name"], "spread");
    assert_eq!(set["candidates"][0]["origin"]["source"], "api");
    let text = orch_ok(&server, &["scheduler", "status"]);
    assert!(text.contains("spread") && text.contains("api, "), "{text}");

    // Killed and started again on the same data: the same settings.
    server.kill9();
    let server = Server::start(dir.path());
    assert_eq!(
        status(&server),
        set,
        "the settings did not survive a restart"
    );
    server.logged("shadow spread");

    orch_ok(&server, &["scheduler", "reset"]);
    assert_eq!(status(&server), before);
}

#[test]
fn a_shadow_measures_its_own_cluster_and_promote_and_split_switch_policies_live() {
    let dir = tempfile::tempdir().unwrap();
    config(dir.path(), "");
    let server = Server::start(dir.path());
    let nodes = google_shaped(&server);
    orch_ok(
        &server,
        &[
            "scheduler",
            "candidate",
            "set",
            "spread",
            "--mode",
            "shadow",
        ],
    );

    // A stream of jobs of mixed sizes: 30 jobs, 75 allocations.
    let mut total = 0;
    for j in 0..30u32 {
        let count = 1 + j % 4;
        let cpu = 1000 + (j * 700) % 6000;
        let memory = 1024 + u64::from(j * 3001) % 16_384;
        submit(
            &server,
            &job(&format!("mixed-{j:02}"), count, cpu, memory, None),
        );
        total += count as usize;
    }
    let allocs = allocations(&server, total);
    let lane = shadow_drained(&server, "spread", total as u64);
    assert_eq!(lane["scored"].as_u64(), Some(total as u64), "{lane}");
    assert_eq!(lane["faults"], 0);

    let compare: Value =
        serde_json::from_str(&orch_ok(&server, &["scheduler", "compare", "--json"])).unwrap();
    let binpack = named(&compare["scorers"], "binpack");
    let spread = named(&compare["scorers"], "spread");
    assert_eq!(binpack["decisions"].as_u64(), Some(total as u64));
    assert_eq!(spread["decisions"].as_u64(), Some(total as u64));
    let (b, s) = (&binpack["packing"], &spread["packing"]);
    assert_eq!(b["nodes"].as_u64(), Some(nodes as u64));
    // The independent count: the real cluster from the allocations…
    let real: BTreeSet<&str> = allocs
        .iter()
        .map(|a| a["node_id"].as_str().unwrap())
        .collect();
    assert_eq!(b["nodes_used"].as_u64(), Some(real.len() as u64), "{b}");
    // …and the shadow cluster from each allocation's decision record.
    let mut shadow_nodes = BTreeSet::new();
    let mut agreed = 0;
    // Allocation → the node spread would have picked, where it is not the
    // node binpack picked.
    let mut disagreements: BTreeMap<String, String> = BTreeMap::new();
    for a in &allocs {
        let id = a["id"].as_str().unwrap();
        let detail = server.get(&format!("/v1/allocation/{id}?verbose=true"));
        let mine = detail["shadows"]
            .as_array()
            .and_then(|s| s.iter().find(|s| s["candidate"] == "spread"))
            .unwrap_or_else(|| panic!("no shadow answer for {id}: {detail:#}"));
        shadow_nodes.insert(mine["cluster_node"].as_str().unwrap().to_owned());
        let picked = &detail["decision"]["candidates"]
            [detail["decision"]["pick"].as_u64().unwrap() as usize];
        let shadow_pick =
            &detail["decision"]["candidates"][mine["pick"].as_u64().unwrap() as usize];
        if picked == shadow_pick {
            agreed += 1;
        } else {
            disagreements.insert(id.to_owned(), shadow_pick.as_str().unwrap().to_owned());
        }
    }
    assert_eq!(
        s["nodes_used"].as_u64(),
        Some(shadow_nodes.len() as u64),
        "{s}"
    );
    assert_eq!(s["allocations"].as_u64(), Some(total as u64), "{s}");
    let agreement = spread["agreement"].as_f64().unwrap();
    assert!((agreement - f64::from(agreed) / total as f64).abs() < 1e-9);
    // The point of the comparison: spread uses more nodes than binpack.
    assert!(
        shadow_nodes.len() > real.len(),
        "spread used {} nodes, binpack {}",
        shadow_nodes.len(),
        real.len()
    );
    let text = orch_ok(&server, &["scheduler", "compare"]);
    assert!(
        text.contains("nodes used") && text.contains("spread (shadow)"),
        "{text}"
    );

    // Promote: the next placements follow spread, with no restart; binpack
    // keeps watching in shadow.
    let out = orch_ok(&server, &["scheduler", "promote", "spread"]);
    assert!(
        out.contains("spread is the primary now; binpack runs in shadow"),
        "{out}"
    );
    submit(&server, &job("after-promote", 2, 500, 256, None));
    let allocs = allocations(&server, total + 2);
    total += 2;
    for a in allocs.iter().filter(|a| a["job_id"] == "after-promote") {
        let id = a["id"].as_str().unwrap();
        let d = server.get(&format!("/v1/allocation/{id}?verbose=true"));
        assert_eq!(d["decision"]["scorer_name"], "spread", "{d:#}");
    }
    shadow_drained(&server, "binpack", 2);

    // A 50% split: each job placed whole by one policy, the jobs whose id
    // the split draws below 50 by the split.
    orch_ok(
        &server,
        &[
            "scheduler",
            "candidate",
            "set",
            "binpack",
            "--mode",
            "split",
            "--weight",
            "50",
        ],
    );
    let ids: Vec<String> = (0..20).map(|i| format!("split-{i:02}")).collect();
    for id in &ids {
        submit(&server, &job(id, 2, 500, 256, None));
    }
    let allocs = allocations(&server, total + 40);
    let mut by_job: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for a in allocs
        .iter()
        .filter(|a| a["job_id"].as_str().unwrap().starts_with("split-"))
    {
        let id = a["id"].as_str().unwrap();
        let d = server.get(&format!("/v1/allocation/{id}?verbose=true"));
        by_job
            .entry(a["job_id"].as_str().unwrap().to_owned())
            .or_default()
            .insert(d["decision"]["scorer_name"].as_str().unwrap().to_owned());
    }
    let mut placed_by_split = 0;
    for id in &ids {
        let scorers = &by_job[id];
        assert_eq!(scorers.len(), 1, "job {id} placed by {scorers:?}");
        let expected = if orch_model::bucket("binpack", id) < 50 {
            "binpack"
        } else {
            "spread"
        };
        assert!(
            scorers.contains(expected),
            "job {id}: {scorers:?}, expected {expected}"
        );
        placed_by_split += usize::from(expected == "binpack");
    }
    assert!(
        (4..=16).contains(&placed_by_split),
        "{placed_by_split} of 20 by the split"
    );
}

#[test]
fn a_looping_shadow_never_holds_up_the_primary() {
    let dir = tempfile::tempdir().unwrap();
    let looping = orch_conformance::fixture_wasm("loops-on-cue");
    config(
        dir.path(),
        &format!(
            "[scheduler.scorers.loopy]\nplugin = \"{}\"\ndeadline_ms = 50\n[scheduler.candidates.loopy]\nmode = \"shadow\"\n",
            looping.display()
        ),
    );
    let server = Server::start(dir.path());
    for i in 0..6 {
        server.register(&node(i, 8000, 16_384, "dc1", &[("orch-loop-cue", "yes")]));
    }
    // Every placement names the cue: the shadow spins on each one.
    for j in 0..12 {
        submit(
            &server,
            &job(
                &format!("cued-{j}"),
                1,
                500,
                256,
                Some("${meta.orch-loop-cue}"),
            ),
        );
    }
    let allocs = allocations(&server, 12);
    assert!(
        allocs
            .iter()
            .all(|a| !a["node_id"].as_str().unwrap().is_empty())
    );
    let lane = shadow_drained(&server, "loopy", 12);
    assert_eq!(lane["scored"], 0, "{lane}");
    assert_eq!(lane["faults"].as_u64(), Some(12), "{lane}");
    // Five deadlines trip its breaker; the rest are refused at once.
    server.logged("shadow loopy: its breaker is open");
    let compare = server.get("/v1/scheduler/compare");
    let loopy = named(&compare["scorers"], "loopy");
    assert_eq!(loopy["faults"].as_u64(), Some(12), "{loopy}");
    let binpack = &compare["scorers"][0];
    assert_eq!(
        (binpack["name"].as_str(), binpack["faults"].as_u64()),
        (Some("binpack"), Some(0))
    );
}

#[test]
fn the_fallback_answers_for_the_primary_and_compare_shows_it_so() {
    let dir = tempfile::tempdir().unwrap();
    let looping = orch_conformance::fixture_wasm("loops-on-cue");
    std::fs::write(
        dir.path().join("orch.toml"),
        format!(
            "data_dir = \"data\"\nworkers = 2\n[heartbeat]\nttl_ms = 3600000\ngrace_ms = 3600000\n\
             [scheduler]\nscorer = \"loopy\"\nfallback = \"binpack\"\n\
             [scheduler.scorers.loopy]\nplugin = \"{}\"\ndeadline_ms = 50\n",
            looping.display()
        ),
    )
    .unwrap();
    let server = Server::start(dir.path());
    for i in 0..3 {
        server.register(&node(i, 8000, 16_384, "dc1", &[("orch-loop-cue", "yes")]));
    }
    // The primary spins on every placement: binpack answers each.
    for j in 0..4 {
        submit(
            &server,
            &job(
                &format!("cued-{j}"),
                1,
                500,
                256,
                Some("${meta.orch-loop-cue}"),
            ),
        );
    }
    // The records are committed with the allocations.
    allocations(&server, 4);
    let compare = server.get("/v1/scheduler/compare");
    let figures = |name: &str| {
        compare["scorers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["name"] == name)
            .unwrap_or_else(|| panic!("{name} missing: {compare:#}"))
            .clone()
    };
    let loopy = figures("loopy");
    assert_eq!(loopy["role"], "primary", "{loopy}");
    assert_eq!(
        (
            loopy["decisions"].as_u64(),
            loopy["faults"].as_u64(),
            loopy["fallbacks"].as_u64()
        ),
        (Some(0), Some(4), Some(4)),
        "{loopy}"
    );
    let binpack = figures("binpack");
    assert_eq!(binpack["role"], "fallback", "{binpack}");
    assert!(
        binpack["label"].as_str().unwrap().starts_with("binpack "),
        "{binpack}"
    );
    assert_eq!(
        (
            binpack["decisions"].as_u64(),
            binpack["faults"].as_u64(),
            binpack["fallbacks"].as_u64()
        ),
        (Some(4), Some(0), Some(0)),
        "{binpack}"
    );
    assert!(binpack["latency_p50_us"].as_u64().unwrap() > 0, "{binpack}");
    let text = orch_ok(&server, &["scheduler", "compare"]);
    let row: Vec<&str> = text
        .lines()
        .find(|l| l.starts_with("binpack "))
        .unwrap_or_else(|| panic!("no binpack row:\n{text}"))
        .split_whitespace()
        .collect();
    assert_eq!(row[..3], ["binpack", "fallback", "4"], "{text}");
}

/// `GET path`: the status and the body.
fn get_status(server: &Server, path: &str) -> (u16, Value) {
    let resp = ureq::get(&format!("{}{path}", server.addr))
        .config()
        .http_status_as_error(false)
        .build()
        .call()
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.into_body().read_json().unwrap_or(Value::Null))
}

#[test]
fn decision_pages_read_one_window_and_compare_looks_back_a_day() {
    let dir = tempfile::tempdir().unwrap();
    config(dir.path(), "");
    let server = Server::start(dir.path());
    for i in 0..3 {
        server.register(&node(i, 8000, 16_384, "dc1", &[]));
    }
    submit(&server, &job("paged", 7, 500, 256, None));
    allocations(&server, 7);

    // The first page counts them all and says where its window starts;
    // the later ones ask for that window and count nothing again.
    let hour = 3_600_000;
    let asked = orch_model::now_ms();
    let first = server.get("/v1/scheduler/decisions?since=1h&limit=3");
    let answered = orch_model::now_ms();
    assert_eq!(first["total"].as_u64(), Some(7), "{first:#}");
    let since_ms = first["since_ms"].as_u64().unwrap();
    assert!(
        (asked - hour..=answered - hour).contains(&since_ms),
        "{since_ms}"
    );
    let mut seen = first["decisions"].as_array().unwrap().len();
    let mut next = first["next"].as_u64();
    while let Some(after) = next {
        let page = server.get(&format!(
            "/v1/scheduler/decisions?since_ms={since_ms}&after={after}&limit=3"
        ));
        assert_eq!(page["total"].as_u64(), Some(0), "{page:#}");
        assert_eq!(page["since_ms"].as_u64(), Some(since_ms));
        seen += page["decisions"].as_array().unwrap().len();
        next = page["next"].as_u64();
    }
    assert_eq!(seen, 7);
    let (status, e) = get_status(&server, "/v1/scheduler/decisions?since=1h&since_ms=5");
    assert_eq!(status, 400, "{e}");
    assert!(e["message"].as_str().unwrap().contains("not both"), "{e}");

    // The CLI's replay reads the same records.
    let report: Value = serde_json::from_str(&orch_ok(
        &server,
        &[
            "scheduler",
            "replay",
            "--with",
            "spread",
            "--since",
            "1h",
            "--json",
        ],
    ))
    .unwrap();
    assert_eq!(report["decisions"].as_u64(), Some(7), "{report:#}");

    // compare: the last 24 hours unless asked otherwise.
    let asked = orch_model::now_ms();
    let day = server.get("/v1/scheduler/compare");
    let answered = orch_model::now_ms();
    let since_ms = day["since_ms"].as_u64().unwrap();
    assert!(
        (asked - 24 * hour..=answered - 24 * hour).contains(&since_ms),
        "{since_ms}"
    );
    assert_eq!(
        named(&day["scorers"], "binpack")["decisions"].as_u64(),
        Some(7)
    );
    let all = server.get("/v1/scheduler/compare?since=all");
    assert_eq!(all["since_ms"].as_u64(), Some(0));
    let text = orch_ok(&server, &["scheduler", "compare", "--since", "all"]);
    assert!(text.contains("since the first recorded"), "{text}");
}
