//! Plugins from OCI registries: where `oci://HOST/NAME:TAG` plugin
//! references become verified component bytes on disk.
//!
//! The CLI (`orch plugin add|push`), the server (`[scheduler] scorer =
//! "oci://…"`) and the agent (`[driver.NAME] plugin = "oci://…"`) all come
//! through here:
//!
//! ```text
//! Reference::parse ──► resolve(): pinned @sha256 → Store, else pull + verify
//!                                 tag → LockFile → Store (by the locked digest)
//! Client::pull: manifest (digest checked when pinned) → the one WASM layer
//!               (sha256 checked while it downloads) → Store::put (atomic)
//! ```
//!
//! Artifacts follow the CNCF TAG Runtime "Wasm OCI artifact" layout: an OCI
//! image manifest whose config is `application/vnd.wasm.config.v0+json` and
//! whose single layer is the component, `application/wasm`. Whether the
//! bytes are a component of a world orch speaks is the plugin runtime's
//! call, not this crate's (it has no wasmtime).
//!
//! The API is blocking: oci-client is async, and [`Client`] owns the tokio
//! runtime that drives it, so the synchronous agent and CLI call it from
//! plain threads.

mod auth;
mod client;
mod error;
mod lock;
mod reference;
mod resolve;
mod store;

pub use auth::{Auth, CredentialSource, Credentials, docker_config_path};
pub use client::{Artifact, Client, MEDIA_TYPE_CONFIG, MEDIA_TYPE_LAYER, Progress, Pushed};
pub use error::RegistryError;
pub use lock::{LockEntry, LockFile};
pub use orch_model::Digest;
pub use reference::Reference;
pub use resolve::{Resolved, Resolver, default_store_dir};
pub use store::{Store, read_at_most};
