//! Write `orch` plugins in Rust.
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

pub mod math;
mod scorer;

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

#[cfg(target_arch = "wasm32")]
#[doc(hidden)]
pub mod __private {
    pub use crate::scorer::wasm::{info, score};
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
