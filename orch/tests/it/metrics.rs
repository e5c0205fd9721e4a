//! `/v1/metrics` on a real server, read as Prometheus would: a binpack
//! primary and a spread shadow place jobs on simulated nodes, the scrape
//! is parsed by a Prometheus text-format parser (every line must be one it
//! knows), and its figures are held to what happened — the allocations
//! placed, the shadow's answers, the nodes, the evaluations. (By hand,
//! `promtool check metrics` also passes on a scrape.)

use crate::common::Server;
use orch_model::{DriverInfo, Resources};
use prometheus_parse::{LineInfo, Sample, Scrape, Value};
use serde_json::json;
use std::time::{Duration, Instant};

/// A config with nodes that never expire, binpack placing and spread
/// watching in shadow.
fn config(dir: &std::path::Path) {
    std::fs::write(
        dir.join("orch.toml"),
        "data_dir = \"data\"\nworkers = 2\n[heartbeat]\nttl_ms = 3600000\ngrace_ms = 3600000\n\
         [scheduler]\nscorer = \"binpack\"\n[scheduler.candidates.spread]\nmode = \"shadow\"\n",
    )
    .unwrap();
}

/// `GET /v1/metrics` (with `query`): status, content type, body.
fn scrape(server: &Server, query: &str) -> (u16, String, String) {
    let mut response = ureq::get(&format!("{}/v1/metrics{query}", server.addr))
        .config()
        .http_status_as_error(false)
        .build()
        .call()
        .unwrap();
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let body = response.body_mut().read_to_string().unwrap();
    (response.status().as_u16(), content_type, body)
}

/// The scrape, parsed; every line must be a sample, a HELP or a TYPE line
/// the parser understands (it skips what it does not, so this is checked
/// here).
fn parse(text: &str) -> Scrape {
    for line in text.lines() {
        assert!(
            !matches!(LineInfo::parse(line), LineInfo::Ignored),
            "not Prometheus text: {line:?}"
        );
    }
    Scrape::parse(text.lines().map(|l| Ok(l.to_owned()))).unwrap()
}

/// The sample of `metric` with exactly `labels`.
fn sample<'a>(scrape: &'a Scrape, metric: &str, labels: &[(&str, &str)]) -> Option<&'a Sample> {
    scrape.samples.iter().find(|s| {
        s.metric == metric
            && s.labels.len() == labels.len()
            && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v))
    })
}

/// A counter's or a gauge's value; `None` when there is no such series.
fn number(scrape: &Scrape, metric: &str, labels: &[(&str, &str)]) -> Option<f64> {
    sample(scrape, metric, labels).map(|s| match &s.value {
        Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => *v,
        other => panic!("{metric}: not a number: {other:?}"),
    })
}

fn scorer<'a>(name: &'a str, role: &'a str) -> [(&'a str, &'a str); 2] {
    [("scorer", name), ("role", role)]
}

#[test]
fn metrics_count_what_the_scorers_and_the_server_did() {
    let dir = tempfile::tempdir().unwrap();
    config(dir.path());
    let server = Server::start(dir.path());
    let nodes = 8;
    for i in 0..nodes {
        let mut n = orch_testkit::node(&orch_testkit::sim_node_id(i), 8000, 16_384, "linux");
        n.name = format!("node-{i:03}");
        n.resources = Resources::new(8000, 16_384, 100_000);
        n.drivers = [("exec".to_owned(), DriverInfo::default())].into();
        server.register(&n);
    }
    // 6 jobs, 12 allocations: room for all of them.
    let mut total = 0;
    let jobs = 6;
    for j in 0..jobs {
        let count = 1 + j % 3;
        let job = json!({
            "id": format!("web-{j}"), "type": "service",
            "group": [{
                "name": "g", "count": count,
                "task": [{
                    "name": "t", "driver": "exec",
                    "config": {"command": "/bin/sleep", "args": ["3600"]},
                    "resources": {"cpu": 500, "memory": 256},
                }],
            }],
        });
        let (status, body) = server.post("/v1/jobs", &json!({ "job": job }));
        assert_eq!(status, 200, "{body}");
        total += count;
    }
    let total = f64::from(total);
    server.until("/v1/allocations", "every allocation", |v| {
        v.as_array().is_some_and(|a| a.len() as f64 == total)
    });

    // The shadow answers after the primary's commit: wait for its lane.
    let started = Instant::now();
    let (text, scrape) = loop {
        let (status, content_type, text) = scrape(&server, "");
        assert_eq!(status, 200, "{text}");
        assert_eq!(content_type, "text/plain; version=0.0.4; charset=utf-8");
        let parsed = parse(&text);
        let shadow = scorer("spread", "shadow");
        let answered = number(&parsed, "orch_scorer_decisions_total", &shadow).unwrap_or(0.0)
            + number(&parsed, "orch_scorer_faults_total", &shadow).unwrap_or(0.0);
        if answered == total {
            break (text, parsed);
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the shadow did not answer {total} decisions:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let n = |metric: &str, labels: &[(&str, &str)]| {
        number(&scrape, metric, labels).unwrap_or_else(|| panic!("no {metric} {labels:?}:\n{text}"))
    };

    // The primary made every placement; nothing failed or fell back.
    let binpack = scorer("binpack", "primary");
    assert_eq!(n("orch_scorer_decisions_total", &binpack), total);
    assert_eq!(n("orch_scorer_faults_total", &binpack), 0.0);
    assert_eq!(n("orch_scorer_fallbacks_total", &binpack), 0.0);
    // The shadow answered every decision, as its lane's own counters say.
    let spread = scorer("spread", "shadow");
    assert_eq!(n("orch_scorer_decisions_total", &spread), total);
    assert_eq!(n("orch_scorer_faults_total", &spread), 0.0);
    assert_eq!(n("orch_scorer_shadow_dropped_total", &spread), 0.0);
    let status = server.get("/v1/scheduler");
    let lane = status["candidates"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "spread")
        .unwrap()["shadow"]
        .clone();
    assert_eq!(lane["scored"].as_f64(), Some(total), "{lane}");
    let agreed = n("orch_scorer_shadow_agreed_total", &spread);
    assert_eq!(lane["agreed"].as_f64(), Some(agreed), "{lane}");
    // A shadow has no fallbacks, a primary no shadow counters.
    assert_eq!(
        number(&scrape, "orch_scorer_fallbacks_total", &spread),
        None
    );
    assert_eq!(
        number(&scrape, "orch_scorer_shadow_agreed_total", &binpack),
        None
    );

    // Call times: one call per placement at least (a refused plan is
    // scored again), every bucket cumulative, the last one all of them.
    for labels in [&binpack, &spread] {
        let Some(Value::Histogram(buckets)) =
            sample(&scrape, "orch_scorer_call_duration_seconds", labels).map(|s| &s.value)
        else {
            panic!("no call histogram for {labels:?}:\n{text}");
        };
        let count = n("orch_scorer_call_duration_seconds_count", labels);
        assert!(count >= total, "{labels:?}: {count} calls");
        assert!(
            buckets
                .windows(2)
                .all(|w| w[0].count <= w[1].count && w[0].less_than < w[1].less_than)
        );
        let last = buckets.last().unwrap();
        assert!(last.less_than.is_infinite());
        assert_eq!(last.count, count);
        assert!(buckets[0].less_than <= 1e-5, "{buckets:?}");
        assert!(n("orch_scorer_call_duration_seconds_sum", labels) > 0.0);
    }

    // The server: what its state, broker and writer say now.
    assert_eq!(n("orch_nodes", &[("status", "ready")]), nodes as f64);
    assert_eq!(n("orch_nodes", &[("status", "down")]), 0.0);
    assert_eq!(
        n("orch_evaluations", &[("status", "complete")]),
        f64::from(jobs)
    );
    assert_eq!(n("orch_evaluations", &[("status", "pending")]), 0.0);
    assert_eq!(n("orch_evaluations", &[("status", "blocked")]), 0.0);
    // Simulated agents report nothing: every allocation is still pending.
    assert_eq!(
        n("orch_allocations", &[("client_status", "pending")]),
        total
    );
    assert_eq!(n("orch_allocations", &[("client_status", "running")]), 0.0);
    for queue in ["ready", "waiting", "inflight", "delayed", "blocked"] {
        assert_eq!(
            n("orch_broker_evaluations", &[("queue", queue)]),
            0.0,
            "{queue}"
        );
    }
    assert_eq!(n("orch_store_writer_queued_ops", &[]), 0.0);
    assert_eq!(n("orch_plan_applier_queued_plans", &[]), 0.0);
    // Every op is in one commit, several in one when they come together:
    // the nodes, the jobs and their plans at least.
    let commits = n("orch_store_commit_duration_seconds_count", &[]);
    assert!(commits >= 1.0, "{commits}");
    assert_eq!(n("orch_store_commit_ops_count", &[]), commits);
    let ops = n("orch_store_commit_ops_sum", &[]);
    assert!(ops >= (nodes + 2 * jobs as usize) as f64, "{ops} ops");
    assert!(ops >= commits);
    assert_eq!(
        n("orch_build_info", &[("version", env!("CARGO_PKG_VERSION"))]),
        1.0
    );
    assert!(
        scrape.docs["orch_scorer_shadow_agreed_total"].contains("agreement is"),
        "{:?}",
        scrape.docs
    );

    // The shadow's role ends: its series go (once its lane has stopped),
    // and the primary's count on.
    let out = server.orch(&["scheduler", "candidate", "remove", "spread"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let started = Instant::now();
    let (text, scrape) = loop {
        // (The function, not the scrape above.)
        let (_, _, text) = self::scrape(&server, "");
        if !text.contains(r#"scorer="spread""#) {
            let parsed = parse(&text);
            break (text, parsed);
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the removed shadow's series stayed:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(
        number(&scrape, "orch_scorer_decisions_total", &binpack),
        Some(total),
        "{text}"
    );
    assert_eq!(
        number(&scrape, "orch_scorer_shadow_dropped_total", &spread),
        None
    );
}

#[test]
fn metrics_refuse_a_parameter_they_do_not_take() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let (status, content_type, body) = scrape(&server, "?format=openmetrics");
    assert_eq!(status, 400, "{body}");
    assert!(
        content_type.starts_with("application/json"),
        "{content_type}"
    );
    let error: orch_wire::ErrorBody = serde_json::from_str(&body).unwrap();
    assert_eq!(error.code, "bad_request");
    assert!(
        error.message.starts_with("unknown query parameter format"),
        "{}",
        error.message
    );
    // `index` and `wait` are a blocking query's, as on every read.
    let (status, content_type, body) = scrape(&server, "?index=0&wait=1s");
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("# TYPE orch_nodes gauge"), "{body}");
    // What is served is what the OpenAPI document says.
    let openapi = server.get("/v1/openapi.json");
    let answers = &openapi["paths"]["/v1/metrics"]["get"]["responses"]["200"]["content"];
    assert!(answers[content_type.as_str()].is_object(), "{answers}");
}
