//! Why and why not, as a user asks: `orch job plan --why-not` and `orch
//! alloc status --why-not` against a real `orch server` with simulated
//! nodes, one of them excluded by the job's constraint and one outscored;
//! and a blocked evaluation's reasons in `orch eval status` and `orch job
//! status`, which count no node that takes nothing new, as its why-not
//! says.

use crate::common::{Server, sleep_job_file};
use orch_testkit::node;
use serde_json::{Value, json};
use std::path::Path;
use std::process::Output;

const BOX_1: &str = "aaaa1111-0000-4000-8000-000000000001";
const BOX_2: &str = "aaaa2222-0000-4000-8000-000000000002";
const MAC_1: &str = "cccc3333-0000-4000-8000-000000000003";
const LINUX_ONLY: &str = "[[constraint]]\nattribute = \"${attr.kernel.name}\"\nvalue = \"linux\"\n";
const LINUX_REASON: &str = "constraint ${attr.kernel.name} = linux";

/// Two linux nodes of different sizes (binpack prefers one) and a Mac,
/// named apart from their ids; the linux ids share a prefix.
fn cluster(dir: &Path) -> Server {
    let server = Server::start(dir);
    for (id, name, cpu, memory, os) in [
        (BOX_1, "box-1", 4000, 8192, "linux"),
        (BOX_2, "box-2", 2000, 4096, "linux"),
        (MAC_1, "mac-1", 4000, 8192, "darwin"),
    ] {
        let mut n = node(id, cpu, memory, os);
        n.name = name.into();
        server.register(&n);
    }
    server
}

fn name_of(id: &str) -> &'static str {
    match id {
        BOX_1 => "box-1",
        BOX_2 => "box-2",
        MAC_1 => "mac-1",
        other => panic!("not a node of the cluster: {other}"),
    }
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn both(o: &Output) -> String {
    format!("{}{}", stdout(o), stderr(o))
}

fn json_of(o: &Output) -> Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}", both(o)))
}

/// `value` against the schema `schema` of the server's OpenAPI document.
fn assert_schema(schema: &str, value: &Value) {
    let spec: Value = serde_json::from_str(orch_wire::OPENAPI_JSON).unwrap();
    let target = json!({ "$ref": format!("#/components/schemas/{schema}") });
    let problems = orch_wire::schema_problems(&spec, &target, value, schema);
    assert!(problems.is_empty(), "{problems:#?}\n{value:#}");
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

/// `GET path` without treating an error status as a failure.
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
fn plan_and_alloc_say_why_not_a_filtered_and_an_outscored_node() {
    let dir = tempfile::tempdir().unwrap();
    let server = cluster(dir.path());
    let file = sleep_job_file(dir.path(), "web", "frontend", 1, 256, LINUX_ONLY);
    let file = file.to_str().unwrap();

    // The Mac, by name: filtered by the constraint, in the plain plan's
    // words after the plan itself.
    let out = server.orch(&["job", "plan", file, "--why-not", "mac-1"]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{}", both(&out));
    assert!(text.starts_with("+ Job: \"web\"\n"), "{text}");
    assert!(
        text.contains("\nWhy Not Node \"mac-1\" (cccc3333)\nTask Group \"frontend\":\n"),
        "{text}"
    );
    assert!(
        text.contains(&format!("  web.frontend[0]: filtered by {LINUX_REASON}\n")),
        "{text}"
    );

    // Where the plan puts it, and the other linux node, by id prefix:
    // outscored, its parts beside the winner's.
    let out = server.orch(&["job", "plan", file, "--json", "--why-not", &MAC_1[..8]]);
    assert_eq!(out.status.code(), Some(1), "{}", both(&out));
    let plan = json_of(&out);
    assert_schema("JobPlanResponse", &plan);
    let verdict = &plan["why_not"]["groups"][0]["placements"][0];
    assert_eq!(verdict["allocation"], "web.frontend[0]", "{plan:#}");
    assert_eq!(verdict["verdict"]["kind"], "filtered", "{plan:#}");
    assert_eq!(verdict["verdict"]["reason"], LINUX_REASON, "{plan:#}");
    let winner = plan["placements"][0]["node_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let loser = if winner == BOX_1 { BOX_2 } else { BOX_1 };
    let out = server.orch(&["job", "plan", file, "--why-not", name_of(loser)]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{}", both(&out));
    assert!(
        text.contains(&format!(
            "  web.frontend[0]: outscored by \"{}\" ({}): ",
            name_of(&winner),
            &winner[..8]
        )),
        "{text}"
    );
    let header: Vec<&str> = text
        .lines()
        .find(|l| l.trim_start().starts_with("PART"))
        .unwrap_or_else(|| panic!("no score table in\n{text}"))
        .split_whitespace()
        .collect();
    assert_eq!(header, ["PART", name_of(loser), name_of(&winner), "DIFF"]);
    assert!(text.contains("    score "), "{text}");
    let out = server.orch(&["job", "plan", file, "--why-not", &winner, "--json"]);
    let picked = &json_of(&out)["why_not"]["groups"][0]["placements"][0]["verdict"];
    assert_eq!(picked["kind"], "picked", "{picked:#}");

    // Nodes that are not one: named, with the closest name; a prefix two
    // ids share lists both. Exit 2, as for any refused request.
    let out = server.orch(&["job", "plan", file, "--why-not", "box-9"]);
    assert_eq!(out.status.code(), Some(2), "{}", both(&out));
    let err = stderr(&out);
    assert!(err.contains("node \"box-9\" not found"), "{err}");
    assert!(err.contains("did you mean \"box-1\"?"), "{err}");
    assert!(err.contains("HTTP 404"), "{err}");
    let out = server.orch(&["job", "plan", file, "--why-not", "aaaa"]);
    assert_eq!(out.status.code(), Some(2), "{}", both(&out));
    let err = stderr(&out);
    assert!(
        err.contains(&format!("matches 2 nodes: {BOX_1}, {BOX_2}")),
        "{err}"
    );

    // Run it; the allocation's record answers for the candidate that lost.
    let out = server.orch(&["job", "run", file]);
    assert_eq!(out.status.code(), Some(0), "{}", both(&out));
    let allocs = server.get("/v1/job/web/allocations");
    let alloc = allocs[0]["id"].as_str().unwrap().to_owned();
    let on = allocs[0]["node_id"].as_str().unwrap().to_owned();
    let other = if on == BOX_1 { BOX_2 } else { BOX_1 };
    let out = server.orch(&["alloc", "status", &alloc[..8], "--why-not", name_of(other)]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{}", both(&out));
    assert_eq!(field(&text, "ID"), alloc, "{text}");
    assert!(
        text.contains(&format!(
            "It was a candidate of the placement, outscored by \"{}\" ({}): ",
            name_of(&on),
            &on[..8]
        )),
        "{text}"
    );

    // The Mac was no candidate: the record keeps no reason, so the answer
    // is the node as it is now, and says so.
    let out = server.orch(&["alloc", "status", &alloc, "--why-not", "mac-1"]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{}", both(&out));
    assert!(
        text.contains(
            "It was not a candidate: the placement scored 2 of 3 nodes (1 filtered, 0 without room, 0 not reached).\n"
        ),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "as the node is now, it is filtered by {LINUX_REASON}.\n"
        )),
        "{text}"
    );
    let out = server.orch(&["alloc", "status", &alloc, "--why-not", "mac-1", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", both(&out));
    let why = json_of(&out);
    assert_schema("AllocWhyNot", &why);
    assert_eq!(why["basis"], "now", "{why:#}");
    assert_eq!(why["verdict"]["reason"], LINUX_REASON, "{why:#}");
    assert_eq!(
        why,
        server.get(&format!("/v1/allocation/{alloc}/why-not/mac-1"))
    );

    // The route itself: an unknown node or allocation is a 404 naming it,
    // an ambiguous prefix a 400, the allocation's own node its pick.
    for (path, status, says) in [
        (
            format!("/v1/allocation/{alloc}/why-not/nosuch"),
            404,
            "node \"nosuch\" not found",
        ),
        (
            format!("/v1/allocation/{alloc}/why-not/aaaa"),
            400,
            "matches 2 nodes",
        ),
        (
            "/v1/allocation/nosuchid/why-not/mac-1".to_owned(),
            404,
            "allocation \"nosuchid\" not found",
        ),
    ] {
        let (got, body) = get_status(&server, &path);
        assert_eq!(got, status, "{path}: {body:#}");
        assert_schema("ErrorBody", &body);
        let message = body["message"].as_str().unwrap();
        assert!(message.contains(says), "{path}: {message}");
    }
    let (got, own) = get_status(&server, &format!("/v1/allocation/{alloc}/why-not/{on}"));
    assert_eq!(got, 200, "{own:#}");
    assert_eq!(own["basis"], "decision", "{own:#}");
    assert_eq!(own["verdict"]["kind"], "picked", "{own:#}");
}

#[test]
fn a_blocked_evaluation_says_why_in_eval_and_job_status() {
    let dir = tempfile::tempdir().unwrap();
    let server = cluster(dir.path());
    // More memory than any node has.
    let file = sleep_job_file(dir.path(), "huge", "frontend", 1, 999_999, "");
    let out = server.orch(&["job", "run", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", both(&out));
    let evals = server.get("/v1/job/huge/evaluations");
    let blocked = evals
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["status"] == "blocked")
        .unwrap_or_else(|| panic!("no blocked evaluation: {evals:#}"))["id"]
        .as_str()
        .unwrap()
        .to_owned();

    let reasons = [
        "Task Group \"frontend\" (failed to place 1 allocation):\n",
        "  * 3 nodes evaluated\n",
        "  * Resources exhausted on 3 nodes\n",
        "  * Dimension \"memory\" exhausted on 3 nodes\n",
    ];
    let waiting = format!(
        "Evaluation \"{}\" waiting for additional capacity to place remainder\n",
        &blocked[..8]
    );
    let out = server.orch(&["eval", "status", &blocked]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{}", both(&out));
    assert_eq!(field(&text, "Status"), "blocked", "{text}");
    assert_eq!(field(&text, "Placement Failures"), "true", "{text}");
    for line in reasons.iter().chain([&waiting.as_str()]) {
        assert!(text.contains(line), "{line:?} in\n{text}");
    }
    assert!(text.contains("1 allocation waiting for a node"), "{text}");

    let out = server.orch(&["job", "status", "huge"]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{}", both(&out));
    assert!(text.contains("\nPlacement Failure\n"), "{text}");
    for line in reasons.iter().chain([&waiting.as_str()]) {
        assert!(text.contains(line), "{line:?} in\n{text}");
    }

    // A node that takes nothing new is not evaluated: the why-not says so,
    // and the failure counts the other nodes only.
    let out = server.orch(&["node", "eligibility", &MAC_1[..8], "--disable"]);
    assert_eq!(out.status.code(), Some(0), "{}", both(&out));
    let file = file.to_str().unwrap();
    let out = server.orch(&["job", "plan", file, "--why-not", "mac-1"]);
    let text = stdout(&out);
    assert!(matches!(out.status.code(), Some(0 | 1)), "{}", both(&out));
    assert!(text.contains("  * 2 nodes evaluated\n"), "{text}");
    assert!(
        text.contains(
            "  1 allocation not placed: not evaluated: the node is ineligible (a placement evaluates only nodes that are ready, eligible and not draining)\n"
        ),
        "{text}"
    );
    let out = server.orch(&["job", "plan", file, "--json", "--why-not", "mac-1"]);
    let plan = json_of(&out);
    assert_schema("JobPlanResponse", &plan);
    let verdict = &plan["why_not"]["groups"][0]["placements"][0]["verdict"];
    assert_eq!(verdict["kind"], "not_evaluated", "{plan:#}");
    assert_eq!(
        plan["failed_tg_allocs"]["frontend"]["nodes_evaluated"], 2,
        "{plan:#}"
    );
}
