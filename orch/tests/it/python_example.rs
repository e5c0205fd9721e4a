//! The proof that plugins can be written in any language: the Python scorer
//! in `examples/python-scorer`, built with componentize-py, passes
//! `orch plugin test`.

use std::path::Path;
use std::process::Command;

#[test]
fn the_python_scorer_builds_and_conforms() {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/python-scorer");
    let out_dir = tempfile::tempdir().unwrap();
    let wasm = out_dir.path().join("scorer.wasm");
    let build = Command::new("bash")
        .arg(example.join("build.sh"))
        .arg(&wasm)
        .output()
        .unwrap();
    assert!(
        build.status.success(),
        "building the Python example failed (is componentize-py installed? `pip install componentize-py==0.25.1`, as scripts/setup does):\n{}",
        String::from_utf8_lossy(&build.stderr)
    );

    let cache = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_orch"))
        .args(["plugin", "test", wasm.to_str().unwrap()])
        .env("ORCH_CACHE_DIR", cache.path())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("balanced-python 0.1.0"), "{text}");
    // componentize-py components import filesystem, sockets, clocks and
    // random; all are linked and none is granted.
    assert!(
        text.contains("WASI 0.2 interfaces, linked with nothing granted"),
        "{text}"
    );
}
