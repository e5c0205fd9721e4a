//! The test parts themselves work: a registry on 127.0.0.1 takes a pushed
//! image and the engine runs it; a password registry refuses strangers.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests may"
)]

use orch_testkit::{Registry, docker, push_busybox};

#[test]
fn an_image_pushed_to_the_test_registry_runs() {
    let registry = Registry::start();
    let reference = push_busybox(&registry, "kit/busybox:1");
    // Pull it back from the registry, not from the local tag.
    docker(&["rmi", &reference]);
    docker(&["pull", "--quiet", &reference]);
    let out = docker(&[
        "run",
        "--rm",
        &reference,
        "/bin/sh",
        "-c",
        "echo hi from $(uname -s)",
    ]);
    assert_eq!(out.trim(), "hi from Linux");
    docker(&["rmi", &reference]);
}

#[test]
fn a_password_registry_wants_the_password() {
    let registry = Registry::start_with_password("orch", "s3cret");
    let catalog = format!("http://{}/v2/_catalog", registry.host());
    let out = std::process::Command::new("curl")
        .args(["-s", "-o", "/dev/null", "-w", "%{http_code}", &catalog])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "401");
    let out = std::process::Command::new("curl")
        .args([
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "-u",
            "orch:s3cret",
            &catalog,
        ])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "200");
}
