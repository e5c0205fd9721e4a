//! Used by build scripts (`plugins/builtins`, `conformance`) to compile
//! workspace crates to `wasm32-wasip2` components with a nested cargo.
//!
//! The nested build has its own target directory (`target/wasm`), so it never
//! waits on the outer build's lock, and every caller shares it, so each
//! plugin is compiled once however many crates embed it.
#![allow(
    clippy::panic,
    clippy::expect_used,
    reason = "a build script reports failure by panicking"
)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// What to build: packages (their `cdylib`) and, optionally, all their examples.
pub struct Build<'a> {
    pub packages: &'a [&'a str],
    pub examples: bool,
}

/// Builds in release mode and returns the directory holding the `.wasm`
/// files (`…/wasm32-wasip2/release`, examples under `examples/`).
///
/// Tells cargo to rerun the calling build script when the plugin sources,
/// the SDK or the WIT change.
pub fn build(workspace: &Path, what: &Build<'_>) -> PathBuf {
    for dir in [
        "plugins",
        "plugin-sdk",
        "wit",
        "conformance/fixtures",
        "Cargo.lock",
    ] {
        println!("cargo:rerun-if-changed={}", workspace.join(dir).display());
    }
    let target_dir = std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| workspace.join("target"), PathBuf::from)
        .join("wasm");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(workspace)
        .args([
            "build",
            "--release",
            "--target",
            "wasm32-wasip2",
            "--target-dir",
        ])
        .arg(&target_dir);
    for p in what.packages {
        cmd.args(["-p", p]);
    }
    if what.examples {
        cmd.args(["--lib", "--examples"]);
    }
    // The outer build's flags are for the host target, not for wasm.
    for var in [
        "RUSTFLAGS",
        "CARGO_ENCODED_RUSTFLAGS",
        "CARGO_BUILD_TARGET",
        "CARGO_TARGET_DIR",
    ] {
        cmd.env_remove(var);
    }
    let status = cmd
        .status()
        .unwrap_or_else(|e| panic!("cannot run cargo to build the wasm plugins: {e}"));
    if !status.success() {
        panic!(
            "building the wasm plugins ({}) failed; see the cargo output above. \
             If the wasm32-wasip2 target is missing, run `rustup target add wasm32-wasip2` \
             or ../shared/toolchain/install-wasm-target.sh",
            what.packages.join(", ")
        );
    }
    target_dir.join("wasm32-wasip2").join("release")
}

/// The workspace root, from a crate `depth` folders below it.
pub fn workspace_root(depth: usize) -> PathBuf {
    let mut dir =
        PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("run from a build script"));
    for _ in 0..depth {
        dir.pop();
    }
    dir
}
