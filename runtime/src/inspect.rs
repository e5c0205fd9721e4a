//! What a component is, read from its type alone (nothing runs).

use crate::{Component, PluginError, Runtime};
use serde::Serialize;

/// The interface a scorer exports, and the version this host speaks.
pub(crate) const SCORER_INTERFACE: (&str, &str) = ("orch:scheduler/scorer", "0.1.0");
/// The interface a task driver exports, and the version this host speaks.
pub(crate) const DRIVER_INTERFACE: (&str, &str) = ("orch:driver/driver", "0.1.0");

/// The plugin worlds `orch` knows, with the version of each this host speaks.
pub(crate) const KNOWN_WORLDS: &[(&str, &str, WorldKind)] = &[
    (SCORER_INTERFACE.0, SCORER_INTERFACE.1, WorldKind::Scorer),
    (DRIVER_INTERFACE.0, DRIVER_INTERFACE.1, WorldKind::Driver),
    ("orch:secrets/provider", "0.1.0", WorldKind::Secrets),
];

/// Which kind of plugin a component is, from the interface it exports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum WorldKind {
    /// `orch:scheduler/scorer-plugin`
    Scorer,
    /// `orch:driver/driver-plugin`
    Driver,
    /// `orch:secrets/provider-plugin`
    Secrets,
}

impl WorldKind {
    pub fn world(self) -> &'static str {
        match self {
            Self::Scorer => "orch:scheduler/scorer-plugin",
            Self::Driver => "orch:driver/driver-plugin",
            Self::Secrets => "orch:secrets/provider-plugin",
        }
    }
}

/// A component's imports and exports, and the orch world it targets.
#[derive(Debug, Clone, Serialize)]
pub struct Inspection {
    pub name: String,
    pub digest: String,
    pub size: usize,
    /// The orch world the component exports, if any.
    pub world: Option<WorldKind>,
    /// The exported interface that decided `world`, with its version, e.g.
    /// `orch:scheduler/scorer@0.1.0`.
    pub world_export: Option<String>,
    /// Whether this host speaks that version.
    pub version_supported: bool,
    pub imports: Vec<String>,
    pub exports: Vec<String>,
}

impl Runtime {
    /// Reads what `component` imports and exports and which world it targets.
    pub fn inspect(&self, component: &Component) -> Inspection {
        let ty = component.component.component_type();
        let engine = self.engine();
        let imports: Vec<String> = ty.imports(engine).map(|(n, _)| n.to_owned()).collect();
        let exports: Vec<String> = ty.exports(engine).map(|(n, _)| n.to_owned()).collect();
        let mut world = None;
        let mut world_export = None;
        let mut version_supported = false;
        for export in &exports {
            let (iface, version) = split_version(export);
            if let Some((_, supported, kind)) = KNOWN_WORLDS.iter().find(|(i, _, _)| *i == iface) {
                world = Some(*kind);
                world_export = Some(export.clone());
                version_supported = version.is_some_and(|v| same_minor(v, supported));
                break;
            }
        }
        Inspection {
            name: component.name.clone(),
            digest: component.digest.to_string(),
            size: component.size,
            world,
            world_export,
            version_supported,
            imports,
            exports,
        }
    }
}

/// `orch:scheduler/scorer@0.1.0` → (`orch:scheduler/scorer`, Some(`0.1.0`)).
pub(crate) fn split_version(name: &str) -> (&str, Option<&str>) {
    match name.split_once('@') {
        Some((n, v)) => (n, Some(v)),
        None => (name, None),
    }
}

/// Semver compatibility as the component model sees it for 0.x versions:
/// the same major and minor; patch releases only add.
pub(crate) fn same_minor(version: &str, supported: &str) -> bool {
    let key = |v: &str| {
        let mut p = v.split('.');
        (p.next().map(str::to_owned), p.next().map(str::to_owned))
    };
    key(version) == key(supported)
}

/// WASI 0.2 packages ordinary toolchains import. They are linked, but the
/// sandbox grants nothing through them.
const WASI_PACKAGES: &[&str] = &[
    "wasi:io/",
    "wasi:cli/",
    "wasi:clocks/",
    "wasi:filesystem/",
    "wasi:sockets/",
    "wasi:random/",
];

/// Whether `import` is a WASI 0.2 interface the sandbox links.
pub(crate) fn is_linked_wasi(import: &str) -> bool {
    let (name, version) = split_version(import);
    WASI_PACKAGES.iter().any(|p| name.starts_with(p))
        && version.is_some_and(|v| v.starts_with("0.2."))
}

/// Checks that `inspection` exports `interface` (`(name, version this host
/// speaks)`) at a compatible version: the "validate against the world" step
/// every plugin kind shares. `noun` says what the plugin should be (`a
/// scorer`), `wit` where its contract lives (`wit/scheduler`).
pub(crate) fn check_export(
    component: &Component,
    inspection: &Inspection,
    (iface, supported): (&str, &str),
    noun: &str,
    wit: &str,
) -> Result<(), PluginError> {
    let wrong_world = |detail: String| PluginError::WrongWorld {
        plugin: component.name.clone(),
        digest: component.digest,
        detail,
    };
    let export = inspection
        .exports
        .iter()
        .find(|e| split_version(e).0 == iface);
    match export.map(|e| split_version(e).1) {
        None => {
            let found = inspection.world_export.as_deref().map_or_else(
                || format!("exports [{}]", inspection.exports.join(", ")),
                |w| format!("targets {w}"),
            );
            Err(wrong_world(format!(
                "is not {noun}: it does not export {iface}@{supported} ({found})"
            )))
        }
        Some(version) if !version.is_some_and(|v| same_minor(v, supported)) => {
            Err(wrong_world(format!(
                "exports {iface}@{}, but this orch speaks @{supported}; rebuild it against {wit} of this release",
                version.unwrap_or("(no version)")
            )))
        }
        Some(_) => Ok(()),
    }
}
