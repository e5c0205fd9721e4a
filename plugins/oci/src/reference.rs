//! Image references, checked against the grammar the registries and Docker
//! use (github.com/distribution/reference):
//!
//! ```text
//! reference  := name [ ":" tag ] [ "@" digest ]
//! name       := [ domain "/" ] path-component { "/" path-component }
//! domain     := host [ ":" port ]          (a first part with "." or ":", or "localhost")
//! component  := [a-z0-9]+ { ( "." | "_" | "__" | "-"+ ) [a-z0-9]+ }
//! tag        := [A-Za-z0-9_] [A-Za-z0-9_.-]{0,127}
//! digest     := "sha256:" 64 lowercase hex digits
//! ```
//!
//! so that a typo is reported at `config.image`, naming the part that is
//! wrong, instead of as a pull failure minutes later.

/// Longest name Docker accepts (the name part, without tag and digest).
const MAX_NAME: usize = 255;
/// Longest tag.
const MAX_TAG: usize = 128;

/// A checked image reference: `image` as written, with `:latest` added when
/// it names neither a tag nor a digest (the engine's API would otherwise
/// pull every tag of the repository).
pub fn check(image: &str) -> Result<String, String> {
    if image.trim().is_empty() {
        return Err(
            "is empty: name the image to run, e.g. image = \"127.0.0.1:5000/app:1.2\"".to_owned(),
        );
    }
    if let Some(c) = image.chars().find(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!(
            "{image:?} is not an image reference: it contains {c:?}; write it without spaces, e.g. \"127.0.0.1:5000/app:1.2\""
        ));
    }
    let (rest, digest) = match image.split_once('@') {
        Some((rest, digest)) => (rest, Some(digest)),
        None => (image, None),
    };
    if let Some(digest) = digest {
        check_digest(image, digest)?;
    }
    // A tag follows the last ':' after the last '/'; a ':' before that is a
    // registry's port.
    let last_part = rest.rfind('/').map_or(0, |i| i + 1);
    let (name, tag) = match rest[last_part..].find(':') {
        Some(i) => (&rest[..last_part + i], Some(&rest[last_part + i + 1..])),
        None => (rest, None),
    };
    if let Some(tag) = tag {
        check_tag(image, tag)?;
    }
    check_name(image, name)?;
    Ok(if tag.is_none() && digest.is_none() {
        format!("{image}:latest")
    } else {
        image.to_owned()
    })
}

fn check_digest(image: &str, digest: &str) -> Result<(), String> {
    let Some(hex) = digest.strip_prefix("sha256:") else {
        return Err(format!(
            "{image:?}: the digest {digest:?} must be sha256:<64 hex digits>, e.g. \"app@sha256:{}\"",
            "0".repeat(64)
        ));
    };
    if hex.len() != 64
        || !hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return Err(format!(
            "{image:?}: the digest must be sha256: followed by 64 lowercase hex digits; it has {} characters after sha256:{}",
            hex.len(),
            if hex.bytes().any(|b| b.is_ascii_uppercase()) {
                " (write the hex digits in lowercase)"
            } else {
                ""
            }
        ));
    }
    Ok(())
}

fn check_tag(image: &str, tag: &str) -> Result<(), String> {
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let ok = !tag.is_empty()
        && tag.len() <= MAX_TAG
        && tag.bytes().next().is_some_and(word)
        && tag.bytes().all(|b| word(b) || b == b'.' || b == b'-');
    if ok {
        return Ok(());
    }
    Err(if tag.is_empty() {
        format!(
            "{image:?}: the tag after ':' is empty; give one, e.g. \":1.2\", or drop the ':' for \"latest\""
        )
    } else {
        format!(
            "{image:?}: the tag {tag:?} is not valid: a tag is up to {MAX_TAG} letters, digits, '_', '.' and '-', and does not start with '.' or '-'"
        )
    })
}

fn check_name(image: &str, name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err(format!(
            "{image:?} names no repository; write it as [registry/]name[:tag], e.g. \"127.0.0.1:5000/app:1.2\""
        ));
    }
    if name.len() > MAX_NAME {
        return Err(format!(
            "{image:?}: the name is {} characters long, over the {MAX_NAME} registries accept",
            name.len()
        ));
    }
    let mut parts: Vec<&str> = name.split('/').collect();
    if parts.len() > 1 {
        let first = parts[0];
        if first.contains('.') || first.contains(':') || first == "localhost" {
            check_domain(image, first)?;
            parts.remove(0);
        }
    }
    for part in parts {
        check_component(image, part)?;
    }
    Ok(())
}

fn check_domain(image: &str, domain: &str) -> Result<(), String> {
    let (host, port) = match domain.rsplit_once(':') {
        // An IPv6 literal is bracketed; its colons are not the port's.
        Some((host, port)) if !port.contains(']') => (host, Some(port)),
        _ => (domain, None),
    };
    if let Some(port) =
        port.filter(|p| p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) || p.len() > 5)
    {
        return Err(format!(
            "{image:?}: the registry's port {port:?} is not a number; write host:port, e.g. \"127.0.0.1:5000/app:1.2\""
        ));
    }
    if host.starts_with('[') && host.ends_with(']') {
        let inner = &host[1..host.len() - 1];
        if !inner.is_empty()
            && inner
                .bytes()
                .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.')
        {
            return Ok(());
        }
    }
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    if host.split('.').all(label_ok) {
        return Ok(());
    }
    Err(format!(
        "{image:?}: the registry {host:?} is not a host name or address; write host[:port]/name, e.g. \"127.0.0.1:5000/app:1.2\""
    ))
}

fn check_component(image: &str, part: &str) -> Result<(), String> {
    if part.is_empty() {
        return Err(format!(
            "{image:?} has an empty path part (two '/' in a row, or one at an end)"
        ));
    }
    if part.bytes().any(|b| b.is_ascii_uppercase()) {
        return Err(format!(
            "{image:?}: the repository name {part:?} must be lowercase; write {:?}",
            part.to_ascii_lowercase()
        ));
    }
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let bytes = part.as_bytes();
    let mut ok =
        bytes.first().copied().is_some_and(alnum) && bytes.last().copied().is_some_and(alnum);
    let mut i = 0;
    while ok && i < bytes.len() {
        if alnum(bytes[i]) {
            i += 1;
            continue;
        }
        // A separator: ".", "_", "__" or a run of "-".
        let start = i;
        let sep = bytes[i];
        while i < bytes.len() && bytes[i] == sep {
            i += 1;
        }
        ok = match sep {
            b'.' => i - start == 1,
            b'_' => i - start <= 2,
            b'-' => true,
            _ => false,
        };
    }
    if ok {
        return Ok(());
    }
    Err(format!(
        "{image:?}: {part:?} is not a valid repository name part: use lowercase letters and digits, separated by '.', '_', '__' or '-'"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_references_pass_and_bare_names_get_latest() {
        for (given, checked) in [
            ("busybox", "busybox:latest"),
            ("busybox:1.36", "busybox:1.36"),
            ("library/busybox", "library/busybox:latest"),
            ("127.0.0.1:5000/app:1.2", "127.0.0.1:5000/app:1.2"),
            ("127.0.0.1:5000/app", "127.0.0.1:5000/app:latest"),
            (
                "localhost/team/app_x__y-z:v1.0-rc_1",
                "localhost/team/app_x__y-z:v1.0-rc_1",
            ),
            ("ghcr.io/a/b-c/d.e:latest", "ghcr.io/a/b-c/d.e:latest"),
            ("[::1]:5000/app:1", "[::1]:5000/app:1"),
        ] {
            assert_eq!(check(given).unwrap(), checked, "{given}");
        }
        let pinned = format!("127.0.0.1:5000/app@sha256:{}", "ab".repeat(32));
        assert_eq!(check(&pinned).unwrap(), pinned);
        let both = format!("app:1.2@sha256:{}", "0".repeat(64));
        assert_eq!(check(&both).unwrap(), both);
    }

    #[test]
    fn each_wrong_part_is_named() {
        let says = |image: &str, what: &str| {
            let e = check(image).unwrap_err();
            assert!(e.contains(what), "{image}: {e}");
        };
        says("", "is empty");
        says("app :1", "without spaces");
        says("App:1", "must be lowercase; write \"app\"");
        says("app:", "the tag after ':' is empty");
        says("app:-x", "the tag \"-x\" is not valid");
        says("app@sha256:abc", "64 lowercase hex digits");
        says("app@md5:abc", "must be sha256:");
        says("127.0.0.1:50x0/app", "port \"50x0\" is not a number");
        says("a..b/app", "the registry \"a..b\" is not a host name");
        says("reg.io//app", "empty path part");
        says("reg.io/app-", "not a valid repository name part");
        says("reg.io/a...b", "not a valid repository name part");
        says(":1.2", "names no repository");
        says(&format!("{}:1", "a".repeat(256)), "over the 255");
    }
}
