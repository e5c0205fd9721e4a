#![allow(clippy::unwrap_used, clippy::panic, reason = "tests may")]
use super::*;

fn parse(text: &str) -> Result<Config, ConfigError> {
    Config::parse(text, Path::new("/etc/orch/orch.toml"))
}

/// The one-line messages of an invalid config.
fn errors(text: &str) -> Vec<String> {
    match parse(text) {
        Ok(c) => panic!("accepted: {c:?}"),
        Err(e @ ConfigError::Read { .. }) => panic!("{e}"),
        Err(e) => e.to_string().lines().map(str::to_owned).collect(),
    }
}

#[test]
fn an_empty_file_is_the_defaults() {
    let c = parse("").unwrap();
    assert_eq!(c.data_dir, Path::new("/etc/orch/orch-data"));
    assert_eq!(c.listen.to_string(), "127.0.0.1:4646");
    assert_eq!(c.workers, 2);
    assert_eq!(c.scheduler.scorer, "binpack");
    assert_eq!(c.scheduler.sampling.sampling(), Sampling::default());
    assert_eq!(c.scheduler.limits.limits(), Limits::default());
    assert_eq!(c.state.durability, Durability::Full);
    assert_eq!(c.api.max_body_bytes, 1_048_576);
    assert_eq!(c.base_dir, Path::new("/etc/orch"));
    assert!(!c.runtime_config().fuel);
    assert_eq!(
        c.runtime_config().cache_dir.unwrap(),
        Path::new("/etc/orch/orch-data/components")
    );
}

#[test]
fn every_field() {
    let c = parse(
        r#"
data_dir = "/var/lib/orch"
listen = "[::1]:8080"
workers = 8

[scheduler]
scorer = "builtin:spread"

[scheduler.sampling]
candidates = 10
percent = 25

[scheduler.limits]
deadline_ms = 250
memory_mib = 64
fuel = 1000000

[state]
durability = "normal"

[api]
max_body_bytes = 4096
"#,
    )
    .unwrap();
    assert_eq!(c.data_dir, Path::new("/var/lib/orch"));
    assert_eq!(c.listen.to_string(), "[::1]:8080");
    assert_eq!(c.workers, 8);
    assert_eq!(c.scheduler.scorer, "builtin:spread");
    assert_eq!(
        c.scheduler.sampling.sampling(),
        Sampling {
            candidates: 10,
            percent: 25
        }
    );
    let limits = c.scheduler.limits.limits();
    assert_eq!(limits.deadline, Duration::from_millis(250));
    assert_eq!(limits.memory_bytes, 64 << 20);
    assert_eq!(limits.fuel, Some(1_000_000));
    assert_eq!(
        limits.breaker_threshold,
        Limits::default().breaker_threshold
    );
    assert!(
        c.runtime_config().fuel,
        "a fuel limit needs a metering runtime"
    );
    assert_eq!(c.state.durability, Durability::Normal);
    assert_eq!(c.api.max_body_bytes, 4096);
}

#[test]
fn relative_paths_start_at_the_config_files_folder() {
    let c = Config::parse("data_dir = \"data\"", Path::new("orch.toml")).unwrap();
    let cwd = std::env::current_dir().unwrap();
    assert_eq!(c.base_dir, cwd);
    assert_eq!(c.data_dir, cwd.join("data"));
}

#[test]
fn an_unknown_key_is_placed_and_the_meant_one_suggested() {
    assert_eq!(
        errors("workers = 2\n[scheduler]\nscorr = \"spread\"\n"),
        [
            "/etc/orch/orch.toml:3:1: scheduler.scorr: unknown field `scorr`, expected one of \
          `scorer`, `fallback`, `sampling`, `limits`, `scorers`, `candidates` (did you mean \
          `scorer`?)"
        ]
    );
    assert_eq!(
        errors("[scheduler.limits]\ndeadline = 5\n"),
        [
            "/etc/orch/orch.toml:2:1: scheduler.limits.deadline: unknown field `deadline`, \
          expected one of `deadline_ms`, `memory_mib`, `total_memory_mib`, `fuel` (did you mean \
          `deadline_ms`?)"
        ]
    );
    let top = errors("listne = \"127.0.0.1:1\"\n");
    assert!(top[0].starts_with("/etc/orch/orch.toml:1:1: "), "{top:?}");
    assert!(top[0].ends_with("(did you mean `listen`?)"), "{top:?}");
    // Nothing close: no guess.
    let far = errors("[state]\nengine = \"sqlite\"\n");
    assert!(!far[0].contains("did you mean"), "{far:?}");
}

#[test]
fn a_misspelt_value_is_suggested_too() {
    let e = errors("[state]\ndurability = \"ful\"\n");
    assert!(e[0].starts_with("/etc/orch/orch.toml:2:14: "), "{e:?}");
    assert!(e[0].ends_with("(did you mean `full`?)"), "{e:?}");
}

#[test]
fn a_bad_listen_address_says_how_to_write_one() {
    let e = errors("\nlisten = \"localhost:4646\"\n");
    assert_eq!(
        e,
        [
            "/etc/orch/orch.toml:2:10: listen: `localhost:4646` is not a socket address; \
          write IP:PORT, such as 127.0.0.1:4646 or [::1]:4646 (host names are not looked up)"
        ]
    );
    assert_eq!(errors("listen = \"127.0.0.1\"").len(), 1);
}

#[test]
fn syntax_errors_are_placed() {
    let e = errors("workers = 2\n[scheduler\n");
    assert!(e[0].starts_with("/etc/orch/orch.toml:2:"), "{e:?}");
    assert!(
        e[0].ends_with("(see https://toml.io for the syntax)"),
        "{e:?}"
    );
    let e = errors("workers = \"two\"\n");
    assert!(
        e[0].starts_with("/etc/orch/orch.toml:1:11: workers: "),
        "{e:?}"
    );
}

#[test]
fn ranges_are_checked_all_at_once_in_file_order() {
    let e = errors(
        "workers = 0\n[scheduler.sampling]\npercent = 150\n\
         [scheduler.limits]\ndeadline_ms = 0\nmemory_mib = 8192\nfuel = 0\n",
    );
    assert_eq!(e.len(), 5, "{e:?}");
    assert!(e[0].starts_with("/etc/orch/orch.toml:1:1: workers: 0 is out of range"));
    assert!(e[1].starts_with("/etc/orch/orch.toml:3:1: scheduler.sampling.percent: 150"));
    assert!(e[2].starts_with("/etc/orch/orch.toml:5:1: scheduler.limits.deadline_ms: 0 ms"));
    assert!(e[3].starts_with("/etc/orch/orch.toml:6:1: scheduler.limits.memory_mib: 8192"));
    assert!(e[4].starts_with("/etc/orch/orch.toml:7:1: scheduler.limits.fuel: "));
    assert_eq!(errors("workers = 65").len(), 1);
    assert_eq!(errors("[scheduler.limits]\ndeadline_ms = 60001").len(), 1);
    let e = errors("[scheduler.limits]\nmemory_mib = 2048\ntotal_memory_mib = 512\n");
    assert_eq!(e.len(), 1, "{e:?}");
    assert!(
        e[0].contains("total_memory_mib: 512 MiB is less than memory_mib"),
        "{e:?}"
    );
    // Left to their defaults, problems point at the table that holds them.
    let e = errors("[scheduler.sampling]\ncandidates = 0\n");
    assert!(
        e[0].starts_with("/etc/orch/orch.toml:2:1: scheduler.sampling.candidates: "),
        "{e:?}"
    );
    parse("[scheduler.sampling]\ncandidates = 0\npercent = 10\n").unwrap();
}

#[test]
fn a_missing_scorer_file_is_named_with_the_fix() {
    let e = errors("[scheduler]\nscorer = \"plugins/mine.wasm\"\n");
    assert_eq!(e.len(), 1);
    assert!(
        e[0].starts_with(
            "/etc/orch/orch.toml:2:1: scheduler.scorer: /etc/orch/plugins/mine.wasm does not exist"
        ),
        "{e:?}"
    );
    assert!(e[0].contains("binpack"), "{e:?}");
    let e = errors("[scheduler]\nscorer = \"binpak\"\n");
    assert!(
        e[0].contains("there is no built-in scorer `binpak` (did you mean `binpack`?)"),
        "{e:?}"
    );
    let e = errors("[scheduler]\nscorer = \"builtin:nope\"\n");
    assert!(e[0].contains("no built-in scorer `nope`"), "{e:?}");
    let e = errors("[scheduler]\nscorer = \"\"\n");
    assert!(e[0].contains("no scorer is named"), "{e:?}");
}

#[test]
fn scorer_names() {
    let base = Path::new("/srv");
    let r = |s| ScorerSource::resolve(s, base).unwrap();
    assert_eq!(r("binpack"), ScorerSource::Builtin("binpack"));
    assert_eq!(
        r("builtin:round-robin"),
        ScorerSource::Builtin("round-robin")
    );
    assert_eq!(r("x.wasm"), ScorerSource::File("/srv/x.wasm".into()));
    assert_eq!(r("/abs/y"), ScorerSource::File("/abs/y".into()));
    assert_eq!(r("binpack").name(), "builtin:binpack");
}

#[test]
fn only_restart_only_settings_need_a_restart() {
    let a = parse("").unwrap();
    let mut b = a.clone();
    b.scheduler.scorer = "spread".into();
    assert!(a.restart_needed(&b).is_empty());
    b.listen = "0.0.0.0:1".parse().unwrap();
    b.workers = 3;
    b.state.durability = Durability::Normal;
    assert_eq!(
        a.restart_needed(&b),
        ["listen", "workers", "state.durability"]
    );
}

#[test]
fn the_reloader_can_be_shared_with_a_signal_task() {
    fn send_sync<T: Send + Sync + 'static>() {}
    send_sync::<Reloader>();
    send_sync::<ConfigError>();
    send_sync::<ScorerLoadError>();
}

#[test]
fn the_fallback_is_a_builtin_scorer() {
    let c = parse("[scheduler]\nscorer = \"builtin:spread\"\nfallback = \"binpack\"\n").unwrap();
    assert_eq!(c.scheduler.fallback.as_deref(), Some("binpack"));
    assert_eq!(
        parse("").unwrap().scheduler.fallback,
        None,
        "fail closed by default"
    );
    let e = errors("[scheduler]\nfallback = \"binpak\"\n");
    assert!(
        e[0].contains("scheduler.fallback") && e[0].contains("binpack"),
        "{e:?}"
    );
    let e = errors("[scheduler]\nfallback = \"./mine.wasm\"\n");
    assert!(e[0].contains("is not a built-in scorer"), "{e:?}");
}

#[test]
fn heartbeat_ttl_and_grace() {
    let c = parse("[heartbeat]\nttl_ms = 5000\ngrace_ms = 0\n").unwrap();
    assert_eq!(c.heartbeat.ttl(), Duration::from_secs(5));
    assert_eq!(c.heartbeat.grace(), Duration::ZERO);
    assert_eq!(parse("").unwrap().heartbeat.ttl(), Duration::from_secs(10));
    let e = errors("[heartbeat]\nttl_ms = 10\n");
    assert!(e[0].contains("heartbeat.ttl_ms"), "{e:?}");
    let mut other = parse("").unwrap();
    other.heartbeat.ttl_ms = 20_000;
    assert_eq!(parse("").unwrap().restart_needed(&other), ["heartbeat"]);
}
