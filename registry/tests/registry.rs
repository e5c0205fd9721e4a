//! Pull and push against a real registry (Debian's docker-registry, started
//! by orch-testkit on 127.0.0.1), including each failure a user can meet.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests may"
)]

use orch_registry::{
    Auth, Client, CredentialSource, Credentials, Digest, Progress, Reference, RegistryError,
    Resolver, Store,
};
use orch_testkit::Registry;

fn binpack() -> &'static [u8] {
    orch_builtins::get("binpack")
        .expect("binpack built in")
        .wasm
}

fn reference(registry: &Registry, rest: &str) -> Reference {
    Reference::parse(&format!("oci://{}/{rest}", registry.host())).unwrap()
}

fn push(registry: &Registry, rest: &str, auth: &Auth) -> orch_registry::Pushed {
    Client::new()
        .unwrap()
        .push(&reference(registry, rest), auth, binpack(), &mut |_| {})
        .unwrap()
}

#[test]
fn push_then_pull_by_tag_and_by_digest() {
    let registry = Registry::start();
    // A component of several upload chunks, so the push reports on the way.
    let big: Vec<u8> = binpack().iter().copied().cycle().take(3 << 20).collect();
    let mut sent = Vec::new();
    let big_pushed = Client::new()
        .unwrap()
        .push(
            &reference(&registry, "big/blob:1"),
            &Auth::anonymous(),
            &big,
            &mut |p: Progress| sent.push(p),
        )
        .unwrap();
    assert_eq!(sent.last().unwrap().done, big.len() as u64);
    assert!(sent.iter().all(|p| p.total == Some(big.len() as u64)));
    let pulled = Client::new()
        .unwrap()
        .pull(&big_pushed.reference, &Auth::anonymous(), &mut |_| {})
        .unwrap();
    assert_eq!(pulled.bytes, big);

    let pushed = push(&registry, "scorers/binpack:1.0", &Auth::anonymous());
    assert_eq!(pushed.component_digest, Digest::of(binpack()));
    // The same bytes pushed again give the same manifest: no timestamp.
    let again = push(&registry, "scorers/binpack:1.1", &Auth::anonymous());
    assert_eq!(again.manifest_digest, pushed.manifest_digest);

    let client = Client::new().unwrap();
    let mut seen = Vec::new();
    let by_tag = client
        .pull(
            &reference(&registry, "scorers/binpack:1.0"),
            &Auth::anonymous(),
            &mut |p: Progress| seen.push(p),
        )
        .unwrap();
    assert_eq!(by_tag.bytes, binpack());
    assert_eq!(by_tag.manifest_digest, pushed.manifest_digest);
    assert_eq!(by_tag.component_digest, pushed.component_digest);
    let last = seen.last().copied().unwrap();
    assert_eq!(last.done, binpack().len() as u64);
    assert_eq!(last.total, Some(binpack().len() as u64));

    let by_digest = client
        .pull(&pushed.reference, &Auth::anonymous(), &mut |_| {})
        .unwrap();
    assert_eq!(by_digest.bytes, binpack());
}

#[test]
fn a_pinned_reference_is_served_from_the_store_once_pulled() {
    let registry = Registry::start();
    let pushed = push(&registry, "scorers/binpack:1.0", &Auth::anonymous());
    let dir = tempfile::tempdir().unwrap();
    let resolver = Resolver::new(
        Store::new(dir.path().join("store")),
        dir.path().join("orch.lock"),
    );
    let first = resolver.resolve(&pushed.reference).unwrap();
    assert!(first.pulled);
    assert!(
        first
            .path
            .ends_with(format!("sha256/{}.wasm", Digest::of(binpack()).hex()))
    );
    drop(registry);
    let second = resolver.resolve(&pushed.reference).unwrap();
    assert!(
        !second.pulled,
        "the registry is gone; the store must serve it"
    );
    assert_eq!(second.bytes, binpack());

    // A tag is only ever resolved through the lock file.
    let tag = Reference::parse(&format!(
        "oci://{}/scorers/binpack:1.0",
        pushed.reference.registry()
    ))
    .unwrap();
    let e = resolver.resolve(&tag).unwrap_err();
    assert!(matches!(e, RegistryError::NotLocked { .. }), "{e}");
    assert!(e.to_string().contains("orch plugin add"), "{e}");
}

#[test]
fn a_wrong_digest_is_refused() {
    let registry = Registry::start();
    push(&registry, "scorers/binpack:1.0", &Auth::anonymous());
    let wrong = reference(&registry, "scorers/binpack").with_digest(Digest::of(b"not it"));
    let e = Client::new()
        .unwrap()
        .pull(&wrong, &Auth::anonymous(), &mut |_| {})
        .unwrap_err();
    assert!(matches!(e, RegistryError::NotFound { .. }), "{e:?}");
    assert!(e.to_string().contains("is the digest right"), "{e}");
}

#[test]
fn a_corrupt_layer_in_the_registry_is_refused_and_not_stored() {
    let registry = Registry::start();
    let pushed = push(&registry, "scorers/binpack:1.0", &Auth::anonymous());
    let hex = pushed.component_digest.hex();
    let blob = registry
        .storage()
        .join("docker/registry/v2/blobs/sha256")
        .join(&hex[..2])
        .join(&hex)
        .join("data");
    let mut bytes = std::fs::read(&blob).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    std::fs::write(&blob, bytes).unwrap();

    let dir = tempfile::tempdir().unwrap();
    let resolver = Resolver::new(Store::new(dir.path()), dir.path().join("orch.lock"));
    let e = resolver.resolve(&pushed.reference).unwrap_err();
    match &e {
        RegistryError::WrongDigest { what, expected, .. } => {
            assert_eq!(*what, "component layer");
            assert_eq!(*expected, pushed.component_digest);
        }
        other => panic!("{other:?}"),
    }
    assert!(e.to_string().contains("nothing was stored"), "{e}");
    assert!(
        !dir.path()
            .join("sha256")
            .join(format!("{hex}.wasm"))
            .exists()
    );
}

#[test]
fn an_unreachable_registry_is_named() {
    let port = orch_testkit::free_port();
    let r = Reference::parse(&format!("oci://127.0.0.1:{port}/scorers/binpack:1.0")).unwrap();
    let e = Client::new()
        .unwrap()
        .pull(&r, &Auth::anonymous(), &mut |_| {})
        .unwrap_err();
    assert!(matches!(e, RegistryError::Unreachable { .. }), "{e:?}");
    let text = e.to_string();
    assert!(
        text.contains(&format!("127.0.0.1:{port} is unreachable")),
        "{text}"
    );
}

#[test]
fn a_missing_tag_or_repository_is_named() {
    let registry = Registry::start();
    push(&registry, "scorers/binpack:1.0", &Auth::anonymous());
    let client = Client::new().unwrap();
    let e = client
        .pull(
            &reference(&registry, "scorers/binpack:2.0"),
            &Auth::anonymous(),
            &mut |_| {},
        )
        .unwrap_err();
    assert!(matches!(e, RegistryError::NotFound { .. }), "{e:?}");
    assert!(
        e.to_string().contains("no tag `2.0` of `scorers/binpack`"),
        "{e}"
    );
    let e = client
        .pull(
            &reference(&registry, "scorers/nothing:1.0"),
            &Auth::anonymous(),
            &mut |_| {},
        )
        .unwrap_err();
    assert!(matches!(e, RegistryError::NotFound { .. }), "{e:?}");
}

#[test]
fn credentials_from_config_or_docker_config_and_refusals() {
    let registry = Registry::start_with_password("orch", "s3cret-pw");
    let config_auth = Auth::basic(
        Credentials::new("orch", "s3cret-pw"),
        CredentialSource::Config("orch.toml".into()),
    );
    let pushed = push(&registry, "scorers/binpack:1.0", &config_auth);
    let client = Client::new().unwrap();
    client
        .pull(&pushed.reference, &config_auth, &mut |_| {})
        .unwrap();

    let dir = tempfile::tempdir().unwrap();
    let docker_config = dir.path().join("config.json");
    // "orch:s3cret-pw", as `docker login` writes it.
    std::fs::write(
        &docker_config,
        format!(
            r#"{{"auths":{{"{}":{{"auth":"b3JjaDpzM2NyZXQtcHc="}}}}}}"#,
            registry.host()
        ),
    )
    .unwrap();
    let docker_auth = Auth::from_docker_config(&docker_config, &registry.host()).unwrap();
    assert!(matches!(
        docker_auth.source(),
        CredentialSource::DockerConfig(_)
    ));
    client
        .pull(&pushed.reference, &docker_auth, &mut |_| {})
        .unwrap();

    let wrong = Auth::basic(
        Credentials::new("orch", "wrong-pw"),
        CredentialSource::Config("orch.toml".into()),
    );
    let e = client
        .pull(&pushed.reference, &wrong, &mut |_| {})
        .unwrap_err();
    assert!(
        matches!(e, RegistryError::CredentialsRefused { .. }),
        "{e:?}"
    );
    let text = format!("{e} {e:?}");
    assert!(
        text.contains("refused the credentials of user `orch` (from orch.toml)"),
        "{text}"
    );
    assert!(!text.contains("wrong-pw"), "{text}");

    let e = client
        .pull(&pushed.reference, &Auth::anonymous(), &mut |_| {})
        .unwrap_err();
    assert!(
        matches!(e, RegistryError::CredentialsNeeded { .. }),
        "{e:?}"
    );
    assert!(e.to_string().contains("docker login"), "{e}");
}

#[test]
fn a_container_image_is_not_a_plugin() {
    if !orch_testkit::docker_available() {
        panic!("this test needs the Docker engine to push a container image");
    }
    let registry = Registry::start();
    orch_testkit::push_busybox(&registry, "tools/busybox:1");
    let e = Client::new()
        .unwrap()
        .pull(
            &reference(&registry, "tools/busybox:1"),
            &Auth::anonymous(),
            &mut |_| {},
        )
        .unwrap_err();
    assert!(matches!(e, RegistryError::NotWasm { .. }), "{e:?}");
    let text = e.to_string();
    assert!(
        text.contains("not a WASM component artifact") && text.contains("container image"),
        "{text}"
    );
}
