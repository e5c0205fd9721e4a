//! The runtime against real components (the embedded built-ins).

use orch_plugin_runtime::{Limits, PluginError, Runtime, RuntimeConfig, WorldKind};

fn binpack() -> &'static [u8] {
    orch_builtins::get("binpack").unwrap().wasm
}

fn with_cache(dir: &std::path::Path) -> Runtime {
    Runtime::new(RuntimeConfig {
        cache_dir: Some(dir.to_owned()),
        ..RuntimeConfig::default()
    })
    .unwrap()
}

fn cache_files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    std::fs::read_dir(dir)
        .map(|d| d.map(|e| e.unwrap().path()).collect())
        .unwrap_or_default()
}

#[test]
fn compiled_components_are_cached_on_disk_by_digest() {
    let dir = tempfile::tempdir().unwrap();
    let limits = Limits::default();
    let first = with_cache(dir.path())
        .load("binpack", binpack(), &limits)
        .unwrap();
    let files = cache_files(dir.path());
    assert_eq!(files.len(), 1, "{files:?}");
    let file = files[0].file_name().unwrap().to_string_lossy().to_string();
    assert!(file.starts_with(&first.digest().hex()), "{file}");

    // A new runtime (a restart) finds it and the component works.
    let runtime = with_cache(dir.path());
    let again = runtime.load("binpack", binpack(), &limits).unwrap();
    assert_eq!(again.digest(), first.digest());
    let scorer = runtime.scorer(&again, limits.clone()).unwrap();
    assert_eq!(scorer.info().unwrap().name, "binpack");
    assert_eq!(cache_files(dir.path()).len(), 1);
}

#[test]
fn a_corrupt_cache_file_is_recompiled_not_trusted() {
    let dir = tempfile::tempdir().unwrap();
    let limits = Limits::default();
    with_cache(dir.path())
        .load("binpack", binpack(), &limits)
        .unwrap();
    let file = cache_files(dir.path()).remove(0);
    std::fs::write(&file, b"garbage").unwrap();

    let runtime = with_cache(dir.path());
    let component = runtime.load("binpack", binpack(), &limits).unwrap();
    let scorer = runtime.scorer(&component, limits).unwrap();
    assert_eq!(scorer.info().unwrap().name, "binpack");
    assert!(
        std::fs::read(&file).unwrap().len() > 1000,
        "the good code was written back"
    );
}

#[test]
fn inspect_reads_world_and_imports_without_running_anything() {
    let runtime = Runtime::new(RuntimeConfig::default()).unwrap();
    let c = runtime
        .load(
            "spread",
            orch_builtins::get("spread").unwrap().wasm,
            &Limits::default(),
        )
        .unwrap();
    let i = runtime.inspect(&c);
    assert_eq!(i.world, Some(WorldKind::Scorer));
    assert_eq!(
        i.world_export.as_deref(),
        Some("orch:scheduler/scorer@0.1.0")
    );
    assert!(i.version_supported);
    assert!(
        i.imports
            .iter()
            .all(|n| n.starts_with("wasi:") || n.starts_with("orch:types/"))
    );
    assert_eq!(i.exports, vec!["orch:scheduler/scorer@0.1.0"]);
}

#[test]
fn bytes_that_are_not_a_component_get_a_clear_error() {
    let runtime = Runtime::new(RuntimeConfig::default()).unwrap();
    let limits = Limits::default();
    let err = |bytes: &[u8]| {
        runtime
            .load("x.wasm", bytes, &limits)
            .err()
            .unwrap()
            .to_string()
    };
    assert!(err(b"").contains("does not start with the wasm magic bytes"));
    assert!(err(b"\0asm\x01\0\0\0").contains("it is a core wasm module"));
    // A component preamble followed by garbage fails in the compiler.
    let e = runtime
        .load("x.wasm", b"\0asm\x0d\0\x01\0garbage", &limits)
        .err()
        .unwrap();
    assert!(matches!(e, PluginError::NotAComponent { .. }), "{e}");
    assert!(e.to_string().starts_with("plugin x.wasm@"), "{e}");
}

#[test]
fn builtins_rank_nodes_as_their_algorithms_say() {
    use orch_plugin_runtime::{Node, NodeColumns, Resources, ScoreRequest};
    let runtime = Runtime::new(RuntimeConfig::default()).unwrap();
    let cap = Resources {
        cpu_mhz: 4000,
        memory_mib: 8192,
        disk_mib: 10_000,
    };
    let empty = Node {
        capacity: cap,
        allocated: Resources {
            cpu_mhz: 0,
            memory_mib: 0,
            disk_mib: 0,
        },
        job_allocs: 0,
        total_allocs: 0,
    };
    let busy = Node {
        allocated: Resources {
            cpu_mhz: 3000,
            memory_mib: 6000,
            disk_mib: 5000,
        },
        total_allocs: 5,
        ..empty
    };
    let request = ScoreRequest {
        placement: 1,
        job_priority: 50,
        ask: Resources {
            cpu_mhz: 500,
            memory_mib: 512,
            disk_mib: 100,
        },
        nodes: NodeColumns::from_nodes(&[empty, busy]),
        attribute_names: vec![],
        strings: vec![],
        attributes: vec![],
    };
    let best = |name: &str| {
        let c = runtime
            .load(
                name,
                orch_builtins::get(name).unwrap().wasm,
                &Limits::default(),
            )
            .unwrap();
        let s = runtime
            .scorer(&c, Limits::default())
            .unwrap()
            .score(&request)
            .unwrap();
        let scores = s.response.scores;
        if scores[0] > scores[1] { 0 } else { 1 }
    };
    assert_eq!(best("binpack"), 1, "binpack fills the busy node");
    assert_eq!(best("spread"), 0, "spread prefers the empty node");
    assert_eq!(
        best("epvm"),
        0,
        "E-PVM's convex cost prefers the empty node"
    );
    assert_eq!(
        best("round-robin"),
        1,
        "placement 1 of 2 nodes starts at node 1"
    );
}

#[test]
fn a_plugin_over_its_total_memory_budget_is_told_which_limit_it_hit() {
    use orch_plugin_runtime::MemoryScope;
    let runtime = Runtime::new(RuntimeConfig::default()).unwrap();
    // Less than any instance starts with: the first instantiation is refused.
    let limits = Limits {
        total_memory_bytes: 64 << 10,
        ..Limits::default()
    };
    let component = runtime.load("binpack", binpack(), &limits).unwrap();
    let scorer = runtime.scorer(&component, limits).unwrap();
    let err = scorer.info().unwrap_err();
    let PluginError::MemoryLimit {
        requested,
        cap,
        scope: MemoryScope::Plugin { together },
        ..
    } = &err
    else {
        panic!("expected the total budget to refuse it: {err}")
    };
    assert_eq!(*cap, 64 << 10);
    assert!(together > cap && requested <= together, "{err}");
    assert_eq!(err.kind(), "memory");
    assert!(err.is_fault());
    let message = err.to_string();
    assert!(message.starts_with("plugin binpack@"), "{message}");
    assert!(
        message.contains(
            "over the plugin's total memory budget of 65536 bytes (not the per-instance cap), and was stopped; raise total_memory_mib"
        ),
        "{message}"
    );
    // The refused store gave back what it had taken.
    assert_eq!(scorer.memory_held(), 0);

    // The per-instance cap says it is the instance's own.
    let limits = Limits {
        memory_bytes: 64 << 10,
        ..Limits::default()
    };
    let scorer = runtime.scorer(&component, limits).unwrap();
    let err = scorer.info().unwrap_err();
    assert!(
        matches!(
            err,
            PluginError::MemoryLimit {
                scope: MemoryScope::Instance,
                cap: 65536,
                ..
            }
        ),
        "{err}"
    );
    assert!(
        err.to_string().contains("over its cap of 65536 bytes"),
        "{err}"
    );
}
