//! The lineup's changes on a real store with real scorer components: a
//! change in progress never holds up a reader; a change the store refuses
//! changes nothing; a scorer named through the API is read only from under
//! the config's folder and never beyond a size; scorers nothing uses or
//! names are let go; and stored settings that no longer fit the file (stale)
//! block neither reloads nor the changes that mend them.

use orch_model::{Candidate, CandidateMode, ScorerSpec};
use orch_server::{
    Change, Config, Lineup, LineupError, MAX_SCORER_BYTES, Metrics, Reloaded, ScorerLoadError,
    Shadows, Store, StoreOptions,
};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

/// How long a test waits for what must happen before calling it a failure
/// (these machines are shared and slow); never a measure of speed.
const PATIENCE: Duration = Duration::from_secs(20);

/// A config folder with a store in it.
struct Rig {
    dir: tempfile::TempDir,
    store: Store,
}

impl Rig {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("state.db"), StoreOptions::default()).unwrap();
        Self { dir, store }
    }

    fn base(&self) -> &Path {
        self.dir.path()
    }

    /// `orch.toml` in the folder, with `text`, as the server reads it.
    fn config(&self, text: &str) -> Config {
        let path = self.base().join("orch.toml");
        std::fs::write(&path, text).unwrap();
        Config::load(&path).unwrap()
    }

    /// A lineup started from `text` on this rig's store.
    fn start(&self, text: &str) -> Result<Lineup, ScorerLoadError> {
        let config = self.config(text);
        let runtime = orch_plugin_runtime::Runtime::new(config.runtime_config()).unwrap();
        let metrics = Metrics::new();
        let shadows = Shadows::start(self.store.clone(), &metrics).unwrap();
        Lineup::start(&config, runtime, &self.store, shadows, &metrics)
    }
}

fn shadow() -> Change {
    Change::PutCandidate {
        name: "spread".into(),
        candidate: Candidate {
            mode: CandidateMode::Shadow,
            weight: None,
            jobs: Vec::new(),
        },
    }
}

fn put_scorer(name: &str, plugin: &str) -> Change {
    Change::PutScorer {
        name: name.into(),
        spec: ScorerSpec::plugin(plugin),
    }
}

#[test]
fn status_answers_while_a_change_waits_on_a_registry() {
    let rig = Rig::new();
    let lineup = Arc::new(rig.start("").unwrap());
    let before = lineup.status();
    // A registry that takes the pull's connection and answers nothing
    // until the test has read the status.
    let registry = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = registry.local_addr().unwrap().port();
    let plugin = format!(
        "oci://127.0.0.1:{port}/slow/scorer@sha256:{}",
        "ab".repeat(32)
    );
    let finished = Arc::new(AtomicBool::new(false));
    let changing = std::thread::spawn({
        let (lineup, store, finished) = (lineup.clone(), rig.store.clone(), finished.clone());
        move || {
            let made = lineup.change(&store, put_scorer("slow", &plugin));
            finished.store(true, Ordering::SeqCst);
            made
        }
    });
    // The change is under way: its pull has reached the registry.
    let (pull, _) = registry.accept().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn({
        let lineup = lineup.clone();
        move || {
            let _ = tx.send((lineup.status(), lineup.scorer_files()));
        }
    });
    // PATIENCE only bounds a failure: without an answer, the registry is
    // let go and the test fails.
    let read = rx.recv_timeout(PATIENCE);
    let finished_before_read = finished.load(Ordering::SeqCst);
    drop(registry);
    drop(pull);
    let made = changing.join().unwrap();
    let (status, files) = read.expect("status() waited for the change in progress");
    assert!(!finished_before_read, "the change finished first");
    assert_eq!(status.settings, before.settings);
    assert_eq!(status.running, before.running);
    assert!(files.is_empty(), "{files:?}");
    // The registry answered nothing: refused, and nothing changed.
    assert!(
        matches!(
            made,
            Err(LineupError::Scorer(ScorerLoadError::Registry { .. }))
        ),
        "{:?}",
        made.err()
    );
    assert_eq!(lineup.status().settings, before.settings);
}

#[test]
fn a_change_the_store_refuses_leaves_the_status_as_it_was() {
    let rig = Rig::new();
    let lineup = rig.start("").unwrap();
    let before = lineup.status();
    // The database itself refuses to write the settings.
    let db = rusqlite::Connection::open(rig.base().join("state.db")).unwrap();
    db.execute_batch(
        "CREATE TRIGGER refuse_settings BEFORE INSERT ON settings
         BEGIN SELECT RAISE(ABORT, 'refused by the test'); END;
         CREATE TRIGGER refuse_settings_update BEFORE UPDATE ON settings
         BEGIN SELECT RAISE(ABORT, 'refused by the test'); END;",
    )
    .unwrap();
    let e = lineup.change(&rig.store, shadow()).unwrap_err();
    assert!(matches!(e, LineupError::Store(_)), "{e:?}");
    assert!(e.to_string().contains("refused by the test"), "{e}");
    let after = lineup.status();
    assert_eq!(after.settings, before.settings);
    assert_eq!(
        after.running, before.running,
        "a role not in force is shown"
    );
    assert!(lineup.shadows().stats().is_empty(), "a shadow runs");

    // Once the store takes it, the same change is made.
    db.execute_batch("DROP TRIGGER refuse_settings; DROP TRIGGER refuse_settings_update;")
        .unwrap();
    let status = lineup.change(&rig.store, shadow()).unwrap();
    assert!(
        status.running.contains_key("spread"),
        "{:?}",
        status.running
    );
}

/// `plugin` put through the API as scorer `far`: the one problem it makes.
fn refused_plugin(lineup: &Lineup, store: &Store, plugin: &str) -> orch_model::Problem {
    match lineup.change(store, put_scorer("far", plugin)) {
        Err(LineupError::Invalid { mut problems }) if problems.len() == 1 => problems.remove(0),
        other => panic!("{plugin}: {:?}", other.map(|s| s.settings.clone())),
    }
}

#[test]
fn a_scorer_named_through_the_api_is_read_only_from_under_the_config_folder() {
    let root = tempfile::tempdir().unwrap();
    let outside = root.path().join("outside.wasm");
    std::fs::write(&outside, orch_builtins::get("spread").unwrap().wasm).unwrap();
    let rig = Rig {
        dir: tempfile::tempdir_in(root.path()).unwrap(),
        store: Store::open(&root.path().join("state.db"), StoreOptions::default()).unwrap(),
    };
    let base = rig.base().to_path_buf();
    std::os::unix::fs::symlink(&outside, base.join("link.wasm")).unwrap();
    std::os::unix::fs::symlink(root.path(), base.join("elsewhere")).unwrap();
    std::fs::create_dir(base.join("plugins")).unwrap();
    std::fs::copy(&outside, base.join("plugins/mine.wasm")).unwrap();
    let lineup = rig.start("").unwrap();
    let before = lineup.status();

    let escapes: Vec<String> = vec![
        outside.display().to_string(),
        "../outside.wasm".into(),
        "plugins/../../outside.wasm".into(),
        "link.wasm".into(),
        "elsewhere/outside.wasm".into(),
        // Not there: said the same way, so the answer tells nothing.
        "elsewhere/nothing.wasm".into(),
        "/nonexistent/x.wasm".into(),
        "/etc/passwd".into(),
    ];
    for plugin in &escapes {
        let p = refused_plugin(&lineup, &rig.store, plugin);
        assert_eq!(p.field, "scheduler.scorers.far.plugin", "{plugin}: {p}");
        assert!(p.message.contains("is not under"), "{plugin}: {p}");
        let hint = p.hint.clone().unwrap_or_default();
        assert!(
            hint.contains(&base.display().to_string()) && hint.contains("oci://"),
            "{plugin}: {p}"
        );
        for oracle in ["does not exist", "is not a file", "sha256:"] {
            assert!(!p.to_string().contains(oracle), "{plugin}: {p}");
        }
    }
    assert_eq!(lineup.status().settings, before.settings);

    // Under the folder: taken.
    let status = lineup
        .change(&rig.store, put_scorer("mine", "plugins/mine.wasm"))
        .unwrap();
    assert!(status.settings.scorers.contains_key("mine"));

    // A file swapped for a link to outside after it was taken: the next
    // start finds the stored setting out of bounds and runs without it.
    let mine = lineup.change(
        &rig.store,
        Change::PutCandidate {
            name: "mine".into(),
            candidate: Candidate {
                mode: CandidateMode::Shadow,
                weight: None,
                jobs: Vec::new(),
            },
        },
    );
    assert!(mine.is_ok(), "{:?}", mine.err());
    drop(lineup);
    std::fs::remove_file(base.join("plugins/mine.wasm")).unwrap();
    std::os::unix::fs::symlink(&outside, base.join("plugins/mine.wasm")).unwrap();
    let restarted = rig.start("").unwrap();
    let why = restarted.status().stale.clone().expect("stale settings");
    assert!(why.contains("is not under"), "{why}");
    assert!(!restarted.status().running.contains_key("mine"));
    drop(restarted);

    // A FIFO under the folder is refused, not waited on.
    let fifo = base.join("plugins/fifo.wasm");
    assert!(
        std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    let lineup = rig.start("").unwrap();
    let refused = lineup.change(&rig.store, put_scorer("fifo", "plugins/fifo.wasm"));
    assert!(refused.is_err(), "a FIFO was taken as a scorer");

    // The config file's own paths are the operator's: not held to it.
    let text = format!(
        "[scheduler.scorers.far]\nplugin = {:?}\n",
        outside.display().to_string()
    );
    let started = rig.start(&text).unwrap();
    assert!(started.status().settings.scorers.contains_key("far"));
}

#[test]
fn a_scorer_file_larger_than_the_cap_is_refused() {
    let rig = Rig::new();
    let big = std::fs::File::create(rig.base().join("big.wasm")).unwrap();
    big.set_len(MAX_SCORER_BYTES + 1).unwrap();
    let lineup = rig.start("").unwrap();
    let e = lineup
        .change(&rig.store, put_scorer("big", "big.wasm"))
        .unwrap_err();
    assert!(
        matches!(e, LineupError::Scorer(ScorerLoadError::TooLarge { .. })),
        "{e:?}"
    );
    assert!(e.to_string().contains("larger than 64 MiB"), "{e}");
    // From the config file too.
    let e = rig
        .start("[scheduler]\nscorer = \"big.wasm\"\n")
        .err()
        .unwrap();
    assert!(matches!(e, ScorerLoadError::TooLarge { .. }), "{e:?}");
}

/// Polls `check` until it holds, failing the test after `PATIENCE`.
fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let started = Instant::now();
    while !check() {
        assert!(
            started.elapsed() < PATIENCE,
            "not within {PATIENCE:?}: {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn scorers_nothing_uses_or_names_are_let_go() {
    let rig = Rig::new();
    let lineup = rig.start("").unwrap();
    let tight = Change::PutScorer {
        name: "tight".into(),
        spec: ScorerSpec {
            deadline_ms: Some(77),
            ..ScorerSpec::plugin("builtin:spread")
        },
    };
    lineup.change(&rig.store, tight).unwrap();
    let split = Change::PutCandidate {
        name: "tight".into(),
        candidate: Candidate {
            mode: CandidateMode::Split,
            weight: Some(10),
            jobs: Vec::new(),
        },
    };
    lineup.change(&rig.store, split).unwrap();
    let weak = Arc::downgrade(&lineup.current().get().splits()[0].scorer);
    let remove = |name: &str| Change::RemoveCandidate { name: name.into() };
    lineup.change(&rig.store, remove("tight")).unwrap();
    // Known by name still: kept, warm, for the next role it gets.
    assert!(weak.upgrade().is_some(), "a named scorer was let go");
    let forget = Change::RemoveScorer {
        name: "tight".into(),
    };
    lineup.change(&rig.store, forget).unwrap();
    eventually("the forgotten scorer to be let go", || {
        weak.upgrade().is_none()
    });
}

const MINE: &str = "[scheduler.scorers.mine]\nplugin = \"builtin:spread\"\n";

/// A lineup whose stored settings name `mine`, a scorer its config file
/// no longer lists.
fn stale(rig: &Rig) -> Lineup {
    let first = rig.start(MINE).unwrap();
    let candidate = Change::PutCandidate {
        name: "mine".into(),
        candidate: Candidate {
            mode: CandidateMode::Shadow,
            weight: None,
            jobs: Vec::new(),
        },
    };
    first.change(&rig.store, candidate).unwrap();
    drop(first);
    let lineup = rig.start("").unwrap();
    let why = lineup.status().stale.clone().expect("stale settings");
    assert!(why.contains("mine"), "{why}");
    assert!(lineup.status().settings.candidates.is_empty());
    lineup
}

#[test]
fn a_reload_while_stale_applies_the_file_and_mends_when_it_fits_again() {
    let rig = Rig::new();
    let lineup = stale(&rig);
    // An edit that still leaves `mine` out: applied, alone, still stale.
    let edit = rig.config("[scheduler.sampling]\ncandidates = 8\n");
    let reloaded = lineup.set_file(&edit);
    assert!(matches!(reloaded, Reloaded::Applied { .. }), "{reloaded:?}");
    let status = lineup.status();
    assert!(status.stale.as_deref().is_some_and(|w| w.contains("mine")));
    assert!(status.settings.candidates.is_empty());
    assert_eq!(lineup.current().get().sampling().candidates, 8);

    // `mine` is back in the file: the stored candidate is in force again.
    let reloaded = lineup.set_file(&rig.config(MINE));
    assert!(matches!(reloaded, Reloaded::Applied { .. }), "{reloaded:?}");
    let status = lineup.status();
    assert_eq!(status.stale, None);
    assert!(status.running.contains_key("mine"), "{:?}", status.running);
}

#[test]
fn a_change_while_stale_is_made_when_it_mends_and_otherwise_says_why() {
    let rig = Rig::new();
    let lineup = stale(&rig);
    let epvm = Change::PutCandidate {
        name: "epvm".into(),
        candidate: Candidate {
            mode: CandidateMode::Shadow,
            weight: None,
            jobs: Vec::new(),
        },
    };
    let e = lineup.change(&rig.store, epvm).unwrap_err();
    assert!(matches!(e, LineupError::Stale { .. }), "{e:?}");
    let text = e.to_string();
    for part in [
        "no scorer is named \"mine\"",
        "not in force",
        "orch scheduler reset",
    ] {
        assert!(text.contains(part), "{part}: {text}");
    }
    assert!(lineup.status().stale.is_some());

    // Naming `mine` again mends what was stored: made, and in force.
    let status = lineup
        .change(&rig.store, put_scorer("mine", "builtin:spread"))
        .unwrap();
    assert_eq!(status.stale, None);
    assert!(status.running.contains_key("mine"), "{:?}", status.running);
}

#[test]
fn files_of_scorers_in_force_are_watched() {
    let rig = Rig::new();
    std::fs::write(
        rig.base().join("mine.wasm"),
        orch_builtins::get("spread").unwrap().wasm,
    )
    .unwrap();
    let lineup = rig.start("[scheduler]\nscorer = \"mine.wasm\"\n").unwrap();
    let files: Vec<PathBuf> = lineup.scorer_files();
    assert_eq!(files, vec![rig.base().join("mine.wasm")]);
}
