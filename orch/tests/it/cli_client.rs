//! `orch job|node|eval|alloc` as a user runs them: the real binary against
//! a real `orch server` process (one per test, each with its own data dir
//! and config, so the tests run in parallel), with nodes registered through
//! the API. The tests check exit codes and the content that matters; ids
//! and times vary, and the layout is pinned by the snapshot tests in
//! `cli/src`.

use crate::common::Server;
use orch_testkit::{FakeAgent, node};
use serde_json::Value;
use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Output};

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

/// Both streams, for assertion messages.
fn both(o: &Output) -> String {
    format!("{}{}", stdout(o), stderr(o))
}

/// An address nothing listens on: bind a port, then let it go.
fn closed_address() -> String {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    drop(l);
    format!("http://127.0.0.1:{port}")
}

fn write_job(dir: &Path, text: &str) -> String {
    let path = dir.join("web.toml");
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_owned()
}

/// `dir/ID.toml`: a job of one group `frontend` of `count` allocations of
/// 500 MHz and `memory` MiB; `extra` goes at the top level.
fn job_file(dir: &Path, id: &str, count: u32, memory: u64, extra: &str) -> String {
    let path = crate::common::sleep_job_file(dir, id, "frontend", count, memory, extra);
    path.to_str().unwrap().to_owned()
}

/// No node of [`cluster`] is a Mac.
const DARWIN_ONLY: &str = "[[constraint]]\nattribute = \"${attr.os.name}\"\nvalue = \"darwin\"\n";
const DARWIN_REASON: &str = "constraint ${attr.os.name} = darwin";

const NODE_1: &str = "aaaa1111-0000-4000-8000-000000000001";
const NODE_2: &str = "bbbb2222-0000-4000-8000-000000000002";

/// A server with two linux nodes of 4000 MHz and 8 GiB, named apart from
/// their ids so the output shows that names were looked up.
fn cluster(dir: &Path) -> Server {
    let server = Server::start(dir);
    for id in [NODE_1, NODE_2] {
        let mut n = node(id, 4000, 8192, "linux");
        n.name = node_name(id).into();
        server.register(&n);
    }
    server
}

fn node_name(id: &str) -> &'static str {
    match id {
        NODE_1 => "box-1",
        NODE_2 => "box-2",
        other => panic!("not a node of the cluster: {other}"),
    }
}

/// The 8-character prefix the CLI shows of an id.
fn short(id: &str) -> &str {
    &id[..8]
}

fn str_of<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key]
        .as_str()
        .unwrap_or_else(|| panic!("no string {key} in {v:#}"))
}

/// The value of `Key = value` in a key/value block, whatever the padding.
fn field<'a>(text: &'a str, key: &str) -> &'a str {
    text.lines()
        .find_map(|l| {
            let (k, v) = l.split_once(" = ")?;
            (k.trim_end() == key).then_some(v)
        })
        .unwrap_or_else(|| panic!("no field {key:?} in:\n{text}"))
}

/// The cells of the table row whose first cell is `first`.
fn row<'a>(text: &'a str, first: &str) -> Vec<&'a str> {
    text.lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .find(|cells| cells.first() == Some(&first))
        .unwrap_or_else(|| panic!("no row {first:?} in:\n{text}"))
}

fn allocs_of(server: &Server, job: &str) -> Vec<Value> {
    server
        .get(&format!("/v1/job/{job}/allocations"))
        .as_array()
        .unwrap()
        .clone()
}

/// The job's (first listed) evaluation triggered by `trigger`.
fn eval_of(server: &Server, job: &str, trigger: &str) -> Value {
    let evals = server.get(&format!("/v1/job/{job}/evaluations"));
    evals
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["triggered_by"] == trigger)
        .unwrap_or_else(|| panic!("no {trigger} evaluation of {job}: {evals:#}"))
        .clone()
}

fn json_of(o: &Output) -> Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}", both(o)))
}

// ---- without a server -------------------------------------------------------------

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

// ---- against a real server --------------------------------------------------------

#[test]
fn run_exits_2_with_the_reasons_when_placement_failed() {
    let dir = tempfile::tempdir().unwrap();
    let server = cluster(dir.path());

    // A constraint no node meets: every node filtered, with the reason.
    let file = job_file(dir.path(), "mac", 2, 256, DARWIN_ONLY);
    let out = server.orch(&["job", "run", &file]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(2), "{}", both(&out));
    let registered = eval_of(&server, "mac", "job-register");
    let blocked = str_of(&registered, "blocked_eval");
    assert!(
        text.starts_with(&format!(
            "==> Monitoring evaluation \"{}\"\n",
            short(str_of(&registered, "id"))
        )),
        "{text}"
    );
    assert!(
        text.contains("finished with status \"complete\" but failed to place all allocations:"),
        "{text}"
    );
    assert!(
        text.contains("Task Group \"frontend\" (failed to place 2 allocations):"),
        "{text}"
    );
    assert!(text.contains("* 2 nodes evaluated"), "{text}");
    assert!(
        text.contains(&format!("* 2 nodes excluded by filter: {DARWIN_REASON}")),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "Evaluation \"{}\" waiting for additional capacity",
            short(blocked)
        )),
        "{text}"
    );
    assert!(!text.contains("created"), "{text}");
    let blocked = server.get(&format!("/v1/evaluation/{blocked}"));
    assert_eq!(blocked["status"], "blocked", "{blocked:#}");

    // More memory than any node has: every node exhausted on memory.
    let file = job_file(dir.path(), "huge", 1, 999_999, "");
    let out = server.orch(&["job", "run", &file]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(2), "{}", both(&out));
    assert!(
        text.contains("Task Group \"frontend\" (failed to place 1 allocation):"),
        "{text}"
    );
    assert!(text.contains("* Resources exhausted on 2 nodes"), "{text}");
    assert!(
        text.contains("* Dimension \"memory\" exhausted on 2 nodes"),
        "{text}"
    );
    let blocked = str_of(&eval_of(&server, "huge", "job-register"), "blocked_eval").to_owned();
    assert!(
        text.contains(&format!("Evaluation \"{}\" waiting", short(&blocked))),
        "{text}"
    );

    assert!(allocs_of(&server, "mac").is_empty());
    assert!(allocs_of(&server, "huge").is_empty());

    // Running the unchanged file again evaluates nothing, and still exits
    // 2: the job is still waiting for room.
    let out = server.orch(&["job", "run", &file]);
    assert_eq!(out.status.code(), Some(2), "{}", both(&out));
    assert!(
        stdout(&out).contains("still waiting for room for 1 allocation"),
        "{}",
        both(&out)
    );
}

#[test]
fn run_exits_0_and_lists_the_allocations_it_created() {
    let dir = tempfile::tempdir().unwrap();
    let server = cluster(dir.path());
    let file = job_file(dir.path(), "web", 3, 256, "");
    let out = server.orch(&["job", "run", &file]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{}", both(&out));
    let eval = eval_of(&server, "web", "job-register");
    assert!(
        text.contains("Evaluation triggered by job \"web\" (job-register)"),
        "{text}"
    );
    let allocs = allocs_of(&server, "web");
    assert_eq!(allocs.len(), 3, "{allocs:?}");
    for a in &allocs {
        let node_id = str_of(a, "node_id");
        let line = format!(
            "Allocation \"{}\" created: {} on node \"{}\" ({})",
            short(str_of(a, "id")),
            str_of(a, "name"),
            node_name(node_id),
            short(node_id)
        );
        assert!(text.contains(&line), "{line} in\n{text}");
    }
    assert!(
        text.ends_with(&format!(
            "==> Evaluation \"{}\" finished with status \"complete\"\n",
            short(str_of(&eval, "id"))
        )),
        "{text}"
    );
    assert!(stderr(&out).is_empty(), "{}", stderr(&out));

    // The same file again: the server keeps the version, nothing to do.
    let out = server.orch(&["job", "run", &file]);
    assert_eq!(out.status.code(), Some(0), "{}", both(&out));
    assert_eq!(
        stdout(&out),
        "Job \"web\" is unchanged (version 0); nothing to evaluate.\n"
    );
    assert_eq!(allocs_of(&server, "web").len(), 3);

    // The server's warnings go to stderr; a system job runs on every node.
    let file = job_file(dir.path(), "sys", 3, 256, "type = \"system\"\n");
    let out = server.orch(&["job", "run", &file]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{}", both(&out));
    assert!(
        stderr(&out).contains(
            "warning: group[0].count: count = 3 is ignored: a system job runs one allocation on every eligible node"
        ),
        "{}",
        stderr(&out)
    );
    for name in ["box-1", "box-2"] {
        assert!(
            text.contains(&format!("sys.frontend[0] on node \"{name}\"")),
            "{text}"
        );
    }
}

#[test]
fn detach_returns_the_eval_id_and_json_is_the_final_evaluation() {
    let dir = tempfile::tempdir().unwrap();
    let server = cluster(dir.path());

    let file = job_file(dir.path(), "web", 2, 256, "");
    let out = server.orch(&["job", "run", &file, "--detach"]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{}", both(&out));
    let eval_id = text
        .strip_prefix("Job registration successful (version 0)\nEvaluation ID: ")
        .unwrap_or_else(|| panic!("{text}"))
        .trim();
    // The id is the evaluation's, which the server then runs.
    let eval = server.until(
        &format!("/v1/evaluation/{eval_id}"),
        "the detached evaluation",
        |e| e["status"] != "pending",
    );
    assert_eq!(eval["job_id"], "web");
    assert_eq!(eval["status"], "complete");

    // --json: the final evaluation as the server has it, placements included.
    let file = job_file(dir.path(), "api", 2, 256, "");
    let out = server.orch(&["job", "run", &file, "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", both(&out));
    let v = json_of(&out);
    assert_eq!(v["status"], "complete", "{v:#}");
    assert_eq!(v["job_id"], "api");
    assert_eq!(v["triggered_by"], "job-register");
    let mut placed: Vec<&str> = v["placed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap())
        .collect();
    placed.sort_unstable();
    let allocs = allocs_of(&server, "api");
    let mut ids: Vec<&str> = allocs.iter().map(|a| str_of(a, "id")).collect();
    ids.sort_unstable();
    assert_eq!(placed, ids);
    assert_eq!(
        v,
        server.get(&format!("/v1/evaluation/{}", str_of(&v, "id")))
    );

    // --json of a failed placement: exit 2, the reasons in the JSON.
    let file = job_file(dir.path(), "mac", 1, 256, DARWIN_ONLY);
    let out = server.orch(&["job", "run", &file, "--json"]);
    assert_eq!(out.status.code(), Some(2), "{}", both(&out));
    let v = json_of(&out);
    assert_eq!(
        v["failed_tg_allocs"]["frontend"]["nodes_filtered"][DARWIN_REASON], 2,
        "{v:#}"
    );
    assert!(v["blocked_eval"].is_string(), "{v:#}");
}

#[test]
fn api_errors_exit_2_with_the_servers_message() {
    let dir = tempfile::tempdir().unwrap();
    let server = cluster(dir.path());
    let file = job_file(dir.path(), "web", 1, 256, "");
    let out = server.orch(&["job", "run", &file]);
    assert_eq!(out.status.code(), Some(0), "{}", both(&out));
    let modify_index = server.get("/v1/job/web")["modify_index"].as_u64().unwrap();

    // A stale --check-index: 409, the job left as it was.
    job_file(dir.path(), "web", 2, 256, "");
    let out = server.orch(&["job", "run", "--check-index", "999", &file]);
    assert_eq!(out.status.code(), Some(2), "{}", both(&out));
    let err = stderr(&out);
    assert!(
        err.contains(&format!(
            "error: job \"web\" is at modify index {modify_index}, not 999"
        )),
        "{err}"
    );
    assert!(err.contains("(conflict, HTTP 409)"), "{err}");
    assert!(stdout(&out).is_empty(), "{}", stdout(&out));
    assert_eq!(server.get("/v1/job/web")["version"], 0);
    // The current one goes through.
    let index = modify_index.to_string();
    let out = server.orch(&["job", "run", "--check-index", &index, &file]);
    assert_eq!(out.status.code(), Some(0), "{}", both(&out));
    assert_eq!(server.get("/v1/job/web")["version"], 1);

    // What does not exist: 404, named.
    for (args, what) in [
        (
            vec!["alloc", "status", "nosuchid"],
            "allocation \"nosuchid\"",
        ),
        (
            vec!["eval", "status", "nosuchid"],
            "evaluation \"nosuchid\"",
        ),
        (vec!["job", "status", "nosuch"], "job \"nosuch\""),
        (vec!["job", "history", "nosuch"], "job \"nosuch\""),
        (vec!["job", "stop", "nosuch"], "job \"nosuch\""),
        (vec!["node", "status", "nosuch"], "node \"nosuch\""),
    ] {
        let out = server.orch(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", both(&out));
        let err = stderr(&out);
        assert!(
            err.contains(&format!("error: {what} not found")) && err.contains("HTTP 404"),
            "{args:?}: {err}"
        );
    }
    // A prefix too short to look up says how long it must be.
    let out = server.orch(&["alloc", "status", "ab"]);
    assert_eq!(out.status.code(), Some(2), "{}", both(&out));
    assert!(
        stderr(&out).contains("at least 4 characters"),
        "{}",
        stderr(&out)
    );

    // What the server's validation would refuse, the CLI refuses first
    // (the same checks), every problem listed, nothing sent.
    let bad = job_file(dir.path(), "bad", 1, 0, "priority = 0\n");
    let out = server.orch(&["job", "run", &bad]);
    assert_eq!(out.status.code(), Some(2), "{}", both(&out));
    let err = stderr(&out);
    assert!(err.contains("priority"), "{err}");
    assert!(err.contains("memory"), "{err}");
    assert!(err.contains("2 problems in"), "{err}");
    assert!(err.contains("nothing was sent to the server"), "{err}");
    let jobs = server.get("/v1/jobs");
    assert_eq!(jobs.as_array().unwrap().len(), 1, "{jobs:#}");
}

#[test]
fn a_job_the_server_refuses_is_not_stored() {
    // A job the CLI finds fine but the server will not take: larger than
    // its body limit.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("orch.toml"),
        "data_dir = \"data\"\n[api]\nmax_body_bytes = 2048\n",
    )
    .unwrap();
    let server = Server::start(dir.path());
    let note = "x".repeat(3000);
    let file = job_file(
        dir.path(),
        "fat",
        1,
        256,
        &format!("meta = {{ note = \"{note}\" }}\n"),
    );
    for verb in ["run", "plan"] {
        let out = server.orch(&["job", verb, &file]);
        assert_eq!(out.status.code(), Some(2), "{verb}: {}", both(&out));
        let err = stderr(&out);
        assert!(
            err.contains(
                "error: the request body is larger than the server's limit of 2048 bytes \
                 (body_too_large, HTTP 413)"
            ),
            "{verb}: {err}"
        );
        assert!(!err.contains("nothing was sent"), "{verb}: {err}");
    }
    let out = server.orch(&["job", "status"]);
    assert_eq!(out.status.code(), Some(0), "{}", both(&out));
    assert_eq!(stdout(&out), "No jobs registered\n");
}

#[test]
fn plan_exits_1_when_something_would_change_and_0_when_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let server = cluster(dir.path());
    let file = job_file(dir.path(), "web", 3, 256, "");

    // A new job: every allocation to place, and where.
    let out = server.orch(&["job", "plan", &file]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{}", both(&out));
    assert!(text.starts_with("+ Job: \"web\"\n"), "{text}");
    assert!(
        text.contains("~ Task Group: \"frontend\" (3 place)"),
        "{text}"
    );
    for i in 0..3 {
        let cells = row(&text, &format!("web.frontend[{i}]"));
        assert!(
            matches!(cells[1], "box-1" | "box-2"),
            "{cells:?} in\n{text}"
        );
    }
    assert!(
        text.contains("- All tasks successfully allocated."),
        "{text}"
    );
    assert!(
        text.contains(&format!("orch job run --check-index 0 {file}")),
        "{text}"
    );
    // A plan changes nothing.
    assert!(server.get("/v1/jobs").as_array().unwrap().is_empty());

    let out = server.orch(&["job", "run", "--check-index", "0", &file]);
    assert_eq!(out.status.code(), Some(0), "{}", both(&out));
    let modify_index = server.get("/v1/job/web")["modify_index"].as_u64().unwrap();

    // Run as planned: nothing would change.
    let out = server.orch(&["job", "plan", &file]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{}", both(&out));
    assert!(text.starts_with("  Job: \"web\" (no changes)\n"), "{text}");
    assert!(
        text.contains("Task Group: \"frontend\" (3 ignore)"),
        "{text}"
    );
    assert!(!text.contains("Placements"), "{text}");
    assert!(
        text.contains(&format!("orch job run --check-index {modify_index} {file}")),
        "{text}"
    );

    // One more: the diff, and the one new placement.
    job_file(dir.path(), "web", 4, 256, "");
    let out = server.orch(&["job", "plan", &file]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{}", both(&out));
    assert!(text.starts_with("~ Job: \"web\"\n"), "{text}");
    assert!(
        text.contains("~ group[frontend].count: \"3\" => \"4\""),
        "{text}"
    );
    assert!(text.contains("1 place"), "{text}");
    row(&text, "web.frontend[3]");
    let out = server.orch(&["job", "plan", &file, "--json"]);
    assert_eq!(out.status.code(), Some(1), "{}", both(&out));
    let v = json_of(&out);
    assert_eq!(v["diff_type"], "edit", "{v:#}");
    assert_eq!(v["job_modify_index"], modify_index);
    assert_eq!(v["groups"][0]["name"], "frontend");
    assert_eq!(v["groups"][0]["place"], 1);
    assert_eq!(v["placements"][0]["name"], "web.frontend[3]");

    // A job that cannot be placed: the dry run says why.
    let mac = job_file(dir.path(), "mac", 1, 256, DARWIN_ONLY);
    let out = server.orch(&["job", "plan", &mac]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{}", both(&out));
    assert!(
        text.contains("- WARNING: Failed to place all allocations."),
        "{text}"
    );
    assert!(
        text.contains(&format!("2 nodes excluded by filter: {DARWIN_REASON}")),
        "{text}"
    );
}

#[test]
fn json_is_the_servers_answer_reindented_not_resorted() {
    let dir = tempfile::tempdir().unwrap();
    let server = cluster(dir.path());
    let file = job_file(dir.path(), "web", 2, 256, "");
    let out = server.orch(&["job", "run", &file]);
    assert_eq!(out.status.code(), Some(0), "{}", both(&out));

    let out = server.orch(&["job", "status", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", both(&out));
    let text = stdout(&out);
    // Keys in the server's order ("id" before "allocs"), two-space indent.
    assert!(
        text.starts_with("[\n  {\n    \"id\": \"web\",\n    \"name\""),
        "{text}"
    );
    assert!(text.find("\"id\"") < text.find("\"allocs\""), "{text}");
    assert_eq!(json_of(&out), server.get("/v1/jobs"));

    let alloc = allocs_of(&server, "web")[0].clone();
    let alloc_id = str_of(&alloc, "id");
    let eval_id = str_of(&alloc, "eval_id");
    for (args, path) in [
        (vec!["job", "status", "web"], "/v1/job/web".to_owned()),
        (
            vec!["job", "history", "web"],
            "/v1/job/web/versions".to_owned(),
        ),
        (vec!["node", "status"], "/v1/nodes".to_owned()),
        (vec!["node", "status", NODE_1], format!("/v1/node/{NODE_1}")),
        (
            vec!["alloc", "status", alloc_id],
            format!("/v1/allocation/{alloc_id}"),
        ),
        (
            vec!["alloc", "status", alloc_id, "--verbose"],
            format!("/v1/allocation/{alloc_id}?verbose=true"),
        ),
        (
            vec!["eval", "status", eval_id],
            format!("/v1/evaluation/{eval_id}"),
        ),
    ] {
        let mut args = args;
        args.push("--json");
        let out = server.orch(&args);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {}", both(&out));
        assert_eq!(json_of(&out), server.get(&path), "{args:?}");
    }
}

#[test]
fn job_status_lists_the_jobs_and_shows_one() {
    let dir = tempfile::tempdir().unwrap();
    let server = cluster(dir.path());
    let out = server.orch(&["job", "status"]);
    assert_eq!(out.status.code(), Some(0), "{}", both(&out));
    assert_eq!(stdout(&out), "No jobs registered\n");

    let web = job_file(dir.path(), "web", 3, 256, "");
    assert_eq!(server.orch(&["job", "run", &web]).status.code(), Some(0));
    let mac = job_file(dir.path(), "mac", 2, 256, DARWIN_ONLY);
    assert_eq!(server.orch(&["job", "run", &mac]).status.code(), Some(2));

    // No agent runs anything yet: allocations stay pending.
    let out = server.orch(&["job", "status"]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{}", both(&out));
    assert_eq!(
        row(&text, "ID"),
        ["ID", "TYPE", "PRIORITY", "STATUS", "VERSION", "ALLOCS"]
    );
    assert_eq!(
        row(&text, "web"),
        ["web", "service", "50", "pending", "0", "3", "pending"]
    );
    assert_eq!(
        row(&text, "mac")[..5],
        ["mac", "service", "50", "pending", "0"]
    );

    let out = server.orch(&["job", "status", "web"]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{}", both(&out));
    assert_eq!(field(&text, "ID"), "web");
    assert_eq!(field(&text, "Type"), "service");
    assert_eq!(field(&text, "Version"), "0");
    assert_eq!(field(&text, "Status"), "pending");
    // GROUP QUEUED PENDING RUNNING COMPLETE FAILED LOST
    assert_eq!(
        row(&text, "frontend"),
        ["frontend", "0", "3", "0", "0", "0", "0"]
    );
    assert!(!text.contains("Placement Failure"), "{text}");
    for a in allocs_of(&server, "web") {
        let cells = row(&text, short(str_of(&a, "id")));
        assert_eq!(
            cells[1..6],
            [
                short(str_of(&a, "node_id")),
                "frontend",
                "0",
                "run",
                "pending"
            ],
            "{text}"
        );
    }

    // A job that could not be placed says why, and what waits.
    let out = server.orch(&["job", "status", "mac"]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{}", both(&out));
    assert!(text.contains("Placement Failure"), "{text}");
    assert!(
        text.contains(&format!("2 nodes excluded by filter: {DARWIN_REASON}")),
        "{text}"
    );
    assert!(text.contains("waiting for additional capacity"), "{text}");
    assert_eq!(
        row(&text, "frontend"),
        ["frontend", "2", "0", "0", "0", "0", "0"]
    );
    assert!(
        text.ends_with("Allocations\nNo allocations placed\n"),
        "{text}"
    );
}

#[test]
fn job_history_lists_the_versions_newest_first_with_their_changes() {
    let dir = tempfile::tempdir().unwrap();
    let server = cluster(dir.path());
    let file = job_file(dir.path(), "web", 3, 256, "");
    assert_eq!(server.orch(&["job", "run", &file]).status.code(), Some(0));
    job_file(dir.path(), "web", 4, 256, "");
    assert_eq!(server.orch(&["job", "run", &file]).status.code(), Some(0));

    let out = server.orch(&["job", "history", "web"]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{}", both(&out));
    let versions = server.get("/v1/job/web/versions");
    let index_of = |v: u64| {
        versions
            .as_array()
            .unwrap()
            .iter()
            .find(|j| j["version"] == v)
            .unwrap()["modify_index"]
            .to_string()
    };
    // VERSION SUBMITTED MODIFY-INDEX STOP CHANGES
    let newest = row(&text, "1");
    assert_eq!(newest[2], index_of(1), "{text}");
    assert_eq!(newest[3], "false");
    assert_eq!(newest[4..].join(" "), "group[0].count: 3 => 4");
    let first = row(&text, "0");
    assert_eq!(first[2], index_of(0), "{text}");
    assert_eq!(first[4..].join(" "), "(first version)");
    assert!(
        text.find("group[0].count") < text.find("(first version)"),
        "newest first: {text}"
    );
}

#[test]
fn job_stop_stops_every_allocation() {
    let dir = tempfile::tempdir().unwrap();
    let server = cluster(dir.path());
    let file = job_file(dir.path(), "web", 3, 256, "");
    assert_eq!(server.orch(&["job", "run", &file]).status.code(), Some(0));

    let out = server.orch(&["job", "stop", "web"]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{}", both(&out));
    let eval = eval_of(&server, "web", "job-deregister");
    assert!(
        text.starts_with(&format!(
            "==> Monitoring evaluation \"{}\"\n",
            short(str_of(&eval, "id"))
        )),
        "{text}"
    );
    assert!(
        text.contains("Evaluation triggered by job \"web\" (job-deregister)"),
        "{text}"
    );
    assert!(text.contains("finished with status \"complete\""), "{text}");
    let allocs = server.until("/v1/job/web/allocations", "stopped allocations", |a| {
        a.as_array()
            .unwrap()
            .iter()
            .all(|a| a["desired_status"] == "stop")
    });
    assert_eq!(allocs.as_array().unwrap().len(), 3, "{allocs:#}");

    let out = server.orch(&["job", "status"]);
    assert_eq!(
        row(&stdout(&out), "web")[3..5],
        ["dead", "(stopped)"],
        "{}",
        stdout(&out)
    );
    let out = server.orch(&["job", "status", "web"]);
    let text = stdout(&out);
    assert_eq!(field(&text, "Status"), "dead (stopped)");
    for a in allocs.as_array().unwrap() {
        assert_eq!(row(&text, short(str_of(a, "id")))[4], "stop", "{text}");
    }
}

#[test]
fn node_status_lists_the_nodes_and_shows_one() {
    let dir = tempfile::tempdir().unwrap();
    let server = cluster(dir.path());
    let file = job_file(dir.path(), "web", 3, 256, "");
    assert_eq!(server.orch(&["job", "run", &file]).status.code(), Some(0));
    let allocs = allocs_of(&server, "web");
    let on = |node: &str| {
        allocs
            .iter()
            .filter(|a| a["node_id"] == node)
            .collect::<Vec<_>>()
    };

    let out = server.orch(&["node", "status"]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{}", both(&out));
    for id in [NODE_1, NODE_2] {
        // ID NAME DC CLASS DRAIN ELIGIBILITY STATUS ALLOCS
        let cells = row(&text, short(id));
        assert_eq!(cells[1], node_name(id), "{text}");
        assert_eq!(cells[4..7], ["false", "eligible", "ready"], "{text}");
        assert_eq!(cells[7], on(id).len().to_string(), "{text}");
    }

    // By a prefix of its id.
    let out = server.orch(&["node", "status", &NODE_1[..4]]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{}", both(&out));
    assert_eq!(field(&text, "ID"), NODE_1);
    assert_eq!(field(&text, "Name"), "box-1");
    assert_eq!(field(&text, "Status"), "ready");
    assert_eq!(field(&text, "attr.os.name"), "linux");
    assert_eq!(row(&text, "exec")[1..3], ["true", "true"], "{text}");
    let held = on(NODE_1);
    assert!(
        row(&text, "cpu")
            .join(" ")
            .starts_with(&format!("cpu {} MHz / 4000 MHz", 500 * held.len())),
        "{text}"
    );
    for a in &held {
        row(&text, short(str_of(a, "id")));
    }
    for a in on(NODE_2) {
        assert!(!text.contains(short(str_of(a, "id"))), "{text}");
    }
}

#[test]
fn eval_status_says_why_nodes_were_filtered() {
    let dir = tempfile::tempdir().unwrap();
    let server = cluster(dir.path());
    let file = job_file(dir.path(), "mac", 2, 256, DARWIN_ONLY);
    assert_eq!(server.orch(&["job", "run", &file]).status.code(), Some(2));
    let registered = eval_of(&server, "mac", "job-register");
    let id = str_of(&registered, "id");
    let blocked = str_of(&registered, "blocked_eval");

    let out = server.orch(&["eval", "status", short(id)]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{}", both(&out));
    assert_eq!(field(&text, "ID"), id);
    assert_eq!(field(&text, "Status"), "complete");
    assert_eq!(field(&text, "Triggered By"), "job-register");
    assert_eq!(field(&text, "Job ID"), "mac");
    assert_eq!(field(&text, "Placement Failures"), "true");
    assert_eq!(field(&text, "Blocked Eval"), blocked);
    assert!(text.contains("==> Failed Placements"), "{text}");
    assert!(
        text.contains("Task Group \"frontend\" (failed to place 2 allocations):"),
        "{text}"
    );
    assert!(
        text.contains(&format!("* 2 nodes excluded by filter: {DARWIN_REASON}")),
        "{text}"
    );
    assert!(text.contains("2 allocations waiting for a node"), "{text}");
    assert!(!text.contains("Placed Allocations"), "{text}");

    // The blocked evaluation it left points back to it.
    let out = server.orch(&["eval", "status", blocked]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{}", both(&out));
    assert_eq!(field(&text, "Status"), "blocked");
    assert_eq!(field(&text, "Triggered By"), "queued-allocs");
    assert_eq!(field(&text, "Previous Eval"), id);

    // One that placed everything lists what it placed.
    let file = job_file(dir.path(), "web", 2, 256, "");
    assert_eq!(server.orch(&["job", "run", &file]).status.code(), Some(0));
    let eval = eval_of(&server, "web", "job-register");
    let out = server.orch(&["eval", "status", str_of(&eval, "id")]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{}", both(&out));
    assert_eq!(field(&text, "Placement Failures"), "false");
    assert!(text.contains("==> Placed Allocations"), "{text}");
    for a in allocs_of(&server, "web") {
        let node_id = str_of(&a, "node_id");
        let line = format!(
            "Allocation \"{}\": {} on node \"{}\" ({})",
            short(str_of(&a, "id")),
            str_of(&a, "name"),
            node_name(node_id),
            short(node_id)
        );
        assert!(text.contains(&line), "{line} in\n{text}");
    }
}

#[test]
fn alloc_status_verbose_shows_the_scores_and_the_pick() {
    let dir = tempfile::tempdir().unwrap();
    let server = cluster(dir.path());
    let file = job_file(dir.path(), "web", 1, 256, "");
    assert_eq!(server.orch(&["job", "run", &file]).status.code(), Some(0));
    let alloc = allocs_of(&server, "web")[0].clone();
    let id = str_of(&alloc, "id");
    let node_id = str_of(&alloc, "node_id");
    let decision = server.get(&format!("/v1/allocation/{id}?verbose=true"))["decision"].clone();
    let scorer = str_of(&decision, "scorer");
    let digest = str_of(&decision, "scorer_digest");
    assert!(scorer.starts_with("binpack"), "{decision:#}");
    assert!(digest.starts_with("sha256:"), "{decision:#}");

    let out = server.orch(&["alloc", "status", short(id), "--verbose"]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{}", both(&out));
    assert_eq!(field(&text, "ID"), id);
    assert_eq!(field(&text, "Name"), "web.frontend[0]");
    assert_eq!(field(&text, "Node ID"), short(node_id));
    assert_eq!(field(&text, "Node Name"), node_name(node_id));
    assert_eq!(field(&text, "Desired Status"), "run");
    assert!(text.contains("\nPlacement Decision\n"), "{text}");
    assert_eq!(field(&text, "Scorer"), format!("{scorer} ({digest})"));
    assert_eq!(field(&text, "Nodes Evaluated"), "2");
    assert_eq!(field(&text, "Nodes Filtered"), "0");
    assert_eq!(field(&text, "Candidates Scored"), "2");
    // Both candidates in the table; the picked one marked, and named below.
    let other = if node_id == NODE_1 { NODE_2 } else { NODE_1 };
    assert_eq!(
        row(&text, "*")[1..3],
        [node_name(node_id), short(node_id)],
        "{text}"
    );
    assert_eq!(row(&text, node_name(other))[1], short(other), "{text}");
    assert!(
        text.ends_with(&format!(
            "* picked: {} ({})\n",
            short(node_id),
            node_name(node_id)
        )),
        "{text}"
    );

    // Without --verbose, no decision.
    let out = server.orch(&["alloc", "status", id]);
    assert_eq!(out.status.code(), Some(0), "{}", both(&out));
    assert!(
        !stdout(&out).contains("Placement Decision"),
        "{}",
        both(&out)
    );
}

// ---- node drain and eligibility ---------------------------------------------------

/// The live allocations of `job` by node: `{node: count}`.
fn live_on(server: &Server, job: &str) -> std::collections::BTreeMap<String, usize> {
    let mut on = std::collections::BTreeMap::new();
    for a in allocs_of(server, job) {
        let ended = ["complete", "failed", "lost"].contains(&str_of(&a, "client_status"));
        if a["desired_status"] == "run" && !ended {
            *on.entry(str_of(&a, "node_id").to_owned()).or_default() += 1;
        }
    }
    on
}

#[test]
fn node_drain_moves_the_allocations_off_and_eligibility_flips() {
    let dir = tempfile::tempdir().unwrap();
    let server = cluster(dir.path());
    let file = job_file(dir.path(), "web", 2, 256, "");
    assert_eq!(server.orch(&["job", "run", &file]).status.code(), Some(0));
    let on = live_on(&server, "web");
    let drained = on.keys().next().unwrap().clone();
    let other = if drained == NODE_1 { NODE_2 } else { NODE_1 };
    let before = on[&drained];

    let out = server.orch(&["node", "drain", short(&drained), "--enable"]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{}", both(&out));
    assert!(
        text.starts_with(&format!(
            "Node \"{}\" ({}) drain enabled; it takes no new allocations\n1 evaluation created to move its allocations: ",
            short(&drained),
            node_name(&drained)
        )),
        "{text}"
    );
    // The scheduler moves them: every live allocation ends up on the other
    // node, as many as before.
    server.until("/v1/job/web/allocations", "the allocations to move", |_| {
        let on = live_on(&server, "web");
        on.len() == 1 && on.get(other) == Some(&2)
    });
    let evicted = allocs_of(&server, "web")
        .into_iter()
        .filter(|a| a["node_id"] == drained.as_str() && a["desired_status"] == "evict")
        .count();
    assert_eq!(evicted, before);
    let out = server.orch(&["node", "status"]);
    assert_eq!(
        row(&stdout(&out), short(&drained))[4..7],
        ["true", "ineligible", "ready"],
        "{}",
        both(&out)
    );

    let out = server.orch(&["node", "drain", &drained, "--disable"]);
    assert_eq!(out.status.code(), Some(0), "{}", both(&out));
    assert_eq!(
        stdout(&out),
        format!(
            "Node \"{}\" ({}) drain disabled; it is eligible for new allocations again\n",
            short(&drained),
            node_name(&drained)
        )
    );
    let node = server.get(&format!("/v1/node/{drained}"));
    assert_eq!(
        (node["drain"].as_bool(), node["eligibility"].as_str()),
        (Some(false), Some("eligible"))
    );

    let out = server.orch(&["node", "eligibility", short(other), "--disable"]);
    assert_eq!(out.status.code(), Some(0), "{}", both(&out));
    assert_eq!(
        stdout(&out),
        format!(
            "Node \"{}\" ({}) is ineligible: it takes no new allocations, and what runs there stays\n",
            short(other),
            node_name(other)
        )
    );
    assert_eq!(
        server.get(&format!("/v1/node/{other}"))["eligibility"],
        "ineligible"
    );
    assert_eq!(
        live_on(&server, "web").get(other),
        Some(&2),
        "what runs there stays"
    );
    let out = server.orch(&["node", "eligibility", short(other), "--enable"]);
    assert_eq!(out.status.code(), Some(0), "{}", both(&out));
    assert!(
        stdout(&out).ends_with("is eligible for new allocations\n"),
        "{}",
        both(&out)
    );
    assert_eq!(
        server.get(&format!("/v1/node/{other}"))["eligibility"],
        "eligible"
    );

    // Exactly one of --enable and --disable; a node that does not exist.
    for args in [
        vec!["node", "drain", other],
        vec!["node", "drain", other, "--enable", "--disable"],
        vec!["node", "eligibility", other],
    ] {
        let out = server.orch(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", both(&out));
    }
    let out = server.orch(&["node", "drain", "ffff0000", "--enable"]);
    assert_eq!(out.status.code(), Some(2), "{}", both(&out));
    assert!(
        stderr(&out).contains("node \"ffff0000\" not found"),
        "{}",
        both(&out)
    );
}

// ---- alloc logs and task states ---------------------------------------------------

/// A server with one node whose agent is `agent`, running the batch job
/// `web` of one allocation whose group has `tasks`; the allocation's id.
fn with_agent(dir: &Path, agent: &FakeAgent, tasks: &[&str]) -> (Server, String) {
    let server = Server::start(dir);
    let mut n = node(NODE_1, 4000, 8192, "linux");
    n.name = "box-1".into();
    n.http_addr = agent.addr.clone();
    server.register(&n);
    let mut text = "id = \"web\"\ntype = \"batch\"\n[[group]]\nname = \"frontend\"\n".to_owned();
    for t in tasks {
        text.push_str(&format!(
            "[[group.task]]\nname = \"{t}\"\ndriver = \"exec\"\nconfig = {{ command = \"/bin/true\" }}\n"
        ));
    }
    let file = write_job(dir, &text);
    let out = server.orch(&["job", "run", &file]);
    assert_eq!(out.status.code(), Some(0), "{}", both(&out));
    let id = str_of(&allocs_of(&server, "web")[0], "id").to_owned();
    (server, id)
}

/// Waits up to 30 s for `done` to hold of what `text` has collected.
fn until_text(text: &std::sync::Mutex<Vec<u8>>, what: &str, done: impl Fn(&[u8]) -> bool) {
    let started = std::time::Instant::now();
    loop {
        let now = text.lock().unwrap().clone();
        if done(&now) {
            return;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(30),
            "timed out waiting for {what}; got {:?}",
            String::from_utf8_lossy(&now)
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

#[test]
fn alloc_logs_prints_the_output_and_follows_it_until_the_allocation_ends() {
    let dir = tempfile::tempdir().unwrap();
    let first = b"line one\nline two, longer than one chunk\n\xff raw bytes too\n";
    let agent = FakeAgent::start(first);
    let (server, id) = with_agent(dir.path(), &agent, &["server"]);

    // The only task, by an id prefix: everything, in several chunks.
    let out = server.orch(&["alloc", "logs", short(&id)]);
    assert_eq!(out.status.code(), Some(0), "{}", both(&out));
    assert_eq!(out.stdout, first);
    assert!(agent.seen().len() > first.len() / orch_testkit::FAKE_AGENT_CHUNK);
    let out = server.orch(&["alloc", "logs", &id, "server", "--stderr"]);
    assert_eq!(out.status.code(), Some(0), "{}", both(&out));
    assert!(
        agent.seen().last().unwrap().contains("type=stderr"),
        "{:?}",
        agent.seen()
    );

    // Following: what comes later is printed too, and the command ends
    // once the allocation has ended and nothing more comes.
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_orch"))
        .args(["alloc", "logs", "-f", &id])
        .env("ORCH_ADDR", &server.addr)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let printed = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let mut pipe = child.stdout.take().unwrap();
    let sink = printed.clone();
    let reader = std::thread::spawn(move || {
        let mut buf = [0u8; 64];
        loop {
            match std::io::Read::read(&mut pipe, &mut buf) {
                Ok(0) | Err(_) => return,
                Ok(n) => sink.lock().unwrap().extend_from_slice(&buf[..n]),
            }
        }
    });
    until_text(&printed, "the log so far", |t| t == first);
    agent.append(b"written later\n");
    until_text(&printed, "what was written later", |t| {
        t.ends_with(b"written later\n")
    });
    assert!(
        child.try_wait().unwrap().is_none(),
        "it keeps following a running allocation"
    );
    agent.append(b"last words\n");
    let (status, body) = server.post(
        "/v1/allocations/status",
        &serde_json::json!({"updates": [{"alloc_id": id, "client_status": "complete"}]}),
    );
    assert_eq!(status, 200, "{body}");
    let started = std::time::Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(30),
            "-f did not end"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    reader.join().unwrap();
    assert_eq!(status.code(), Some(0));
    let mut all = first.to_vec();
    all.extend_from_slice(b"written later\nlast words\n");
    assert_eq!(*printed.lock().unwrap(), all);
}

#[test]
fn alloc_logs_asks_for_the_task_of_a_group_of_several_and_status_shows_their_states() {
    let dir = tempfile::tempdir().unwrap();
    let agent = FakeAgent::start(b"sidecar says hi\n");
    let (server, id) = with_agent(dir.path(), &agent, &["server", "sidecar"]);

    let out = server.orch(&["alloc", "logs", &id]);
    assert_eq!(out.status.code(), Some(2), "{}", both(&out));
    assert!(
        stderr(&out).contains(&format!(
            "group \"frontend\" of allocation {} has 2 tasks: server, sidecar; name the one to read",
            short(&id)
        )),
        "{}",
        both(&out)
    );
    assert!(agent.seen().is_empty());
    let out = server.orch(&["alloc", "logs", &id, "sidecar"]);
    assert_eq!(out.status.code(), Some(0), "{}", both(&out));
    assert_eq!(stdout(&out), "sidecar says hi\n");
    let out = server.orch(&["alloc", "logs", &id, "nope"]);
    assert_eq!(out.status.code(), Some(2), "{}", both(&out));
    assert!(
        stderr(&out).contains("its tasks are: server, sidecar"),
        "{}",
        both(&out)
    );

    // The tasks' states, as the agent reports them, in `alloc status`.
    let (status, body) = server.post(
        "/v1/allocations/status",
        &serde_json::json!({"updates": [{"alloc_id": id, "client_status": "running", "task_states": {
            "server": {"state": "running", "restarts": 1, "started_at_ms": 1_795_000_300_000u64, "events": [
                {"type": "started", "time_ms": 1_795_000_000_000u64},
                {"type": "terminated", "time_ms": 1_795_000_200_000u64, "message": "exited", "exit_code": 3},
                {"type": "restarting", "time_ms": 1_795_000_200_001u64, "message": "restarting in 15s"},
                {"type": "started", "time_ms": 1_795_000_300_000u64}]},
            "sidecar": {"state": "pending"},
        }}]}),
    );
    assert_eq!(status, 200, "{body}");
    let out = server.orch(&["alloc", "status", short(&id)]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{}", both(&out));
    assert!(
        text.contains("\nTask \"server\" is \"running\"\n"),
        "{text}"
    );
    assert!(
        text.contains("\nTask \"sidecar\" is \"pending\"\n"),
        "{text}"
    );
    assert_eq!(field(&text, "Total Restarts"), "1");
    assert_eq!(field(&text, "Started At"), "2026-11-18T11:11:40Z");
    assert!(text.contains("No events reported"), "{text}");
    // Newest first.
    let events: Vec<&str> = text.lines().filter(|l| l.starts_with("2026-")).collect();
    assert_eq!(events.len(), 4, "{text}");
    assert!(events[0].contains("Started"), "{text}");
    assert_eq!(
        events[1].split_whitespace().collect::<Vec<_>>(),
        [
            "2026-11-18T11:10:00Z",
            "Restarting",
            "restarting",
            "in",
            "15s"
        ]
    );
    assert_eq!(
        events[2].split_whitespace().collect::<Vec<_>>(),
        [
            "2026-11-18T11:10:00Z",
            "Terminated",
            "exited,",
            "exit",
            "code",
            "3"
        ]
    );
    // --json is the server's answer.
    let out = server.orch(&["alloc", "status", &id, "--json"]);
    assert_eq!(json_of(&out)["task_states"]["server"]["restarts"], 1);
}
