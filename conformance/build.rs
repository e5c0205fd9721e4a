//! Embeds the conformance cases (`cases/<kind>/*.toml`) so `orch plugin test`
//! needs no files beside the binary, and builds the misbehaving fixture
//! plugins the suite's own tests run it against.
#![allow(
    clippy::panic,
    clippy::expect_used,
    reason = "a build script reports failure by panicking"
)]

use orch_wasm_build::{Build, build, workspace_root};
use std::fmt::Write as _;
use std::path::PathBuf;

fn main() {
    let here = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets it"));
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));

    let cases = here.join("cases");
    println!("cargo:rerun-if-changed={}", cases.display());
    let mut table = String::from("&[\n");
    let mut kinds: Vec<_> = std::fs::read_dir(&cases)
        .expect("reading conformance/cases")
        .map(|e| e.expect("reading conformance/cases").path())
        .filter(|p| p.is_dir())
        .collect();
    kinds.sort();
    for kind in kinds {
        let mut files: Vec<_> = std::fs::read_dir(&kind)
            .expect("reading a cases folder")
            .map(|e| e.expect("reading a cases folder").path())
            .filter(|p| p.extension().is_some_and(|e| e == "toml"))
            .collect();
        files.sort();
        for file in files {
            let kind = kind.file_name().expect("a folder name").to_string_lossy();
            let name = file.file_stem().expect("a file name").to_string_lossy();
            writeln!(
                table,
                "    ({kind:?}, {name:?}, include_str!({:?})),",
                file.display().to_string()
            )
            .expect("writing to a String");
        }
    }
    table.push(']');
    std::fs::write(out.join("cases.rs"), table).expect("writing cases.rs");

    let root = workspace_root(1);
    let dir = build(
        &root,
        &Build {
            packages: &["orch-conformance-fixtures"],
            examples: true,
        },
    );
    println!(
        "cargo:rustc-env=ORCH_FIXTURE_WASM_DIR={}",
        dir.join("examples").display()
    );
}
