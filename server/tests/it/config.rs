//! `orch.toml` end to end: loading real scorer components (built-in and from
//! a file), refusing bad ones, and the reloader following edits of the file.
//! Waits are "eventually, within 20 s": these machines are shared and slow.

use orch_plugin_runtime::{Runtime, RuntimeConfig};
use orch_server::{
    Config, Lineup, Metrics, Reloaded, Reloader, ScorerLoadError, Shadows, Store, StoreOptions,
};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

const PATIENCE: Duration = Duration::from_secs(20);

fn runtime() -> Runtime {
    Runtime::new(RuntimeConfig::default()).unwrap()
}

fn builtin(name: &str) -> &'static [u8] {
    orch_builtins::get(name).unwrap().wasm
}

fn write_config(dir: &Path, scheduler: &str) -> PathBuf {
    let path = dir.join("orch.toml");
    // Written whole then renamed, as editors do, so the watcher never reads
    // half a file.
    let tmp = dir.join(".orch.toml.tmp");
    std::fs::write(&tmp, format!("workers = 2\n\n{scheduler}")).unwrap();
    std::fs::rename(&tmp, &path).unwrap();
    path
}

fn fixture(case: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../conformance/fixtures/cases")
        .join(case)
        .join("plugin.wasm")
}

/// The lineup `config` starts, on a store in `dir/data`.
fn start(dir: &Path, config: &Config, runtime: Runtime) -> Result<Lineup, ScorerLoadError> {
    let data = dir.join("data");
    std::fs::create_dir_all(&data).unwrap();
    let store = Store::open(&data.join("state.db"), StoreOptions::default()).unwrap();
    let metrics = Metrics::new();
    let shadows = Shadows::start(store.clone(), &metrics).unwrap();
    Lineup::start(config, runtime, &store, shadows, &metrics)
}

#[test]
fn loads_the_builtin_binpack_by_default() {
    let dir = tempfile::tempdir().unwrap();
    let config = Config::parse("", &dir.path().join("orch.toml")).unwrap();
    let lineup = start(dir.path(), &config, runtime()).unwrap();
    let scheduler = lineup.current().get();
    let scorer = scheduler.scorer();
    assert!(scorer.label().starts_with("binpack "), "{}", scorer.label());
    assert!(
        scorer.digest().starts_with("sha256:"),
        "{}",
        scorer.digest()
    );
    let answer = scorer
        .score(&orch_conformance::typical_request(5, 2))
        .unwrap();
    assert_eq!(answer.scores.len(), 5);
}

#[test]
fn loads_a_scorer_from_a_path_relative_to_the_config() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("plugins")).unwrap();
    std::fs::write(dir.path().join("plugins/mine.wasm"), builtin("spread")).unwrap();
    let path = write_config(dir.path(), "[scheduler]\nscorer = \"plugins/mine.wasm\"\n");
    let config = Config::load(&path).unwrap();
    let lineup = start(dir.path(), &config, runtime()).unwrap();
    let scheduler = lineup.current().get();
    let scorer = scheduler.scorer();
    assert!(scorer.label().starts_with("spread "), "{}", scorer.label());
    assert_eq!(
        scorer.digest(),
        orch_plugin_runtime::Digest::of(builtin("spread")).to_string()
    );
}

#[test]
fn a_core_module_is_refused_by_name_and_digest() {
    let dir = tempfile::tempdir().unwrap();
    let wasm = fixture("core-module");
    let text = format!("[scheduler]\nscorer = {:?}\n", wasm.display().to_string());
    let config = Config::parse(&text, &dir.path().join("orch.toml")).unwrap();
    let e = start(dir.path(), &config, runtime())
        .err()
        .expect("a core module is not a scorer");
    let digest = orch_plugin_runtime::Digest::of(&std::fs::read(&wasm).unwrap());
    assert_eq!(e.digest(), Some(digest));
    let message = e.to_string();
    assert!(message.contains(&wasm.display().to_string()), "{message}");
    assert!(message.contains(&digest.short()), "{message}");
    assert!(message.contains("core wasm module"), "{message}");
}

#[test]
fn junk_is_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("junk.wasm"), b"not wasm at all").unwrap();
    let path = write_config(dir.path(), "[scheduler]\nscorer = \"junk.wasm\"\n");
    let config = Config::load(&path).unwrap();
    let e = start(dir.path(), &config, runtime())
        .err()
        .expect("junk is not a scorer");
    assert!(matches!(e, ScorerLoadError::Plugin { .. }), "{e:?}");
    let message = e.to_string();
    assert!(message.contains("junk.wasm"), "{message}");
    assert!(message.contains("orch plugin test"), "{message}");
}

#[test]
fn a_fuel_limit_needs_a_metering_runtime() {
    let dir = tempfile::tempdir().unwrap();
    let text = "[scheduler.limits]\nfuel = 1000000000\n";
    let config = Config::parse(text, &dir.path().join("orch.toml")).unwrap();
    let e = start(dir.path(), &config, runtime()).err().unwrap();
    assert!(matches!(e, ScorerLoadError::FuelNotMetered { .. }), "{e}");
    let metering = Runtime::new(config.runtime_config()).unwrap();
    start(&dir.path().join("metering"), &config, metering).unwrap();
}

/// A lineup loaded from `path` with its store in `dir/data`, and a
/// reloader on the file.
fn reloader(path: &Path) -> (Reloader, Arc<Lineup>) {
    let config = Config::load(path).unwrap();
    let data = path.parent().unwrap().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let store = Store::open(&data.join("state.db"), StoreOptions::default()).unwrap();
    let metrics = Metrics::new();
    let shadows = Shadows::start(store.clone(), &metrics).unwrap();
    let lineup = Arc::new(Lineup::start(&config, runtime(), &store, shadows, &metrics).unwrap());
    let reloader = Reloader::new(path, config, lineup.clone());
    (reloader, lineup)
}

/// The primary's label, once it starts with `prefix` (within `PATIENCE`).
fn primary_becomes(lineup: &Lineup, prefix: &str) -> String {
    let mut label = String::new();
    eventually(&format!("the primary to become {prefix}"), || {
        label = lineup.current().get().scorer().label().to_owned();
        label.starts_with(prefix)
    });
    label
}

/// Polls `check` until it holds, failing the test after `PATIENCE`.
fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let started = Instant::now();
    while !check() {
        assert!(
            started.elapsed() < PATIENCE,
            "not within {PATIENCE:?}: {what}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn the_watcher_follows_the_file_and_keeps_the_old_scorer_on_a_bad_one() {
    let _ = tracing_subscriber::fmt().with_test_writer().try_init();
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(dir.path(), "[scheduler]\nscorer = \"binpack\"\n");
    let (reloader, lineup) = reloader(&path);
    reloader.spawn_watch().unwrap();
    reloader.spawn_watch().unwrap();

    write_config(dir.path(), "[scheduler]\nscorer = \"spread\"\n");
    primary_becomes(&lineup, "spread ");

    // Junk where a scorer should be: refused, nothing handed over.
    std::fs::write(dir.path().join("junk.wasm"), b"\0asm junk").unwrap();
    write_config(dir.path(), "[scheduler]\nscorer = \"junk.wasm\"\n");
    // The watcher may be refusing it at the same time; either way the
    // answer is a refusal and the scheduler stays.
    match reloader.reload_now() {
        Reloaded::ScorerRefused(e) => assert!(e.to_string().contains("junk.wasm"), "{e}"),
        other => panic!("{other:?}"),
    }
    // A scorer file that is not there is refused with the config.
    write_config(dir.path(), "[scheduler]\nscorer = \"gone.wasm\"\n");
    match reloader.reload_now() {
        Reloaded::ConfigRefused(e) => assert!(e.to_string().contains("gone.wasm"), "{e}"),
        other => panic!("{other:?}"),
    }
    let label = lineup.current().get().scorer().label().to_owned();
    assert!(
        label.starts_with("spread "),
        "a refused scorer was applied: {label}"
    );

    // Back to a good one: applied again.
    write_config(dir.path(), "[scheduler]\nscorer = \"round-robin\"\n");
    primary_becomes(&lineup, "round-robin ");
    reloader.stop_watch();
}

#[test]
fn reload_now_without_a_change_does_nothing() {
    let _ = tracing_subscriber::fmt().with_test_writer().try_init();
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(dir.path(), "listen = \"127.0.0.1:4646\"\n");
    let (reloader, lineup) = reloader(&path);
    let before = Arc::as_ptr(&lineup.current().get());
    assert!(matches!(reloader.reload_now(), Reloaded::Unchanged));
    // A setting that needs a restart is not applied (and is logged).
    let text = "listen = \"127.0.0.1:9999\"\nworkers = 4\n";
    std::fs::write(&path, text).unwrap();
    assert!(matches!(reloader.reload_now(), Reloaded::Unchanged));
    assert_eq!(
        before,
        Arc::as_ptr(&lineup.current().get()),
        "the scheduler was replaced"
    );
}

#[test]
fn sampling_alone_keeps_the_scorer_and_a_rebuilt_file_replaces_it() {
    let dir = tempfile::tempdir().unwrap();
    let wasm = dir.path().join("mine.wasm");
    std::fs::write(&wasm, builtin("binpack")).unwrap();
    let path = write_config(dir.path(), "[scheduler]\nscorer = \"mine.wasm\"\n");
    let (reloader, lineup) = reloader(&path);

    write_config(
        dir.path(),
        "[scheduler]\nscorer = \"mine.wasm\"\n[scheduler.sampling]\ncandidates = 8\n",
    );
    let Reloaded::Applied { label, digest } = reloader.reload_now() else {
        panic!("sampling change not applied");
    };
    assert!(label.starts_with("binpack "), "{label}");
    let now = lineup.current().get();
    assert_eq!(
        (now.scorer().digest(), now.sampling().candidates),
        (digest.as_str(), 8)
    );

    // The same path with new bytes, then SIGHUP.
    std::fs::write(&wasm, builtin("epvm")).unwrap();
    let Reloaded::Applied { label, digest: new } = reloader.reload_now() else {
        panic!("rebuilt scorer not applied");
    };
    assert!(label.starts_with("epvm "), "{label}");
    assert_ne!(new, digest);
    assert!(matches!(reloader.reload_now(), Reloaded::Unchanged));
}

#[test]
fn dropping_the_reloader_stops_its_watcher() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(dir.path(), "");
    let (reloader, lineup) = reloader(&path);
    reloader.spawn_watch().unwrap();
    drop(reloader);
    // The thread held the only other reference to the lineup: once it has
    // exited, the test holds the last.
    eventually("the watch thread to exit", || {
        Arc::strong_count(&lineup) == 1
    });
}

#[test]
fn a_reload_adds_and_removes_the_fallback() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(dir.path(), "[scheduler]\nscorer = \"spread\"\n");
    let (reloader, lineup) = reloader(&path);
    assert!(
        lineup.current().get().fallback().is_none(),
        "fails closed by default"
    );

    write_config(
        dir.path(),
        "[scheduler]\nscorer = \"spread\"\nfallback = \"binpack\"\n",
    );
    assert!(matches!(reloader.reload_now(), Reloaded::Applied { .. }));
    let fallback = lineup
        .current()
        .get()
        .fallback()
        .map(|f| f.label().to_owned());
    assert!(fallback.is_some_and(|l| l.starts_with("binpack ")));

    write_config(dir.path(), "[scheduler]\nscorer = \"spread\"\n");
    assert!(matches!(reloader.reload_now(), Reloaded::Applied { .. }));
    assert!(lineup.current().get().fallback().is_none());
    assert!(matches!(reloader.reload_now(), Reloaded::Unchanged));
}
