//! Write `orch` plugins in Rust: scheduler scorers and task drivers.
//!
//! A scheduler scorer is a struct with one method, [`Scorer::score`], and one
//! line, [`export_scorer!`], that makes it the component's export when the
//! crate is built for `wasm32-wasip2`. Built natively, the same crate is an
//! ordinary library: unit-test the logic without wasm, and use it as the
//! native baseline in benchmarks.
//!
//! The types here mirror the `orch:scheduler@0.1.0` WIT world; on wasm the
//! export macro converts between them and the generated bindings, so plugin
//! code never touches the bindings.
//!
//! ```
//! use orch_plugin_sdk::{Info, ScoreRequest, Scorer, Scores};
//!
//! /// Prefers nodes running fewer allocations.
//! #[derive(Default)]
//! pub struct LeastAllocs;
//!
//! impl Scorer for LeastAllocs {
//!     const INFO: Info = Info {
//!         name: "least-allocs",
//!         version: "0.1.0",
//!         description: "prefers nodes running fewer allocations",
//!     };
//!
//!     fn score(&self, request: &ScoreRequest) -> Result<Scores, String> {
//!         let mut scores = Scores::with_parts(&["allocs"], request.nodes.len());
//!         for node in &request.nodes {
//!             let s = 1.0 / (1.0 + f64::from(node.total_allocs));
//!             scores.push(s, &[s]);
//!         }
//!         Ok(scores)
//!     }
//! }
//!
//! orch_plugin_sdk::export_scorer!(LeastAllocs);
//! ```
//!
//! A task driver implements [`Driver`] (the verbs the agent calls, after
//! Nomad's drivers) and is exported with [`export_driver!`]. It reaches the
//! node only through the host capabilities in [`process`], [`artifacts`],
//! [`containers`] and [`log`]; a driver imports exactly the capabilities it
//! calls, and the agent loads it only if its config grants each of them.
//! See `plugins/exec` (processes) and `plugins/oci` (containers) for whole
//! drivers.

pub mod artifacts;
pub mod config;
pub mod containers;
mod driver;
mod logging;
pub mod math;
pub mod process;
mod scorer;

pub use driver::{
    ConfigError, Driver, DriverError, DriverInfo, ExitResult, Fingerprint, TaskConfig, TaskHandle,
    TaskId, TaskState, TaskStats,
};
pub use logging::{LogLevel, log};
pub use scorer::{ABSENT, Info, Node, NodeColumns, Resources, ScoreRequest, Scorer, Scores};

#[cfg(target_arch = "wasm32")]
#[doc(hidden)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "wit/scheduler",
        world: "orch:scheduler/scorer-plugin",
        pub_export_macro: true,
        export_macro_name: "export_scorer_world",
        default_bindings_module: "orch_plugin_sdk::bindings",
        generate_all,
    });
}

/// The driver world's bindings, in a module of their own so that their
/// types (`orch:types/types` again) do not clash with the scorer's. Only
/// the imports a driver calls end up imported by its component: the linker
/// drops unused import functions, and the component keeps the interfaces
/// whose functions remain.
#[cfg(target_arch = "wasm32")]
#[doc(hidden)]
pub mod driver_bindings {
    wit_bindgen::generate!({
        path: "wit/driver",
        world: "orch:driver/driver-plugin",
        pub_export_macro: true,
        export_macro_name: "export_driver_world",
        default_bindings_module: "orch_plugin_sdk::driver_bindings",
        generate_all,
    });
}

#[cfg(target_arch = "wasm32")]
#[doc(hidden)]
pub mod __private {
    pub use crate::scorer::wasm::{info, score};
    pub mod driver {
        pub use crate::driver::wasm::{
            destroy, fingerprint, info, inspect, recover, signal, start, stats, stop,
            validate_config, wait,
        };
    }
}

/// Makes a [`Scorer`] the export of the component built from this crate.
///
/// The type must implement [`Scorer`] and [`Default`]; a fresh value is made
/// for every call. On native targets the macro expands to nothing, so the
/// crate also builds as an ordinary library.
#[macro_export]
macro_rules! export_scorer {
    ($scorer:ty) => {
        #[cfg(target_arch = "wasm32")]
        #[doc(hidden)]
        pub struct __OrchScorerExport;

        #[cfg(target_arch = "wasm32")]
        impl $crate::bindings::exports::orch::scheduler::scorer::Guest for __OrchScorerExport {
            fn info() -> $crate::bindings::exports::orch::scheduler::scorer::ScorerInfo {
                $crate::__private::info::<$scorer>()
            }

            fn score(
                request: $crate::bindings::exports::orch::scheduler::scorer::ScoreRequest,
            ) -> ::core::result::Result<
                $crate::bindings::exports::orch::scheduler::scorer::ScoreResponse,
                ::std::string::String,
            > {
                $crate::__private::score::<$scorer>(request)
            }
        }

        #[cfg(target_arch = "wasm32")]
        $crate::bindings::export_scorer_world!(__OrchScorerExport with_types_in $crate::bindings);
    };
}

/// Makes a [`Driver`] the export of the component built from this crate.
///
/// The type must implement [`Driver`] and [`Default`]; a fresh value is made
/// for every call. On native targets the macro expands to nothing, so the
/// crate also builds as an ordinary library.
#[macro_export]
macro_rules! export_driver {
    ($driver:ty) => {
        #[cfg(target_arch = "wasm32")]
        #[doc(hidden)]
        pub struct __OrchDriverExport;

        #[cfg(target_arch = "wasm32")]
        const _: () = {
            use $crate::__private::driver as glue;
            use $crate::driver_bindings::exports::orch::driver::driver as wit;
            use ::core::result::Result;
            use ::std::string::String;
            use ::std::vec::Vec;

            impl wit::Guest for __OrchDriverExport {
                fn info() -> wit::DriverInfo {
                    glue::info::<$driver>()
                }
                fn fingerprint() -> wit::DriverFingerprint {
                    glue::fingerprint::<$driver>()
                }
                fn validate_config(config: String) -> Result<(), Vec<wit::ConfigError>> {
                    glue::validate_config::<$driver>(config)
                }
                fn start(task: wit::TaskConfig) -> Result<wit::TaskHandle, wit::DriverError> {
                    glue::start::<$driver>(task)
                }
                fn wait(
                    handle: wit::TaskHandle,
                    timeout_ms: u32,
                ) -> Result<Option<wit::ExitResult>, wit::DriverError> {
                    glue::wait::<$driver>(handle, timeout_ms)
                }
                fn inspect(handle: wit::TaskHandle) -> Result<wit::TaskState, wit::DriverError> {
                    glue::inspect::<$driver>(handle)
                }
                fn stop(
                    handle: wit::TaskHandle,
                    signal: String,
                    timeout_ms: u32,
                ) -> Result<(), wit::DriverError> {
                    glue::stop::<$driver>(handle, signal, timeout_ms)
                }
                fn destroy(handle: wit::TaskHandle, force: bool) -> Result<(), wit::DriverError> {
                    glue::destroy::<$driver>(handle, force)
                }
                fn signal(handle: wit::TaskHandle, signal: String) -> Result<(), wit::DriverError> {
                    glue::signal::<$driver>(handle, signal)
                }
                fn stats(handle: wit::TaskHandle) -> Result<wit::TaskStats, wit::DriverError> {
                    glue::stats::<$driver>(handle)
                }
                fn recover(handle: wit::TaskHandle) -> Result<(), wit::DriverError> {
                    glue::recover::<$driver>(handle)
                }
            }
        };

        #[cfg(target_arch = "wasm32")]
        $crate::driver_bindings::export_driver_world!(__OrchDriverExport with_types_in $crate::driver_bindings);
    };
}
