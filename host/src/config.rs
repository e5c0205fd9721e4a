//! `orch.toml` (placeholder until the config module lands).
