//! Every WIT package parses and resolves with its dependencies, including
//! the worlds no code implements yet (`driver`, `secrets`), and declares the
//! version this host speaks.

use std::path::Path;
use wit_parser::Resolve;

#[test]
fn every_package_resolves_and_has_its_world() {
    let wit = Path::new(env!("CARGO_MANIFEST_DIR")).join("../wit");
    for (dir, world) in [
        ("scheduler", "orch:scheduler/scorer-plugin@0.1.0"),
        ("driver", "orch:driver/driver-plugin@0.1.0"),
        ("secrets", "orch:secrets/provider-plugin@0.1.0"),
    ] {
        let mut resolve = Resolve::new();
        let (pkg, _) = resolve
            .push_dir(wit.join(dir))
            .unwrap_or_else(|e| panic!("wit/{dir}: {e:#}"));
        let id = resolve
            .select_world(&[pkg], Some(world))
            .unwrap_or_else(|e| panic!("wit/{dir}: {e:#}"));
        let w = &resolve.worlds[id];
        assert!(!w.exports.is_empty(), "{world} exports nothing");
        let name = &resolve.packages[pkg].name;
        assert_eq!(
            name.version.as_ref().map(ToString::to_string).as_deref(),
            Some("0.1.0"),
            "{dir}"
        );
    }
}
