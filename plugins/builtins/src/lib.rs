//! The built-in plugins, compiled to `wasm32-wasip2` components at build time
//! and embedded, so `orch` runs with no files beside it. A user's own plugin
//! is loaded from a `.wasm` path instead; both go through the same runtime
//! checks.

/// One embedded plugin.
#[derive(Debug, Clone, Copy)]
pub struct Builtin {
    /// The name the config uses, e.g. `binpack`.
    pub name: &'static str,
    /// `scorer` or `driver` (later also `secrets`).
    pub kind: &'static str,
    /// The component's bytes.
    pub wasm: &'static [u8],
}

/// Every built-in plugin.
pub const BUILTINS: &[Builtin] = include!(concat!(env!("OUT_DIR"), "/builtins.rs"));

/// The built-in called `name`, if there is one.
pub fn get(name: &str) -> Option<&'static Builtin> {
    BUILTINS.iter().find(|b| b.name == name)
}
