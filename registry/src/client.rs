//! Pull and push of WASM component artifacts over the OCI distribution
//! API, with every digest checked before anything is handed back.

use crate::{Auth, Digest, Reference, RegistryError};
use bytes::Bytes;
use futures_util::StreamExt as _;
use oci_client::RegistryOperation;
use oci_client::client::{ClientConfig, ClientProtocol, Config, ImageLayer};
use oci_client::errors::{OciDistributionError, OciErrorCode};
use oci_client::manifest::{self, OciDescriptor, OciImageManifest};
use sha2::{Digest as _, Sha256};
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// The config media type of the CNCF Wasm OCI artifact layout.
pub const MEDIA_TYPE_CONFIG: &str = "application/vnd.wasm.config.v0+json";
/// The layer media type of the CNCF Wasm OCI artifact layout: the
/// component's bytes, as they are.
pub const MEDIA_TYPE_LAYER: &str = "application/wasm";

/// The manifest types asked for: an artifact is an OCI image manifest; the
/// others are accepted only to say clearly what was found instead.
const MANIFEST_TYPES: &[&str] = &[
    manifest::OCI_IMAGE_MEDIA_TYPE,
    manifest::IMAGE_MANIFEST_MEDIA_TYPE,
    manifest::OCI_IMAGE_INDEX_MEDIA_TYPE,
    manifest::IMAGE_MANIFEST_LIST_MEDIA_TYPE,
];

/// A component bigger than this is refused before downloading it (the
/// largest seen here, a componentize-py one, is ~18 MB), unless the client
/// is given a lower bound ([`Client::at_most`]).
pub const MAX_LAYER_BYTES: u64 = 512 << 20;

/// The size of the pieces a component is uploaded in.
const PUSH_CHUNK_BYTES: usize = 1 << 20;

/// How far a transfer is: bytes done out of the total, when known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    pub done: u64,
    pub total: Option<u64>,
}

/// A pulled, verified component.
#[derive(Clone)]
pub struct Artifact {
    /// The manifest's digest: what a reference pins (`@sha256:…`) and the
    /// lock file records.
    pub manifest_digest: Digest,
    /// The component's own digest (the layer's), which the plugin runtime
    /// reports for it.
    pub component_digest: Digest,
    pub bytes: Vec<u8>,
}

impl std::fmt::Debug for Artifact {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Artifact")
            .field("manifest_digest", &self.manifest_digest)
            .field("component_digest", &self.component_digest)
            .field("size", &self.bytes.len())
            .finish()
    }
}

/// What a push stored in the registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pushed {
    pub manifest_digest: Digest,
    pub component_digest: Digest,
    /// The reference pinned to the pushed manifest.
    pub reference: Reference,
}

/// A registry client with its own tokio runtime: call it from plain
/// threads (or from inside a runtime: it then drives the request on a
/// thread of its own rather than nesting runtimes).
pub struct Client {
    runtime: tokio::runtime::Runtime,
    secure: oci_client::Client,
    plain: oci_client::Client,
    /// The largest component a pull accepts.
    max_bytes: u64,
}

impl Client {
    pub fn new() -> Result<Self, RegistryError> {
        // reqwest is built without a bundled crypto provider; ring is the
        // one the rest of the workspace's rustls uses. Installing fails
        // only when one is installed already, which is as good.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| RegistryError::Registry {
                registry: String::new(),
                detail: format!("cannot start the registry client's runtime: {e}"),
            })?;
        let client = |protocol| {
            oci_client::Client::try_from(ClientConfig {
                protocol,
                connect_timeout: Some(Duration::from_secs(10)),
                read_timeout: Some(Duration::from_secs(60)),
                ..ClientConfig::default()
            })
            .map_err(|e| RegistryError::Registry {
                registry: String::new(),
                detail: format!("cannot build the HTTP client: {e}"),
            })
        };
        Ok(Self {
            runtime,
            secure: client(ClientProtocol::Https)?,
            plain: client(ClientProtocol::Http)?,
            max_bytes: MAX_LAYER_BYTES,
        })
    }

    /// Pulls refuse a component larger than `bytes` (never more than
    /// [`MAX_LAYER_BYTES`]): before downloading when the manifest says so,
    /// else as soon as the download passes it.
    #[must_use]
    pub fn at_most(mut self, bytes: u64) -> Self {
        self.max_bytes = bytes.min(MAX_LAYER_BYTES);
        self
    }

    fn oci(&self, reference: &Reference) -> &oci_client::Client {
        if reference.is_loopback() {
            &self.plain
        } else {
            &self.secure
        }
    }

    fn block_on<T: Send>(&self, future: impl Future<Output = T> + Send) -> T {
        if tokio::runtime::Handle::try_current().is_ok() {
            std::thread::scope(|s| {
                s.spawn(|| self.runtime.block_on(future))
                    .join()
                    .unwrap_or_else(|p| std::panic::resume_unwind(p))
            })
        } else {
            self.runtime.block_on(future)
        }
    }

    /// Pulls the component `reference` names: the manifest (checked against
    /// the reference's digest when it pins one), then its one WASM layer,
    /// hashed while it downloads. `progress` sees the layer's bytes.
    pub fn pull(
        &self,
        reference: &Reference,
        auth: &Auth,
        progress: &mut (dyn FnMut(Progress) + Send),
    ) -> Result<Artifact, RegistryError> {
        self.block_on(self.pull_async(reference, auth, progress))
    }

    async fn pull_async(
        &self,
        reference: &Reference,
        auth: &Auth,
        progress: &mut (dyn FnMut(Progress) + Send),
    ) -> Result<Artifact, RegistryError> {
        let oci = self.oci(reference);
        let image = reference.oci();
        let fail = |e| classify(e, reference, auth);
        oci.auth(&image, &auth.oci(), RegistryOperation::Pull)
            .await
            .map_err(fail)?;
        let (raw, _) = oci
            .pull_manifest_raw(&image, &auth.oci(), MANIFEST_TYPES)
            .await
            .map_err(fail)?;
        let manifest_digest = Digest::of(&raw);
        if let Some(expected) = reference.digest()
            && expected != manifest_digest
        {
            return Err(RegistryError::WrongDigest {
                reference: reference.to_string(),
                what: "manifest",
                expected,
                actual: manifest_digest,
            });
        }
        let layer = wasm_layer(reference, &raw)?;
        let expected: Digest = layer.digest.parse().map_err(|e| RegistryError::Registry {
            registry: reference.registry().to_owned(),
            detail: format!("{reference}: the manifest's layer digest: {e}"),
        })?;
        let declared = u64::try_from(layer.size).unwrap_or(0);
        if declared > self.max_bytes {
            return Err(RegistryError::TooLarge {
                plugin: reference.to_string(),
                found: format!("its layer is {declared} bytes"),
                limit: self.max_bytes,
            });
        }
        let mut stream = oci.pull_blob_stream(&image, &layer).await.map_err(fail)?;
        let total = stream.content_length.or(Some(declared));
        let mut hasher = Sha256::new();
        let mut bytes = Vec::with_capacity(usize::try_from(declared).unwrap_or(0));
        progress(Progress { done: 0, total });
        let mut transfer_error = None;
        while let Some(chunk) = stream.next().await {
            match chunk {
                Ok(chunk) => {
                    hasher.update(&chunk);
                    bytes.extend_from_slice(&chunk);
                    if bytes.len() as u64 > self.max_bytes {
                        return Err(RegistryError::TooLarge {
                            plugin: reference.to_string(),
                            found: format!("its layer is more than {} bytes", self.max_bytes),
                            limit: self.max_bytes,
                        });
                    }
                    progress(Progress {
                        done: bytes.len() as u64,
                        total,
                    });
                }
                // oci-client's own check fails the stream at its end; ours
                // below then names the digests.
                Err(e) => {
                    transfer_error = Some(e);
                    break;
                }
            }
        }
        let actual = Digest::from_sha256(hasher.finalize().into());
        if actual != expected && (transfer_error.is_none() || bytes.len() as u64 == declared) {
            return Err(RegistryError::WrongDigest {
                reference: reference.to_string(),
                what: "component layer",
                expected,
                actual,
            });
        }
        if let Some(e) = transfer_error {
            return Err(RegistryError::Registry {
                registry: reference.registry().to_owned(),
                detail: format!(
                    "{reference}: the download broke off after {} bytes: {e}",
                    bytes.len()
                ),
            });
        }
        Ok(Artifact {
            manifest_digest,
            component_digest: actual,
            bytes,
        })
    }

    /// Pushes `component` to `reference` (a tag reference) as a CNCF Wasm
    /// OCI artifact. The manifest carries no timestamp, so pushing the same
    /// component twice gives the same digest.
    pub fn push(
        &self,
        reference: &Reference,
        auth: &Auth,
        component: &[u8],
        progress: &mut (dyn FnMut(Progress) + Send),
    ) -> Result<Pushed, RegistryError> {
        self.block_on(self.push_async(reference, auth, component, progress))
    }

    async fn push_async(
        &self,
        reference: &Reference,
        auth: &Auth,
        component: &[u8],
        progress: &mut (dyn FnMut(Progress) + Send),
    ) -> Result<Pushed, RegistryError> {
        if reference.digest().is_some() {
            return Err(RegistryError::InvalidReference {
                reference: reference.to_string(),
                part: "digest",
                problem: "a push names a tag, not a digest (the registry computes the digest)"
                    .to_owned(),
            });
        }
        let oci = self.oci(reference);
        let image = reference.oci();
        let fail = |e| classify(e, reference, auth);
        let component_digest = Digest::of(component);
        let data = Bytes::copy_from_slice(component);
        let layers = vec![ImageLayer::new(
            data.clone(),
            MEDIA_TYPE_LAYER.to_owned(),
            None,
        )];
        let config = serde_json::json!({
            "architecture": "wasm",
            "os": "wasip2",
            "layerDigests": [component_digest.to_string()],
        });
        let config = Config {
            data: serde_json::to_vec(&config)
                .map_err(|e| RegistryError::Registry {
                    registry: reference.registry().to_owned(),
                    detail: e.to_string(),
                })?
                .into(),
            media_type: MEDIA_TYPE_CONFIG.to_owned(),
            annotations: None,
        };
        let manifest = OciImageManifest::build(&layers, &config, None);
        let total = Some(component.len() as u64);
        oci.store_auth_if_needed(image.resolve_registry(), &auth.oci())
            .await;
        // The layer goes up as a stream of chunks so the bar can follow it:
        // the stream counts what it has handed over, and a tick reports it.
        let sent = Arc::new(AtomicU64::new(0));
        let chunks: Vec<Bytes> = (0..data.len())
            .step_by(PUSH_CHUNK_BYTES)
            .map(|start| data.slice(start..data.len().min(start + PUSH_CHUNK_BYTES)))
            .collect();
        let counter = Arc::clone(&sent);
        let stream = futures_util::stream::iter(chunks).map(move |chunk| {
            counter.fetch_add(chunk.len() as u64, Ordering::Relaxed);
            Ok(chunk)
        });
        progress(Progress { done: 0, total });
        let layer_digest = component_digest.to_string();
        let upload = oci.push_blob_stream(&image, stream, &layer_digest, total);
        tokio::pin!(upload);
        let mut tick = tokio::time::interval(Duration::from_millis(100));
        loop {
            tokio::select! {
                done = &mut upload => {
                    done.map_err(fail)?;
                    break;
                }
                _ = tick.tick() => progress(Progress {
                    done: sent.load(Ordering::Relaxed),
                    total,
                }),
            }
        }
        progress(Progress {
            done: component.len() as u64,
            total,
        });
        oci.push_blob(&image, config.data, &manifest.config.digest)
            .await
            .map_err(fail)?;
        oci.push_manifest(&image, &manifest.into())
            .await
            .map_err(fail)?;
        let digest = oci
            .fetch_manifest_digest(&image, &auth.oci())
            .await
            .map_err(fail)?;
        let manifest_digest: Digest = digest.parse().map_err(|e| RegistryError::Registry {
            registry: reference.registry().to_owned(),
            detail: format!("{reference}: the registry answered digest {digest:?}: {e}"),
        })?;
        Ok(Pushed {
            manifest_digest,
            component_digest,
            reference: reference.with_digest(manifest_digest),
        })
    }
}

/// The one WASM layer of the manifest `raw`, or why it is not an artifact
/// orch loads.
fn wasm_layer(reference: &Reference, raw: &[u8]) -> Result<OciDescriptor, RegistryError> {
    let not_wasm = |found: String| RegistryError::NotWasm {
        reference: reference.to_string(),
        found,
    };
    let value: serde_json::Value = serde_json::from_slice(raw)
        .map_err(|e| not_wasm(format!("its manifest is not JSON ({e})")))?;
    let media_type = value
        .get("mediaType")
        .and_then(|m| m.as_str())
        .unwrap_or("");
    if value.get("manifests").is_some()
        || media_type == manifest::OCI_IMAGE_INDEX_MEDIA_TYPE
        || media_type == manifest::IMAGE_MANIFEST_LIST_MEDIA_TYPE
    {
        return Err(not_wasm(
            "it is an image index (a multi-platform container image)".to_owned(),
        ));
    }
    let m: OciImageManifest = serde_json::from_value(value)
        .map_err(|e| not_wasm(format!("its manifest is not an image manifest ({e})")))?;
    let wasm_layers: Vec<&OciDescriptor> = m
        .layers
        .iter()
        .filter(|l| is_wasm_layer(&l.media_type))
        .collect();
    let layer_types = || {
        m.layers
            .iter()
            .map(|l| l.media_type.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    if !is_wasm_config(&m.config.media_type) {
        return Err(not_wasm(format!(
            "its config is {} and its layers {}{}",
            m.config.media_type,
            layer_types(),
            if m.config.media_type.contains("container.image")
                || m.config.media_type.contains("image.config")
            {
                " (a container image)"
            } else {
                ""
            }
        )));
    }
    match (wasm_layers.as_slice(), m.layers.len()) {
        ([one], 1) => Ok((*one).clone()),
        _ => Err(not_wasm(format!(
            "it has {} layers ({}), not the one application/wasm layer",
            m.layers.len(),
            layer_types()
        ))),
    }
}

/// `application/wasm`, and the older `wasm-to-oci` layer type oci-client
/// still names (the same bytes, another label).
fn is_wasm_layer(media_type: &str) -> bool {
    media_type == MEDIA_TYPE_LAYER || media_type == manifest::WASM_LAYER_MEDIA_TYPE
}

fn is_wasm_config(media_type: &str) -> bool {
    media_type == MEDIA_TYPE_CONFIG || media_type == manifest::WASM_CONFIG_MEDIA_TYPE
}

/// oci-client's error, said in terms of what the user asked for.
fn classify(e: OciDistributionError, reference: &Reference, auth: &Auth) -> RegistryError {
    let registry = reference.registry().to_owned();
    let refused = || match auth.credentials() {
        Some(c) => RegistryError::CredentialsRefused {
            registry: registry.clone(),
            username: c.username().to_owned(),
            source_of: auth.source().to_string(),
        },
        None => RegistryError::CredentialsNeeded {
            registry: registry.clone(),
        },
    };
    let not_found = |code: Option<&OciErrorCode>| {
        let what = match (code, reference.digest(), reference.tag()) {
            (Some(OciErrorCode::NameUnknown), _, _) => format!(
                "registry {registry} has no repository `{}`",
                reference.repository()
            ),
            (_, Some(digest), _) => format!(
                "registry {registry} has no manifest {digest} in `{}`; is the digest right?",
                reference.repository()
            ),
            (_, None, tag) => format!(
                "registry {registry} has no tag `{}` of `{}`; push it first (`orch plugin push FILE {}`)",
                tag.unwrap_or("latest"),
                reference.repository(),
                reference
            ),
        };
        RegistryError::NotFound {
            reference: reference.to_string(),
            what,
        }
    };
    match e {
        OciDistributionError::RequestError(e) if e.is_connect() || e.is_timeout() => {
            RegistryError::Unreachable {
                registry,
                detail: describe_request_error(&e),
            }
        }
        OciDistributionError::UnauthorizedError { .. }
        | OciDistributionError::AuthenticationFailure(_) => refused(),
        OciDistributionError::ImageManifestNotFoundError(_) => not_found(None),
        OciDistributionError::RegistryError { envelope, .. } => {
            let code = envelope.errors.first().map(|e| &e.code);
            match code {
                Some(
                    OciErrorCode::ManifestUnknown
                    | OciErrorCode::NameUnknown
                    | OciErrorCode::NotFound
                    | OciErrorCode::BlobUnknown,
                ) => not_found(code),
                Some(OciErrorCode::Unauthorized | OciErrorCode::Denied) => refused(),
                _ => RegistryError::Registry {
                    registry,
                    detail: format!("{reference}: {envelope}"),
                },
            }
        }
        OciDistributionError::ServerError { code: 404, .. } => not_found(None),
        OciDistributionError::ServerError {
            code: 401 | 403, ..
        } => refused(),
        OciDistributionError::DigestError(d) => RegistryError::Registry {
            registry,
            detail: format!(
                "{reference}: the manifest does not match its digest ({d}); nothing was stored"
            ),
        },
        other => RegistryError::Registry {
            registry,
            detail: format!("{reference}: {other}"),
        },
    }
}

/// reqwest's message plus its causes: "error sending request" alone does
/// not say that the connection was refused.
fn describe_request_error(e: &reqwest_error::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        let s_text = s.to_string();
        if !text.contains(&s_text) {
            text.push_str(": ");
            text.push_str(&s_text);
        }
        source = s.source();
    }
    text
}

mod reqwest_error {
    // oci-client does not re-export reqwest; its error type is reachable
    // through the variant, so name it generically.
    pub(super) type Error = dyn std::error::Error + Send + Sync;
}
