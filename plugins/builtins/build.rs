//! Compiles the built-in plugins to components and generates the table that
//! embeds them in the binary.
#![allow(
    clippy::panic,
    clippy::expect_used,
    reason = "a build script reports failure by panicking"
)]

use orch_wasm_build::{Build, build, workspace_root};
use std::fmt::Write as _;
use std::path::PathBuf;

/// (name users write in the config, crate, what kind of plugin)
const BUILTINS: &[(&str, &str, &str)] = &[
    ("binpack", "orch-scorer-binpack", "scorer"),
    ("spread", "orch-scorer-spread", "scorer"),
    ("epvm", "orch-scorer-epvm", "scorer"),
    ("round-robin", "orch-scorer-round-robin", "scorer"),
    ("exec", "orch-driver-exec", "driver"),
    ("oci", "orch-driver-oci", "driver"),
];

fn main() {
    let root = workspace_root(2);
    let packages: Vec<&str> = BUILTINS.iter().map(|(_, p, _)| *p).collect();
    let dir = build(
        &root,
        &Build {
            packages: &packages,
            examples: false,
        },
    );
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let mut table = String::from("&[\n");
    for (name, package, kind) in BUILTINS {
        let file = format!("{}.wasm", package.replace('-', "_"));
        let src = dir.join(&file);
        let dst = out.join(&file);
        std::fs::copy(&src, &dst)
            .unwrap_or_else(|e| panic!("copying {} to {}: {e}", src.display(), dst.display()));
        writeln!(
            table,
            "    Builtin {{ name: {name:?}, kind: {kind:?}, wasm: include_bytes!(concat!(env!(\"OUT_DIR\"), \"/{file}\")) }},"
        )
        .expect("writing to a String");
    }
    table.push(']');
    std::fs::write(out.join("builtins.rs"), table).expect("writing builtins.rs");
}
