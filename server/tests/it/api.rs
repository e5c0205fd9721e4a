//! The HTTP API over real HTTP: a real store on a temp dir, a real broker
//! and scheduler, the router served on 127.0.0.1, and ureq as the client.
//! Nothing consumes evaluations here (no workers): evaluations stay
//! pending, and allocations are put in place through the store's plan
//! applier, as a worker would.

use orch_model::{Allocation, ClientStatus, Decision, DesiredStatus, Resources};
use orch_server::{
    ApiContext, Broker, Current, Metrics, NativeScorer as Native, Op, Plan, Sampling, Scheduler,
    Store, StoreOptions, router, routes,
};
use orch_testkit::FakeAgent;
use orch_wire::ErrorBody;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Small, so the test of a too-large body is cheap.
const MAX_BODY: usize = 64 * 1024;

struct Server {
    base: String,
    store: Store,
    /// The API's dry-run permits, to fill them in a test.
    dry_runs: Arc<tokio::sync::Semaphore>,
    agent: ureq::Agent,
    _runtime: tokio::runtime::Runtime,
    _dir: tempfile::TempDir,
}

/// One answer: status, X-Orch-Index, body.
struct Answer {
    status: u16,
    index: Option<u64>,
    content_type: String,
    body: String,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }

    fn error(&self) -> ErrorBody {
        assert!(
            self.content_type.starts_with("application/json"),
            "error as {}: {}",
            self.content_type,
            self.body
        );
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("not an ErrorBody ({e}): {}", self.body))
    }

    fn ok(self) -> Self {
        assert_eq!(self.status, 200, "{}", self.body);
        self
    }
}

fn start() -> Server {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("state.db"), StoreOptions::default()).unwrap();
    let broker = Arc::new(Broker::new(Default::default()));
    let scorer = Arc::new(Native::new(orch_scorer_binpack::Binpack));
    let metrics = Metrics::new();
    let scheduler = Current::new(
        Scheduler::new(scorer, Sampling::default())
            .named("binpack")
            .with_metrics(&metrics),
    );
    let dry_runs = Arc::new(tokio::sync::Semaphore::new(ApiContext::DRY_RUNS));
    let ctx = ApiContext {
        store: store.clone(),
        broker,
        scheduler,
        max_body_bytes: MAX_BODY,
        dry_runs: dry_runs.clone(),
        // No reaper runs here: nodes never expire in these tests.
        heartbeats: Arc::new(orch_server::Heartbeats::new(
            Duration::from_secs(10),
            Duration::from_secs(10),
        )),
        // A fixed scheduler: /v1/scheduler answers 503 here (tested with
        // a real server in orch's end-to-end tests).
        lineup: None,
        metrics,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = listener.local_addr().unwrap();
    runtime.spawn(async move { axum::serve(listener, router(ctx)).await });
    let agent = ureq::Agent::new_with_config(
        ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(60)))
            .build(),
    );
    Server {
        base: format!("http://{addr}"),
        store,
        dry_runs,
        agent,
        _runtime: runtime,
        _dir: dir,
    }
}

impl Server {
    fn answer(mut response: ureq::http::Response<ureq::Body>) -> Answer {
        let status = response.status().as_u16();
        let index = response
            .headers()
            .get("x-orch-index")
            .map(|v| v.to_str().unwrap().parse().unwrap());
        let content_type = response
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        let body = response.body_mut().read_to_string().unwrap();
        Answer {
            status,
            index,
            content_type,
            body,
        }
    }

    fn get(&self, path: &str) -> Answer {
        Self::answer(
            self.agent
                .get(format!("{}{path}", self.base))
                .call()
                .unwrap(),
        )
    }

    fn delete(&self, path: &str) -> Answer {
        Self::answer(
            self.agent
                .delete(format!("{}{path}", self.base))
                .call()
                .unwrap(),
        )
    }

    fn post_raw(&self, path: &str, content_type: Option<&str>, body: &[u8]) -> Answer {
        let mut request = self.agent.post(format!("{}{path}", self.base));
        if let Some(ct) = content_type {
            request = request.header("content-type", ct);
        }
        Self::answer(request.send(body).unwrap())
    }

    fn post(&self, path: &str, body: &Value) -> Answer {
        self.post_raw(
            path,
            Some("application/json"),
            serde_json::to_string(body).unwrap().as_bytes(),
        )
    }

    fn register(&self, job: Value) -> Value {
        self.post("/v1/jobs", &json!({ "job": job })).ok().json()
    }
}

fn web_job(count: u32) -> Value {
    json!({
        "id": "web",
        "group": [{
            "name": "front",
            "count": count,
            "task": [{"name": "server", "driver": "exec", "resources": {"cpu": 200, "memory": 256}}]
        }]
    })
}

fn node_body(id: &str) -> Value {
    json!({
        "id": id,
        "name": format!("host-{id}"),
        "resources": {"cpu": 4000, "memory": 8192, "disk": 10000},
        "drivers": {"exec": {"detected": true, "healthy": true}}
    })
}

fn alloc(id: &str, job: &str, node: &str, index: u32) -> Allocation {
    Allocation {
        id: id.into(),
        name: format!("{job}.front[{index}]"),
        job_id: job.into(),
        job_version: 0,
        group: "front".into(),
        index,
        node_id: node.into(),
        eval_id: "eval-by-test".into(),
        resources: Resources::new(200, 256, 0),
        spec_hash: String::new(),
        desired_status: DesiredStatus::Run,
        desired_description: String::new(),
        client_status: ClientStatus::Pending,
        client_description: String::new(),
        previous_allocation: None,
        reschedule_times_ms: vec![],
        create_index: 0,
        modify_index: 0,
        create_time_ms: 0,
        client_time_ms: 0,
        task_states: Default::default(),
    }
}

fn decision(alloc_id: &str, node: &str) -> Decision {
    Decision {
        alloc_id: alloc_id.into(),
        eval_id: "eval-by-test".into(),
        job_id: "web".into(),
        group: "front".into(),
        scorer: "binpack".into(),
        scorer_digest: "native:binpack".into(),
        scorer_name: String::new(),
        policy: String::new(),
        split: false,
        time_ms: 0,
        scorer_failure: None,
        placement: 0,
        snapshot_index: 0,
        job_priority: 50,
        ask: Default::default(),
        inputs: Default::default(),
        nodes_evaluated: 1,
        nodes_filtered: BTreeMap::new(),
        nodes_skipped: 0,
        candidates: vec![node.into()],
        scores: vec![0.5],
        host_adjustments: vec![],
        host_divisor: 0.0,
        part_names: vec!["cpu".into()],
        parts: vec![0.5],
        pick: 0,
        scorer_micros: 1,
        total_micros: 2,
    }
}

/// A node, the web job, and two allocations on the node whose ids share
/// the prefix `aaaa`, placed through the plan applier as a worker would.
fn with_allocations(server: &Server) -> (String, String) {
    server.post("/v1/nodes", &node_body("node-1234")).ok();
    server.register(web_job(2));
    let (a, b) = (
        "aaaa1111-0000-0000-0000-000000000000".to_owned(),
        "aaaa2222-0000-0000-0000-000000000000".to_owned(),
    );
    let plan = Plan {
        eval_id: "eval-by-test".into(),
        job_id: "web".into(),
        priority: 50,
        snapshot_index: server.store.index(),
        placements: [(
            "node-1234".to_owned(),
            vec![
                alloc(&a, "web", "node-1234", 0),
                alloc(&b, "web", "node-1234", 1),
            ],
        )]
        .into(),
        stops: vec![],
        decisions: vec![decision(&a, "node-1234")],
        records: vec![],
        all_at_once: false,
        evals: vec![],
    };
    server.store.apply(Op::ApplyPlan(plan)).unwrap();
    (a, b)
}

#[test]
fn register_a_job_and_read_it_back() {
    let server = start();
    let registered = server.post("/v1/jobs", &json!({ "job": web_job(2) })).ok();
    let body = registered.json();
    assert_eq!(body["job_version"], 0);
    let index = body["index"].as_u64().unwrap();
    assert_eq!(registered.index, Some(index));
    assert_eq!(body["job_modify_index"].as_u64(), Some(index));
    let eval_id = body["eval_id"].as_str().unwrap().to_owned();
    assert!(body.get("warnings").is_none(), "{body}");

    let job = server.get("/v1/job/web").ok();
    assert_eq!(job.index, Some(index));
    let job = job.json();
    assert_eq!(job["id"], "web");
    assert_eq!(job["group"][0]["count"], 2);
    assert_eq!(job["group"][0]["task"][0]["resources"]["memory"], 256);
    assert!(job["submit_time_ms"].as_u64().unwrap() > 1_700_000_000_000);

    let jobs = server.get("/v1/jobs").ok().json();
    assert_eq!(jobs.as_array().unwrap().len(), 1);
    assert_eq!(jobs[0]["id"], "web");
    assert_eq!(jobs[0]["type"], "service");
    assert_eq!(jobs[0]["status"], "pending");

    // Nothing consumes evaluations here: the one made stays pending.
    let evals = server.get("/v1/job/web/evaluations").ok().json();
    assert_eq!(evals.as_array().unwrap().len(), 1);
    assert_eq!(evals[0]["id"].as_str(), Some(eval_id.as_str()));
    assert_eq!(evals[0]["status"], "pending");
    assert_eq!(evals[0]["triggered_by"], "job-register");
    let eval = server.get(&format!("/v1/evaluation/{eval_id}")).ok().json();
    assert_eq!(eval["placed"], json!([]));

    // The same job again changes nothing: no version, no evaluation.
    let again = server.register(web_job(2));
    assert_eq!(again["eval_id"], Value::Null);
    assert_eq!(again["job_version"], 0);

    // A system job with a count is legal but gets a warning.
    let mut system = web_job(3);
    system["id"] = json!("agent");
    system["type"] = json!("system");
    let warned = server.register(system);
    let warnings = warned["warnings"].as_array().unwrap();
    assert!(
        warnings[0]
            .as_str()
            .unwrap()
            .starts_with("group[0].count: count = 3 is ignored"),
        "{warnings:?}"
    );

    let status = server.get("/v1/status").ok().json();
    assert_eq!(status["jobs"], 2);
    assert_eq!(status["scorer"]["digest"], "native:binpack");
    assert_eq!(status["sampling"]["candidates"], 64);
    assert_eq!(status["version"], env!("CARGO_PKG_VERSION"));
    assert!(status["broker"]["ready"].is_u64());
}

#[test]
fn an_invalid_job_lists_every_problem_and_stores_nothing() {
    let server = start();
    let before = server.store.index();
    let job = json!({"id": "Bad Job", "priority": 0, "group": []});
    let answer = server.post("/v1/jobs", &json!({ "job": job }));
    assert_eq!(answer.status, 400);
    assert!(answer.index.is_some());
    let error = answer.error();
    assert_eq!(error.code, "invalid_job");
    assert_eq!(error.message, "job Bad Job has 3 problems");
    let fields: Vec<&str> = error.details.iter().map(|p| p.field.as_str()).collect();
    assert_eq!(fields, ["id", "priority", "group"]);
    assert!(error.details.iter().all(|p| !p.message.is_empty()));

    assert_eq!(server.store.index(), before);
    assert_eq!(server.get("/v1/jobs").ok().json(), json!([]));
    assert_eq!(server.get("/v1/evaluations").ok().json(), json!([]));
    assert_eq!(server.get("/v1/job/Bad%20Job").status, 404);
}

#[test]
fn a_body_that_does_not_parse_says_what_and_where() {
    let server = start();
    let mut job = web_job(1);
    job["group"][0]["task"][0]["resources"] = json!({"cpu": 100, "memroy": 256});
    let error = server.post("/v1/jobs", &json!({ "job": job })).error();
    assert_eq!(error.code, "bad_request");
    assert!(
        error
            .message
            .contains("at job.group[0].task[0].resources.memroy (line 1, column"),
        "{}",
        error.message
    );
    assert!(
        error
            .message
            .contains("unknown field `memroy`, expected one of"),
        "{}",
        error.message
    );
    let problem = &error.details[0];
    assert_eq!(problem.field, "job.group[0].task[0].resources.memroy");
    assert_eq!(problem.line, Some(1));
    assert!(problem.column.unwrap() > 0);

    // A wrong type, on the second line of the body.
    let text = "{\"job\": {\"id\": \"web\",\n \"priority\": \"high\", \"group\": []}}";
    let answer = server.post_raw("/v1/jobs", Some("application/json"), text.as_bytes());
    assert_eq!(answer.status, 400);
    let error = answer.error();
    assert_eq!(error.details[0].field, "job.priority");
    assert_eq!(error.details[0].line, Some(2));
    assert!(
        error.details[0]
            .message
            .starts_with("invalid type: string \"high\"")
    );

    // Not JSON at all.
    let error = server
        .post_raw("/v1/nodes", Some("application/json"), b"{\"id\": ")
        .error();
    assert_eq!(error.code, "bad_request");
    assert!(
        error.message.starts_with("the Node body ends early"),
        "{}",
        error.message
    );
}

#[test]
fn a_huge_body_is_refused_and_the_server_keeps_serving() {
    let server = start();
    let mut job = web_job(1);
    // Large enough that the client is still sending when the server has
    // seen enough to refuse it.
    job["meta"] = json!({ "blob": "x".repeat(64 * MAX_BODY) });
    let answer = server.post("/v1/jobs", &json!({ "job": job }));
    assert_eq!(answer.status, 413, "{}", answer.body);
    let error = answer.error();
    assert_eq!(error.code, "body_too_large");
    assert!(
        error.message.contains(&MAX_BODY.to_string()),
        "{}",
        error.message
    );
    assert!(answer.index.is_some());

    server.get("/v1/status").ok();
    server.register(web_job(1));
    assert_eq!(
        server.get("/v1/jobs").ok().json().as_array().unwrap().len(),
        1
    );
}

#[test]
fn a_body_not_sent_as_json_is_415() {
    let server = start();
    let body = serde_json::to_vec(&json!({ "job": web_job(1) })).unwrap();
    for content_type in [
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
        None,
    ] {
        let answer = server.post_raw("/v1/jobs", content_type, &body);
        assert_eq!(answer.status, 415, "{content_type:?}: {}", answer.body);
        let error = answer.error();
        assert_eq!(error.code, "unsupported_media_type");
        assert!(
            error.message.contains("application/json"),
            "{}",
            error.message
        );
    }
    assert_eq!(server.get("/v1/jobs").ok().json(), json!([]));
    // A charset parameter is fine.
    let answer = server.post_raw("/v1/jobs", Some("application/json; charset=utf-8"), &body);
    assert_eq!(answer.status, 200, "{}", answer.body);
}

#[test]
fn not_found_is_json_everywhere() {
    let server = start();
    for path in [
        "/v1/nope",
        "/nope",
        "/v1/job/missing",
        "/v1/job/missing/versions",
        "/v1/job/missing/allocations",
        "/v1/job/missing/evaluations",
        "/v1/node/missing",
        "/v1/node/missing/allocations",
        "/v1/evaluation/missing",
        "/v1/allocation/missing",
    ] {
        let answer = server.get(path);
        assert_eq!(answer.status, 404, "{path}: {}", answer.body);
        assert!(answer.index.is_some(), "{path}");
        assert_eq!(answer.error().code, "not_found", "{path}");
    }
    let error = server.get("/v1/nope").error();
    assert!(
        error.message.contains("no route GET /v1/nope"),
        "{}",
        error.message
    );
    assert_eq!(server.delete("/v1/job/missing").status, 404);

    // A known route with the wrong method is a JSON 405.
    let answer = server.delete("/v1/jobs");
    assert_eq!(answer.status, 405);
    let error = answer.error();
    assert_eq!(error.code, "method_not_allowed");
    assert!(error.message.contains("GET, POST"), "{}", error.message);

    // An unknown query parameter is named rather than ignored.
    let answer = server.get("/v1/allocations?jobs=web");
    assert_eq!(answer.status, 400);
    assert!(
        answer
            .error()
            .message
            .contains("unknown query parameter jobs")
    );
}

#[test]
fn node_register_marks_it_ready() {
    let server = start();
    let mut body = node_body("0f3c9a1e-node");
    body["status"] = json!("down");
    let answer = server.post("/v1/nodes", &body).ok();
    let index = answer.json()["index"].as_u64().unwrap();
    assert_eq!(answer.index, Some(index));

    let node = server.get("/v1/node/0f3c9a1e-node").ok().json();
    assert_eq!(node["status"], "ready");
    assert_eq!(node["eligibility"], "eligible");
    assert_eq!(node["create_index"].as_u64(), Some(index));
    // By prefix, too.
    assert_eq!(
        server.get("/v1/node/0f3c").ok().json()["id"],
        "0f3c9a1e-node"
    );

    // Registering again updates it.
    let mut body = node_body("0f3c9a1e-node");
    body["resources"]["cpu"] = json!(8000);
    server.post("/v1/nodes", &body).ok();
    let nodes = server.get("/v1/nodes").ok().json();
    assert_eq!(nodes.as_array().unwrap().len(), 1);
    assert_eq!(nodes[0]["resources"]["cpu"], 8000);
    assert_eq!(nodes[0]["create_index"].as_u64(), Some(index));
    assert_eq!(server.get("/v1/status").ok().json()["nodes"], 1);

    // The same again changes nothing: no write, the index stays.
    let before = server.store.index();
    server.post("/v1/nodes", &body).ok();
    assert_eq!(server.store.index(), before);

    // A node that could never run anything, said field by field.
    let error = server.post("/v1/nodes", &node_body("")).error();
    assert_eq!(error.code, "invalid_node");
    let mut bad = node_body("a/b");
    bad["resources"]["memory"] = json!(0);
    let error = server.post("/v1/nodes", &bad).error();
    let fields: Vec<&str> = error.details.iter().map(|p| p.field.as_str()).collect();
    assert_eq!(fields, ["id", "resources"], "{error:?}");
    assert_eq!(server.get("/v1/status").ok().json()["nodes"], 1);
}

#[test]
fn stop_a_job() {
    let server = start();
    server.register(web_job(1));
    let answer = server.delete("/v1/job/web").ok();
    let body = answer.json();
    let eval_id = body["eval_id"].as_str().unwrap();
    assert_eq!(answer.index, body["index"].as_u64());

    let job = server.get("/v1/job/web").ok().json();
    assert_eq!(job["stop"], true);
    let summary = server.get("/v1/jobs").ok().json();
    assert_eq!(summary[0]["status"], "dead");
    assert_eq!(summary[0]["stop"], true);
    let evals = server.get("/v1/evaluations?job=web").ok().json();
    assert_eq!(evals[0]["id"].as_str(), Some(eval_id), "newest first");
    assert_eq!(evals[0]["triggered_by"], "job-deregister");
    assert_eq!(evals.as_array().unwrap().len(), 2);

    // Registering it again starts it again as a new version.
    let again = server.register(web_job(1));
    assert_eq!(again["job_version"], 1);
    assert_eq!(server.get("/v1/job/web").ok().json()["stop"], Value::Null);
}

#[test]
fn versions_newest_first_and_enforce_index() {
    let server = start();
    let first = server.register(web_job(1));
    server.register(web_job(2));
    server.register(web_job(3));
    let versions = server.get("/v1/job/web/versions").ok().json();
    let listed: Vec<(u64, u64)> = versions
        .as_array()
        .unwrap()
        .iter()
        .map(|j| {
            (
                j["version"].as_u64().unwrap(),
                j["group"][0]["count"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(listed, [(2, 3), (1, 2), (0, 1)]);

    // enforce_index that is stale: 409, nothing written.
    let stale = first["job_modify_index"].as_u64().unwrap();
    let before = server.store.index();
    let answer = server.post(
        "/v1/jobs",
        &json!({"job": web_job(4), "enforce_index": stale}),
    );
    assert_eq!(answer.status, 409, "{}", answer.body);
    assert_eq!(answer.error().code, "conflict");
    assert_eq!(server.store.index(), before);
    // And 0 means "must not exist yet".
    let answer = server.post("/v1/jobs", &json!({"job": web_job(4), "enforce_index": 0}));
    assert_eq!(answer.status, 409);
    let current = server.get("/v1/job/web").ok().json()["modify_index"].clone();
    let ok = server.register_with_index(web_job(4), current.as_u64().unwrap());
    assert_eq!(ok["job_version"], 3);
}

impl Server {
    fn register_with_index(&self, job: Value, index: u64) -> Value {
        self.post("/v1/jobs", &json!({"job": job, "enforce_index": index}))
            .ok()
            .json()
    }
}

#[test]
fn allocation_status_updates_and_reads() {
    let server = start();
    let (a, b) = with_allocations(&server);

    let allocs = server.get("/v1/job/web/allocations").ok().json();
    let names: Vec<&str> = allocs
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["web.front[0]", "web.front[1]"]);
    assert_eq!(
        server
            .get("/v1/node/node-1234/allocations")
            .ok()
            .json()
            .as_array()
            .unwrap()
            .len(),
        2
    );
    assert_eq!(
        server
            .get("/v1/allocations?node=node-1234&job=web")
            .ok()
            .json()
            .as_array()
            .unwrap()
            .len(),
        2
    );
    assert_eq!(
        server.get("/v1/allocations?job=other").ok().json(),
        json!([])
    );
    assert_eq!(server.get("/v1/allocations?node=nowhere").status, 404);
    assert_eq!(server.get("/v1/status").ok().json()["allocations"], 2);

    let answer = server
        .post(
            "/v1/allocations/status",
            &json!({"updates": [
                {"alloc_id": a, "client_status": "running", "description": "started"},
                {"alloc_id": b, "client_status": "running"}
            ]}),
        )
        .ok();
    let index = answer.json()["index"].as_u64().unwrap();
    assert_eq!(answer.index, Some(index));

    let detail = server.get(&format!("/v1/allocation/{a}")).ok().json();
    assert_eq!(detail["client_status"], "running");
    assert_eq!(detail["client_description"], "started");
    assert_eq!(detail["modify_index"].as_u64(), Some(index));
    assert!(detail.get("decision").is_none());
    let verbose = server
        .get(&format!("/v1/allocation/{a}?verbose=true"))
        .ok()
        .json();
    assert_eq!(verbose["decision"]["candidates"], json!(["node-1234"]));
    assert_eq!(verbose["decision"]["scorer_digest"], "native:binpack");
    assert_eq!(server.get("/v1/jobs").ok().json()[0]["status"], "running");
    assert_eq!(
        server.get("/v1/jobs").ok().json()[0]["allocs"]["running"],
        2
    );

    // An allocation that does not exist: 404, nothing changed.
    let before = server.store.index();
    let answer = server.post(
        "/v1/allocations/status",
        &json!({"updates": [{"alloc_id": "nope", "client_status": "failed"}]}),
    );
    assert_eq!(answer.status, 404);
    assert_eq!(server.store.index(), before);
    // A status that is not one.
    let error = server
        .post(
            "/v1/allocations/status",
            &json!({"updates": [{"alloc_id": a, "client_status": "exploded"}]}),
        )
        .error();
    assert_eq!(error.details[0].field, "updates[0].client_status");
    assert!(
        error.message.contains("unknown variant `exploded`"),
        "{}",
        error.message
    );
}

#[test]
fn id_prefixes_and_ambiguous_ones() {
    let server = start();
    let (a, b) = with_allocations(&server);
    let found = server.get("/v1/allocation/aaaa1").ok().json();
    assert_eq!(found["id"].as_str(), Some(a.as_str()));

    let answer = server.get("/v1/allocation/aaaa");
    assert_eq!(answer.status, 400);
    let error = answer.error();
    assert_eq!(error.code, "bad_request");
    assert!(
        error.message.contains(&a) && error.message.contains(&b),
        "{}",
        error.message
    );

    // Too short to be a prefix: only an exact id would do.
    let answer = server.get("/v1/allocation/aaa");
    assert_eq!(answer.status, 404);
    assert!(answer.error().message.contains("at least 4 characters"));

    let eval_id = server.get("/v1/evaluations").ok().json()[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let eval = server
        .get(&format!("/v1/evaluation/{}", &eval_id[..8]))
        .ok()
        .json();
    assert_eq!(eval["id"].as_str(), Some(eval_id.as_str()));
    assert_eq!(server.get("/v1/node/node").ok().json()["id"], "node-1234");
}

#[test]
fn evaluation_detail_names_what_it_placed() {
    let server = start();
    let (a, b) = with_allocations(&server);
    // The test's plan names the evaluation "eval-by-test"; write it so the
    // detail can be read.
    let mut eval: orch_model::Evaluation =
        serde_json::from_value(server.get("/v1/evaluations").ok().json()[0].clone()).unwrap();
    eval.id = "eval-by-test".into();
    server.store.apply(Op::UpsertEvals(vec![eval])).unwrap();
    let detail = server.get("/v1/evaluation/eval-by-test").ok().json();
    assert_eq!(detail["placed"], json!([a, b]));
}

#[test]
fn a_blocking_query_returns_when_a_change_lands() {
    let server = Arc::new(start());
    server.register(web_job(1));
    let current = server.get("/v1/jobs").ok().index.unwrap();

    let waiter = {
        let server = server.clone();
        std::thread::spawn(move || {
            let started = Instant::now();
            let answer = server.get(&format!("/v1/jobs?index={current}&wait=30s"));
            (answer, started.elapsed())
        })
    };
    std::thread::sleep(Duration::from_millis(300));
    assert!(!waiter.is_finished(), "returned before any change");
    let mut other = web_job(1);
    other["id"] = json!("api");
    let registered = server.register(other);
    let (answer, took) = waiter.join().unwrap();
    let answer = answer.ok();
    assert!(took < Duration::from_secs(10), "took {took:?}");
    assert!(took >= Duration::from_millis(250), "took {took:?}");
    assert!(answer.index.unwrap() > current);
    assert_eq!(answer.index, registered["index"].as_u64());
    assert_eq!(answer.json().as_array().unwrap().len(), 2);
}

#[test]
fn a_blocking_query_returns_at_the_wait_when_nothing_changes() {
    let server = start();
    server.register(web_job(1));
    let current = server.store.index();
    let started = Instant::now();
    let answer = server
        .get(&format!("/v1/job/web?index={current}&wait=400ms"))
        .ok();
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(400), "took {took:?}");
    assert!(took < Duration::from_secs(5), "took {took:?}");
    assert_eq!(answer.index, Some(current));
    // An index already passed answers at once.
    let started = Instant::now();
    server
        .get(&format!("/v1/job/web?index={}&wait=30s", current - 1))
        .ok();
    assert!(started.elapsed() < Duration::from_secs(5));
    // A wait that is not a duration.
    let answer = server.get(&format!("/v1/jobs?index={current}&wait=forever"));
    assert_eq!(answer.status, 400);
    assert!(
        answer
            .error()
            .message
            .starts_with("wait: \"forever\" is not a duration")
    );
}

#[test]
fn every_answer_carries_the_index() {
    let server = start();
    let index = server.register(web_job(1))["index"].as_u64().unwrap();
    for path in [
        "/v1/status",
        "/v1/jobs",
        "/v1/job/web",
        "/v1/job/web/versions",
        "/v1/job/web/allocations",
        "/v1/job/web/evaluations",
        "/v1/nodes",
        "/v1/evaluations",
        "/v1/allocations",
        "/v1/openapi.json",
        "/v1/metrics",
        "/v1/nothing-here",
    ] {
        assert_eq!(server.get(path).index, Some(index), "{path}");
    }
}

#[test]
fn openapi_lists_every_route_served() {
    let server = start();
    let answer = server.get("/v1/openapi.json").ok();
    assert!(answer.content_type.starts_with("application/json"));
    let spec = answer.json();
    assert_eq!(spec["openapi"], "3.1.0");
    let documented: BTreeSet<(String, String)> = spec["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, item)| {
            item.as_object()
                .unwrap()
                .keys()
                .filter(|k| *k != "parameters")
                .map(move |m| (m.to_uppercase(), path.clone()))
        })
        .collect();
    let served: BTreeSet<(String, String)> = routes()
        .into_iter()
        .map(|r| (r.method.to_string(), r.path.to_owned()))
        .collect();
    assert_eq!(documented, served);
    // And each of them is really served: no route answers "no route".
    for (method, path) in &served {
        let path = path
            .replace("{id}", "x")
            .replace("{task}", "t")
            .replace("{node}", "n");
        let answer = match method.as_str() {
            "GET" => server.get(&path),
            "DELETE" => server.delete(&path),
            _ => server.post(&path, &json!({})),
        };
        if answer.status == 404 {
            assert!(
                !answer.error().message.starts_with("no route"),
                "{method} {path}"
            );
        }
        assert_ne!(answer.status, 405, "{method} {path}");
    }
}

#[test]
fn metrics_are_prometheus_text_and_unknown_parameters_a_json_400() {
    let server = start();
    server.post("/v1/nodes", &node_body("node-1234")).ok();
    server.register(web_job(2));
    // A dry run calls the scorer: the call is timed, no placement counted.
    server
        .post("/v1/job/web/plan", &json!({ "job": web_job(1) }))
        .ok();
    let answer = server.get("/v1/metrics").ok();
    assert_eq!(
        answer.content_type,
        "text/plain; version=0.0.4; charset=utf-8"
    );
    assert_eq!(answer.index, Some(server.store.index()));
    let text = &answer.body;
    for line in [
        "orch_nodes{status=\"ready\"} 1",
        // No workers here: the job's evaluation waits.
        "orch_evaluations{status=\"pending\"} 1",
        "orch_scorer_call_duration_seconds_count{scorer=\"binpack\",role=\"primary\"} 1",
        "orch_scorer_decisions_total{scorer=\"binpack\",role=\"primary\"} 0",
        "# TYPE orch_store_commit_duration_seconds histogram",
    ] {
        assert!(text.lines().any(|l| l == line), "no {line:?} in\n{text}");
    }
    let refused = server.get("/v1/metrics?format=json");
    assert_eq!(refused.status, 400);
    assert_eq!(
        refused.error().message,
        "unknown query parameter format; see /v1/openapi.json for what this route takes"
    );
}

#[test]
fn plan_checks_the_job_before_the_scheduler() {
    let server = start();
    let answer = server.post(
        "/v1/job/web/plan",
        &json!({"job": {"id": "web", "group": []}}),
    );
    assert_eq!(answer.status, 400);
    assert_eq!(answer.error().code, "invalid_job");
    let answer = server.post("/v1/job/other/plan", &json!({ "job": web_job(1) }));
    assert_eq!(answer.status, 400);
    assert!(
        answer
            .error()
            .message
            .contains("the path names job \"other\"")
    );
    assert_eq!(server.get("/v1/jobs").ok().json(), json!([]));
}

// Needs Scheduler::dry_run, which the lead is building on main; on this
// branch it returns "the scheduler is not built yet" and the plan is a 400.
// The diff itself is tested in the api::diff unit tests.
#[test]
fn plan_shows_the_diff_and_the_placements() {
    let server = start();
    server.post("/v1/nodes", &node_body("node-1234")).ok();
    let answer = server
        .post("/v1/job/web/plan", &json!({ "job": web_job(2) }))
        .ok();
    let plan = answer.json();
    assert_eq!(plan["diff_type"], "create");
    assert_eq!(plan["job_modify_index"], 0);
    assert_eq!(plan["placements"].as_array().unwrap().len(), 2);
    assert_eq!(plan["placements"][0]["node_id"], "node-1234");

    server.register(web_job(2));
    let plan = server
        .post("/v1/job/web/plan", &json!({ "job": web_job(2) }))
        .ok()
        .json();
    assert_eq!(plan["diff_type"], "none");
    assert_eq!(plan["diff"], json!([]));
    let plan = server
        .post("/v1/job/web/plan", &json!({ "job": web_job(3) }))
        .ok()
        .json();
    assert_eq!(plan["diff_type"], "edit");
    assert_eq!(
        plan["diff"],
        json!([{"kind": "edited", "field": "group[front].count", "old": "2", "new": "3"}])
    );
    assert_eq!(plan["groups"][0]["name"], "front");
}

#[test]
fn a_status_batch_applies_what_it_can_and_refuses_what_is_not_the_agents_to_say() {
    let server = start();
    let (a, _) = with_allocations(&server);
    let answer = server
        .post(
            "/v1/allocations/status",
            &json!({"updates": [
                {"alloc_id": a, "client_status": "running"},
                {"alloc_id": "gone-long-ago", "client_status": "running"},
            ]}),
        )
        .ok();
    assert_eq!(answer.json()["unknown"], json!(["gone-long-ago"]));
    let alloc = server.get(&format!("/v1/allocation/{a}")).ok().json();
    assert_eq!(alloc["client_status"], "running");

    // Back to pending: a late report, ignored.
    server
        .post(
            "/v1/allocations/status",
            &json!({"updates": [{"alloc_id": a, "client_status": "pending"}]}),
        )
        .ok();
    let alloc = server.get(&format!("/v1/allocation/{a}")).ok().json();
    assert_eq!(alloc["client_status"], "running");

    // Lost is the server's word, not the agent's.
    let error = server
        .post(
            "/v1/allocations/status",
            &json!({"updates": [{"alloc_id": a, "client_status": "lost"}]}),
        )
        .error();
    assert_eq!(error.details[0].field, "updates[0].client_status");
    let alloc = server.get(&format!("/v1/allocation/{a}")).ok().json();
    assert_eq!(alloc["client_status"], "running");
}

#[test]
fn plans_beyond_the_dry_run_limit_are_told_to_come_back() {
    let server = start();
    server.post("/v1/nodes", &node_body("node-1234")).ok();
    let held = server
        .dry_runs
        .clone()
        .try_acquire_many_owned(ApiContext::DRY_RUNS as u32)
        .unwrap();
    let answer = server.post("/v1/job/web/plan", &json!({"job": web_job(1)}));
    assert_eq!(answer.status, 503);
    assert_eq!(answer.error().code, "busy");
    drop(held);
    server
        .post("/v1/job/web/plan", &json!({"job": web_job(1)}))
        .ok();
}

/// A status report with the task `server` of group `front` in `state`.
fn with_tasks(alloc: &str, status: &str, tasks: Value) -> Value {
    json!({"updates": [{"alloc_id": alloc, "client_status": status, "task_states": tasks}]})
}

#[test]
fn status_reports_carry_task_states_and_wrong_ones_are_refused_whole() {
    let server = start();
    let (a, b) = with_allocations(&server);
    let running = json!({"server": {
        "state": "running", "started_at_ms": 1000,
        "events": [{"type": "received", "time_ms": 900}, {"type": "started", "time_ms": 1000}]
    }});
    server
        .post(
            "/v1/allocations/status",
            &with_tasks(&a, "running", running.clone()),
        )
        .ok();
    let alloc = server.get(&format!("/v1/allocation/{a}")).ok().json();
    assert_eq!(alloc["client_status"], "running");
    assert_eq!(
        alloc["task_states"],
        json!({"server": {
            "state": "running", "failed": false, "restarts": 0, "started_at_ms": 1000,
            "finished_at_ms": 0,
            "events": [{"type": "received", "time_ms": 900}, {"type": "started", "time_ms": 1000}]
        }})
    );

    // The OpenAPI document describes what came back.
    let spec: Value = serde_json::from_str(orch_wire::OPENAPI_JSON).unwrap();
    let described = |schema: &str, value: &Value| {
        for key in value.as_object().unwrap().keys() {
            assert!(
                spec["components"]["schemas"][schema]["properties"][key].is_object(),
                "{schema}.{key} is not in openapi.json"
            );
        }
    };
    described("Allocation", &alloc);
    described("TaskState", &alloc["task_states"]["server"]);
    described("TaskEvent", &alloc["task_states"]["server"]["events"][0]);

    // Restarted in place: the same status, new task states; they land.
    let before = alloc["modify_index"].as_u64().unwrap();
    let restarted = json!({"server": {
        "state": "running", "restarts": 1, "started_at_ms": 3000,
        "events": [{"type": "terminated", "time_ms": 2000, "exit_code": 1},
                   {"type": "restarting", "time_ms": 2001, "message": "restarting in 1s"},
                   {"type": "started", "time_ms": 3000}]
    }});
    let answer = server
        .post(
            "/v1/allocations/status",
            &with_tasks(&a, "running", restarted),
        )
        .ok();
    let alloc = server.get(&format!("/v1/allocation/{a}")).ok().json();
    assert!(alloc["modify_index"].as_u64().unwrap() > before);
    assert_eq!(alloc["modify_index"], answer.json()["index"]);
    assert_eq!(alloc["task_states"]["server"]["restarts"], 1);
    assert_eq!(alloc["task_states"]["server"]["events"][0]["exit_code"], 1);

    // Wrong reports: a task the group does not have, too many events, a
    // message too long. Every problem is named, and nothing of the batch
    // is applied, not even its good update.
    let index = server.store.index();
    let event = json!({"type": "started", "time_ms": 1});
    let many: Vec<Value> = (0..11).map(|_| event.clone()).collect();
    let long = "x".repeat(5000);
    let answer = server.post(
        "/v1/allocations/status",
        &json!({"updates": [
            {"alloc_id": b, "client_status": "running"},
            {"alloc_id": a, "client_status": "running", "task_states": {
                "nope": {"state": "running"},
                "server": {"state": "running", "events": many},
            }},
            {"alloc_id": b, "client_status": "running", "description": long.clone(),
             "task_states": {"server": {"state": "dead", "events": [
                {"type": "terminated", "time_ms": 5, "message": long}]}}},
        ]}),
    );
    assert_eq!(answer.status, 400, "{}", answer.body);
    let error = answer.error();
    assert!(error.message.contains("4 problems"), "{}", error.message);
    let fields: Vec<&str> = error.details.iter().map(|p| p.field.as_str()).collect();
    assert_eq!(
        fields,
        [
            "updates[1].task_states.nope",
            "updates[1].task_states.server.events",
            "updates[2].description",
            "updates[2].task_states.server.events[0].message",
        ]
    );
    assert!(error.details[0].message.contains("has no task \"nope\""));
    assert_eq!(
        error.details[0].hint.as_deref(),
        Some("its tasks are: server")
    );
    assert!(error.details[1].message.contains("11 events; at most 10"));
    assert!(error.details[2].message.contains("5000 bytes"));
    assert_eq!(server.store.index(), index);
    let b_now = server.get(&format!("/v1/allocation/{b}")).ok().json();
    assert_eq!(b_now["client_status"], "pending");

    // A task state that is not one.
    let error = server
        .post(
            "/v1/allocations/status",
            &with_tasks(&a, "running", json!({"server": {"state": "sleeping"}})),
        )
        .error();
    assert!(
        error.message.contains("unknown variant `sleeping`"),
        "{}",
        error.message
    );
}

#[test]
fn a_job_version_is_read_by_number() {
    let server = start();
    server.register(web_job(1));
    server.register(web_job(3));
    let v0 = server.get("/v1/job/web?version=0").ok().json();
    assert_eq!(
        (v0["version"].as_u64(), v0["group"][0]["count"].as_u64()),
        (Some(0), Some(1))
    );
    let v1 = server.get("/v1/job/web?version=1").ok().json();
    assert_eq!(v1, server.get("/v1/job/web").ok().json());
    assert_eq!(v1["group"][0]["count"], 3);

    let answer = server.get("/v1/job/web?version=7");
    assert_eq!(answer.status, 404);
    let message = answer.error().message;
    assert!(
        message.contains("job \"web\" has no version 7"),
        "{message}"
    );
    assert!(message.contains("0 to 1"), "{message}");
    let answer = server.get("/v1/job/web?version=latest");
    assert_eq!(answer.status, 400);
    assert!(
        answer
            .error()
            .message
            .starts_with("version must be a whole number")
    );
    assert_eq!(server.get("/v1/job/nope?version=0").status, 404);
}

#[test]
fn drain_and_eligibility_change_the_node_and_name_the_evaluations() {
    let server = start();
    let (a, _) = with_allocations(&server);
    // By a prefix, as every node route takes.
    let answer = server
        .post("/v1/node/node-12/drain", &json!({"enable": true}))
        .ok();
    let body = answer.json();
    assert_eq!(answer.index, body["index"].as_u64());
    let evals = body["eval_ids"].as_array().unwrap();
    assert_eq!(evals.len(), 1, "one job runs there: {body}");
    let eval = server
        .get(&format!("/v1/evaluation/{}", evals[0].as_str().unwrap()))
        .ok()
        .json();
    assert_eq!(eval["triggered_by"], "node-drain");
    assert_eq!(eval["job_id"], "web");
    assert_eq!(eval["node_id"], "node-1234");
    let node = server.get("/v1/node/node-1234").ok().json();
    assert_eq!(
        (node["drain"].as_bool(), node["eligibility"].as_str()),
        (Some(true), Some("ineligible"))
    );
    // The allocations stay until the scheduler moves them (no workers here).
    assert_eq!(
        server.get(&format!("/v1/allocation/{a}")).ok().json()["desired_status"],
        "run"
    );

    let body = server
        .post("/v1/node/node-1234/drain", &json!({"enable": false}))
        .ok()
        .json();
    assert_eq!(body["eval_ids"], json!([]));
    let node = server.get("/v1/node/node-1234").ok().json();
    assert_eq!(
        (node["drain"].as_bool(), node["eligibility"].as_str()),
        (Some(false), Some("eligible"))
    );

    let body = server
        .post(
            "/v1/node/node-1234/eligibility",
            &json!({"eligible": false}),
        )
        .ok()
        .json();
    assert_eq!(body["eval_ids"], json!([]));
    assert_eq!(
        server.get("/v1/node/node-1234").ok().json()["eligibility"],
        "ineligible"
    );
    server
        .post("/v1/node/node-1234/eligibility", &json!({"eligible": true}))
        .ok();
    assert_eq!(
        server.get("/v1/node/node-1234").ok().json()["eligibility"],
        "eligible"
    );

    // What is wrong is said.
    let answer = server.post("/v1/node/nowhere/drain", &json!({"enable": true}));
    assert_eq!(answer.status, 404);
    assert!(
        answer
            .error()
            .message
            .contains("node \"nowhere\" not found")
    );
    let error = server
        .post("/v1/node/node-1234/drain", &json!({"enable": "yes"}))
        .error();
    assert_eq!(error.details[0].field, "enable");
    let error = server
        .post("/v1/node/node-1234/eligibility", &json!({"enable": true}))
        .error();
    assert!(
        error.message.contains("unknown field `enable`"),
        "{}",
        error.message
    );
}

/// Registers node-1234 again with `http_addr` (what an agent would do).
fn point_at(server: &Server, http_addr: &str) -> Answer {
    let mut body = node_body("node-1234");
    body["http_addr"] = json!(http_addr);
    server.post("/v1/nodes", &body)
}

#[test]
fn logs_are_read_from_the_nodes_agent_and_passed_through() {
    let server = start();
    let (a, _) = with_allocations(&server);
    let agent = FakeAgent::start(b"hello from the task\n");
    point_at(&server, &agent.addr).ok();

    let answer = server.get(&format!(
        "/v1/allocation/{}/logs/server?type=stderr&file=0&offset=6",
        &a[..6]
    ));
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.body, "from the");
    assert_eq!(answer.content_type, "application/octet-stream");
    assert!(answer.index.is_some());
    assert_eq!(
        agent.seen(),
        [format!(
            "/v1/agent/logs/{a}/server?type=stderr&file=0&offset=6"
        )],
        "the full allocation id, the stream and the cursor are sent on"
    );
    // The cursor comes back as the agent said it.
    let response = server
        .agent
        .get(format!("{}/v1/allocation/{a}/logs/server", server.base))
        .call()
        .unwrap();
    assert_eq!(response.headers()["x-orch-log-file"], "0");
    assert_eq!(response.headers()["x-orch-log-offset"], "8");
    assert_eq!(
        agent.seen()[1],
        format!("/v1/agent/logs/{a}/server?type=stdout")
    );

    // The agent's own not-found is relayed, saying who said it.
    agent.log.lock().unwrap().not_found = Some("allocation not started here yet".into());
    let answer = server.get(&format!("/v1/allocation/{a}/logs/server"));
    assert_eq!(answer.status, 404);
    let message = answer.error().message;
    assert!(
        message.contains("the agent of node host-node-1234 (node-1234)"),
        "{message}"
    );
    assert!(
        message.contains("allocation not started here yet"),
        "{message}"
    );
}

#[test]
fn logs_say_what_is_wrong_before_and_after_asking_the_agent() {
    let server = start();
    let (a, _) = with_allocations(&server);

    // A task the group does not have: 400 listing them.
    let answer = server.get(&format!("/v1/allocation/{a}/logs/web"));
    assert_eq!(answer.status, 400);
    let message = answer.error().message;
    assert!(
        message.contains("has no task \"web\"; its tasks are: server"),
        "{message}"
    );
    // Parameters.
    let answer = server.get(&format!("/v1/allocation/{a}/logs/server?type=stdin"));
    assert_eq!(answer.status, 400);
    assert!(answer.error().message.contains("stdout or stderr"));
    let answer = server.get(&format!("/v1/allocation/{a}/logs/server?offset=-1"));
    assert_eq!(answer.status, 400);
    assert!(
        answer
            .error()
            .message
            .starts_with("offset must be a whole number")
    );
    assert_eq!(server.get("/v1/allocation/nope/logs/server").status, 404);

    // The node registered without an agent address: 409.
    let answer = server.get(&format!("/v1/allocation/{a}/logs/server"));
    assert_eq!(answer.status, 409);
    let error = answer.error();
    assert_eq!(error.code, "conflict");
    assert!(
        error
            .message
            .contains("node host-node-1234 (node-1234) has no agent to read logs from"),
        "{}",
        error.message
    );

    // An address nothing answers at: 502 naming the node and the address.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", l.local_addr().unwrap())
    };
    point_at(&server, &closed).ok();
    let answer = server.get(&format!("/v1/allocation/{a}/logs/server"));
    assert_eq!(answer.status, 502);
    let error = answer.error();
    assert_eq!(error.code, "agent_unreachable");
    assert!(
        error.message.contains("node host-node-1234 (node-1234)"),
        "{}",
        error.message
    );
    assert!(error.message.contains(&closed), "{}", error.message);

    // Something that is not an address is refused when the node registers.
    let answer = point_at(&server, "10.0.0.5:4647/logs");
    assert_eq!(answer.status, 400);
    assert_eq!(answer.error().details[0].field, "http_addr");
}
