//! `orch job|node|eval|alloc` as a user runs them: the real binary, its
//! output and exit codes. The server side is a canned HTTP responder on
//! 127.0.0.1 (the real server's end-to-end test lives elsewhere): it checks
//! what the client sends and how it follows an evaluation, not scheduling.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests may

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};

fn orch(args: &[&str], addr: Option<&str>) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_orch"));
    cmd.args(args).env_remove("ORCH_ADDR");
    if let Some(a) = addr {
        cmd.env("ORCH_ADDR", a);
    }
    cmd.output().unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// An address nothing listens on: bind a port, then let it go.
fn closed_address() -> String {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    drop(l);
    format!("http://127.0.0.1:{port}")
}

const GOOD_JOB: &str = r#"id = "web"

[[group]]
name = "frontend"
count = 3

[[group.task]]
name = "server"
driver = "exec"
config = { command = "/usr/bin/server" }
"#;

fn write_job(dir: &Path, text: &str) -> String {
    let path = dir.join("web.toml");
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_owned()
}

// ---- a canned server ----------------------------------------------------------

/// One request as the server saw it: method, path with query, body.
type Seen = Arc<Mutex<Vec<(String, String, String)>>>;

/// Answers with `route(method, path_and_query, nth request of that path
/// whatever its query)`
/// → (status, body), each on its own connection.
fn serve(route: impl Fn(&str, &str, usize) -> (u16, String) + Send + 'static) -> (String, Seen) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = format!("http://{}", listener.local_addr().unwrap());
    let seen: Seen = Arc::default();
    let log = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { return };
            let (method, target, body) = read_request(&stream);
            let path = |t: &str| t.split('?').next().unwrap_or_default().to_owned();
            let nth = log
                .lock()
                .unwrap()
                .iter()
                .filter(|r| path(&r.1) == path(&target))
                .count();
            log.lock()
                .unwrap()
                .push((method.clone(), target.clone(), body));
            let (status, body) = route(&method, &target, nth);
            let mut stream = stream;
            let _ = write!(
                stream,
                "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\n\
                 x-orch-index: {}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                nth + 10,
                body.len()
            );
        }
    });
    (addr, seen)
}

fn read_request(stream: &TcpStream) -> (String, String, String) {
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or_default().to_owned();
    let target = parts.next().unwrap_or_default().to_owned();
    let mut length = 0;
    loop {
        let mut h = String::new();
        reader.read_line(&mut h).unwrap();
        if h.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':')
            && k.eq_ignore_ascii_case("content-length")
        {
            length = v.trim().parse().unwrap();
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).unwrap();
    (method, target, String::from_utf8(body).unwrap())
}

const EVAL_ID: &str = "e1e1e1e1-0000-4000-8000-000000000001";

fn eval_json(status: &str, failures: bool) -> String {
    let failed = if failures {
        r#", "failed_tg_allocs": {"frontend": {"nodes_evaluated": 3,
            "nodes_filtered": {"missing driver exec": 1}, "nodes_exhausted": 2,
            "dimension_exhausted": {"memory": 2}, "coalesced_failures": 0}},
            "queued_allocations": {"frontend": 1},
            "blocked_eval": "b10cked0-0000-4000-8000-000000000002""#
    } else {
        ""
    };
    format!(
        r#"{{"id": "{EVAL_ID}", "job_id": "web", "priority": 50,
            "triggered_by": "job-register", "status": "{status}" {failed},
            "placed": ["a0c0ffee-0000-4000-8000-000000000000"]}}"#
    )
}

const ALLOCS: &str = r#"[{"id": "a0c0ffee-0000-4000-8000-000000000000",
    "name": "web.frontend[0]", "job_id": "web", "job_version": 0, "group": "frontend",
    "index": 0, "node_id": "n1a2b3c4-0000-4000-8000-000000000001",
    "eval_id": "e1e1e1e1-0000-4000-8000-000000000001",
    "resources": {"cpu": 100, "memory": 300, "disk": 0}}]"#;

const NODES: &str = r#"[{"id": "n1a2b3c4-0000-4000-8000-000000000001", "name": "box-1",
    "resources": {"cpu": 4000, "memory": 8192, "disk": 10000}}]"#;

/// A server on which `web` registers, and its evaluation is pending once,
/// then finishes with (or without) placement failures.
fn run_server(failures: bool) -> (String, Seen) {
    serve(move |method, target, nth| {
        let path = target.split('?').next().unwrap_or_default();
        match (method, path) {
            ("POST", "/v1/jobs") => (
                200,
                format!(
                    r#"{{"eval_id": "{EVAL_ID}", "job_version": 0, "job_modify_index": 7,
                        "index": 7, "warnings": ["group[0]: a warning from the server"]}}"#
                ),
            ),
            ("GET", p) if p == format!("/v1/evaluation/{EVAL_ID}") => {
                if nth == 0 {
                    (200, eval_json("pending", false))
                } else {
                    (200, eval_json("complete", failures))
                }
            }
            ("GET", "/v1/allocations") => (200, ALLOCS.to_owned()),
            ("GET", "/v1/nodes") => (200, NODES.to_owned()),
            _ => (
                404,
                r#"{"code": "not_found", "message": "no such route"}"#.to_owned(),
            ),
        }
    })
}

// ---- tests ------------------------------------------------------------------------

#[test]
fn a_bad_job_file_is_shown_like_a_compiler_and_never_sent() {
    let dir = tempfile::tempdir().unwrap();
    let file = write_job(
        dir.path(),
        "id = \"web\"\n\n[[group]]\nname = \"frontend\"\ncuont = 3\n\n[[group.task]]\nname = \"server\"\ndriver = \"exec\"\n",
    );
    // A closed port: were anything sent, the error would say it cannot reach it.
    let out = orch(&["job", "run", &file], Some(&closed_address()));
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("error: group[0]: unknown field `cuont`"),
        "{err}"
    );
    assert!(err.contains(&format!("--> {file}:5:1")), "{err}");
    assert!(err.contains("5 | cuont = 3"), "{err}");
    assert!(err.contains("= help: did you mean `count`?"), "{err}");
    assert!(err.contains("nothing was sent to the server"), "{err}");
    assert!(!err.contains("cannot reach"), "{err}");
    assert!(stdout(&out).is_empty());

    let out = orch(&["job", "plan", &file], Some(&closed_address()));
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn an_unreachable_server_says_what_to_do_and_exits_2() {
    let addr = closed_address();
    for args in [
        vec!["job", "status"],
        vec!["node", "status"],
        vec!["eval", "status", "abcd"],
        vec!["alloc", "status", "abcd", "--verbose"],
    ] {
        let mut with_flag = args.clone();
        with_flag.extend(["--address", &addr]);
        let out = orch(&with_flag, None);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = stderr(&out);
        assert!(
            err.contains(&format!("cannot reach the orch server at {addr}: ")),
            "{args:?}: {err}"
        );
        assert!(
            err.contains("is `orch server` running? set ORCH_ADDR or --address"),
            "{err}"
        );
    }
    // ORCH_ADDR is read when --address is not given.
    let out = orch(&["job", "status"], Some(&addr));
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains(&addr), "{}", stderr(&out));
}

#[test]
fn an_https_address_is_refused_by_name() {
    let out = orch(
        &["job", "status", "--address", "https://orch.example:4646"],
        None,
    );
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.contains("plain http only"), "{err}");
    assert!(err.contains("https://orch.example:4646"), "{err}");
}

#[test]
fn run_follows_the_evaluation_and_exits_2_when_placement_failed() {
    let dir = tempfile::tempdir().unwrap();
    let file = write_job(dir.path(), GOOD_JOB);
    let (addr, seen) = run_server(true);
    let out = orch(&["job", "run", &file, "--check-index", "7"], Some(&addr));
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(2), "{text}{}", stderr(&out));
    assert!(
        stderr(&out).contains("warning: group[0]: a warning from the server"),
        "{}",
        stderr(&out)
    );
    assert!(
        text.starts_with("==> Monitoring evaluation \"e1e1e1e1\"\n"),
        "{text}"
    );
    assert!(
        text.contains(
            "Allocation \"a0c0ffee\" created: web.frontend[0] on node \"box-1\" (n1a2b3c4)"
        ),
        "{text}"
    );
    assert!(
        text.contains("finished with status \"complete\" but failed to place all allocations:"),
        "{text}"
    );
    assert!(text.contains("Task Group \"frontend\" (failed to place 1 allocation):"));
    assert!(text.contains("* 1 node excluded by filter: missing driver exec"));
    assert!(text.contains("* Dimension \"memory\" exhausted on 2 nodes"));
    assert!(text.contains("Evaluation \"b10cked0\" waiting for additional capacity"));

    let seen = seen.lock().unwrap();
    let (_, _, body) = seen.iter().find(|r| r.1 == "/v1/jobs").unwrap();
    let body: serde_json::Value = serde_json::from_str(body).unwrap();
    assert_eq!(body["enforce_index"], 7);
    assert_eq!(body["job"]["id"], "web");
    // The second look at the evaluation is a blocking query past the index
    // the first one was read at.
    let evals: Vec<&String> = seen
        .iter()
        .filter(|r| r.1.starts_with("/v1/evaluation/"))
        .map(|r| &r.1)
        .collect();
    assert_eq!(evals.len(), 2, "{evals:?}");
    assert!(!evals[0].contains("index="), "{}", evals[0]);
    assert!(evals[1].contains("index=10"), "{}", evals[1]);
    assert!(evals[1].contains("wait="), "{}", evals[1]);
}

#[test]
fn run_exits_0_when_everything_was_placed_and_json_is_the_servers() {
    let dir = tempfile::tempdir().unwrap();
    let file = write_job(dir.path(), GOOD_JOB);
    let (addr, _) = run_server(false);
    let out = orch(&["job", "run", &file], Some(&addr));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stdout(&out).ends_with("==> Evaluation \"e1e1e1e1\" finished with status \"complete\"\n")
    );

    let (addr, _) = run_server(false);
    let out = orch(&["job", "run", &file, "--json"], Some(&addr));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["status"], "complete");
    assert_eq!(v["placed"][0], "a0c0ffee-0000-4000-8000-000000000000");

    let (addr, seen) = run_server(false);
    let out = orch(&["job", "run", &file, "--detach"], Some(&addr));
    assert_eq!(out.status.code(), Some(0));
    assert!(stdout(&out).contains(&format!("Evaluation ID: {EVAL_ID}")));
    assert!(
        !seen
            .lock()
            .unwrap()
            .iter()
            .any(|r| r.1.contains("evaluation"))
    );
}

#[test]
fn api_errors_print_every_problem_and_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let file = write_job(dir.path(), GOOD_JOB);
    let (addr, _) = serve(|_, _, _| {
        (
            400,
            r#"{"code": "invalid_job", "message": "the job is invalid",
                "details": [{"field": "group[0].count", "message": "too many",
                             "hint": "at most 10", "line": 5, "column": 1},
                            {"field": "id", "message": "taken"}]}"#
                .to_owned(),
        )
    });
    let out = orch(&["job", "run", &file], Some(&addr));
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains("error: the job is invalid (invalid_job, HTTP 400)"),
        "{err}"
    );
    assert!(
        err.contains("  5:1: group[0].count: too many (at most 10)"),
        "{err}"
    );
    assert!(err.contains("  id: taken"), "{err}");

    // Not an orch server at all.
    let (addr, _) = serve(|_, _, _| (502, "<html>bad gateway</html>".to_owned()));
    let out = orch(&["node", "status"], Some(&addr));
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("unexpected answer") && stderr(&out).contains("bad gateway"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn plan_exits_1_when_something_would_change_and_0_when_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let file = write_job(dir.path(), GOOD_JOB);
    let plan = |diff_type: &'static str, place: u64| {
        serve(move |method, target, _| {
            assert_eq!((method, target), ("POST", "/v1/job/web/plan"));
            (
                200,
                format!(
                    r#"{{"diff_type": "{diff_type}", "diff": [], "job_modify_index": 7,
                        "groups": [{{"name": "frontend", "place": {place}, "stop": 0,
                                     "replace": 0, "in_place": 0, "ignore": 3}}],
                        "placements": [], "failed_tg_allocs": {{}}}}"#
                ),
            )
        })
    };
    let (addr, _) = plan("none", 0);
    let out = orch(&["job", "plan", &file], Some(&addr));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stdout(&out).contains(&format!("orch job run --check-index 7 {file}")),
        "{}",
        stdout(&out)
    );
    let (addr, _) = plan("edit", 1);
    let out = orch(&["job", "plan", &file], Some(&addr));
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
}

#[test]
fn json_is_the_servers_text_reindented_not_resorted() {
    let (addr, _) = serve(|_, _, _| {
        (
            200,
            r#"[{"id":"web","name":"web","type":"service","priority":50,"status":"running","version":1,"stop":false,"allocs":{"running":1},"modify_index":9}]"#
                .to_owned(),
        )
    });
    let out = orch(&["job", "status", "--json"], Some(&addr));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    // Keys in the server's order ("id" before "allocs"), two-space indent.
    assert!(
        text.starts_with("[\n  {\n    \"id\": \"web\",\n    \"name\""),
        "{text}"
    );
    assert!(text.find("\"id\"") < text.find("\"allocs\""));
}
