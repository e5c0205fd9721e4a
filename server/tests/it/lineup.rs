//! The lineup's changes on a real store with real scorer components: a
//! scorer named through the API is read only from under the config's
//! folder, and never beyond a size.

use orch_model::ScorerSpec;
use orch_server::{
    Change, Config, Lineup, LineupError, MAX_SCORER_BYTES, Metrics, ScorerLoadError, Shadows,
    Store, StoreOptions,
};
use std::path::Path;

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

fn put_scorer(name: &str, plugin: &str) -> Change {
    Change::PutScorer {
        name: name.into(),
        spec: ScorerSpec::plugin(plugin),
    }
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
