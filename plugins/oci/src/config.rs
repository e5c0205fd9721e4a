//! The oci driver's task config, checked so that every problem is reported
//! at once, each at its field with a fix. The settings are listed in the
//! crate's documentation (`lib.rs`).

use crate::reference;
use orch_plugin_sdk::ConfigError;
use orch_plugin_sdk::config::{closest, kind, unquoted};
use orch_plugin_sdk::containers::{Mount, PortMapping};
use serde_json::{Map, Value};

/// The settings the oci driver knows, for "did you mean" suggestions.
const KNOWN: &[&str] = &[
    "image",
    "entrypoint",
    "command",
    "args",
    "ports",
    "privileged",
    "network_mode",
    "pid_mode",
    "ipc_mode",
    "mounts",
    "user",
    "work_dir",
];

/// Settings people bring from Docker, Compose or Nomad's docker driver,
/// with what to write instead.
const ELSEWHERE: &[(&str, &str)] = &[
    (
        "volumes",
        "use `mounts = [{ source = \"local/data\", target = \"/data\" }]`",
    ),
    ("cmd", "use `args` (replaces the image's CMD)"),
    ("working_dir", "did you mean `work_dir`?"),
    ("workdir", "did you mean `work_dir`?"),
    ("network", "did you mean `network_mode`?"),
    ("port_map", "use `ports = [\"8080\"]`"),
    ("pid", "did you mean `pid_mode`?"),
    ("ipc", "did you mean `ipc_mode`?"),
    (
        "env",
        "the task's environment comes from its `env` block, not from the driver config",
    ),
    (
        "environment",
        "the task's environment comes from its `env` block, not from the driver config",
    ),
    (
        "auth",
        "registry credentials are the operator's: [containers.auth.\"HOST:PORT\"] in agent.toml",
    ),
];

/// Mount points the host uses for the allocation's directories.
const HOST_MOUNTS: &[&str] = &["/alloc", "/local", "/secrets"];

/// A valid oci config.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OciConfig {
    /// The image reference, with `:latest` added when it names neither a
    /// tag nor a digest.
    pub image: String,
    /// Replaces the image's entrypoint (`command = "x"` is `entrypoint = ["x"]`).
    pub entrypoint: Option<Vec<String>>,
    /// Replaces the image's cmd when not empty.
    pub args: Vec<String>,
    pub ports: Vec<PortMapping>,
    pub privileged: bool,
    /// `bridge`, `none` or `host`.
    pub network_mode: String,
    pub host_pid: bool,
    pub host_ipc: bool,
    pub mounts: Vec<Mount>,
    pub user: Option<String>,
    pub work_dir: Option<String>,
}

/// Parses the task's `config` table (JSON text), or lists every problem.
pub fn parse(json: &str) -> Result<OciConfig, Vec<ConfigError>> {
    let table = orch_plugin_sdk::config::table(json, "image = \"127.0.0.1:5000/app:1.2\"")?;
    let mut p = Problems::default();
    let mut config = OciConfig {
        network_mode: "bridge".to_owned(),
        ..OciConfig::default()
    };

    match table.get("image") {
        None => p.add(
            "config.image",
            "is required: the image to run, e.g. image = \"127.0.0.1:5000/app:1.2\"",
        ),
        Some(Value::String(image)) => match reference::check(image) {
            Ok(image) => config.image = image,
            Err(why) => p.add("config.image", why),
        },
        Some(other) => p.add(
            "config.image",
            format!(
                "must be a string, not {}; quote it, e.g. image = \"127.0.0.1:5000/app:1.2\"",
                kind(other)
            ),
        ),
    }

    let entrypoint = strings(&table, "entrypoint", "[\"/bin/httpd\", \"-f\"]", &mut p);
    if let Some(list) = &entrypoint {
        if list.is_empty() {
            p.add(
                "config.entrypoint",
                "is empty: name the program, e.g. entrypoint = [\"/bin/httpd\", \"-f\"], or leave it out to keep the image's",
            );
        } else if list[0].trim().is_empty() {
            p.add(
                "config.entrypoint[0]",
                "is empty: the first element is the program to run",
            );
        }
    }
    let command = string(&table, "command", "\"/bin/httpd\"", &mut p);
    if let Some(command) = &command {
        if command.trim().is_empty() {
            p.add(
                "config.command",
                "is empty: give the program to run, e.g. command = \"/bin/httpd\", or leave it out to keep the image's entrypoint",
            );
        } else if table.contains_key("entrypoint") {
            p.add(
                "config.command",
                "and `entrypoint` are both set; give one: command = \"x\" is short for entrypoint = [\"x\"]",
            );
        }
    }
    config.entrypoint = entrypoint.or_else(|| command.map(|c| vec![c]));
    config.args = strings(&table, "args", "[\"-c\", \"echo hi\"]", &mut p).unwrap_or_default();

    config.privileged = boolean(&table, "privileged", &mut p);
    if let Some(mode) = string(&table, "network_mode", "\"bridge\"", &mut p) {
        match mode.as_str() {
            "bridge" | "none" | "host" => config.network_mode = mode,
            "" => {}
            other => p.add(
                "config.network_mode",
                format!(
                    "{other:?} is not one the oci driver knows: use \"bridge\" (the default), \"none\" or \"host\"{}",
                    if other.starts_with("container:") {
                        " (sharing another container's network is not supported)"
                    } else {
                        " (named networks are not supported)"
                    }
                ),
            ),
        }
    }
    config.host_pid = namespace(&table, "pid_mode", &mut p);
    config.host_ipc = namespace(&table, "ipc_mode", &mut p);

    config.ports = ports(&table, &mut p);
    if !config.ports.is_empty() && config.network_mode != "bridge" {
        p.add(
            "config.ports",
            format!(
                "cannot be published with network_mode = {:?}: {}; drop `ports` or use the bridge network",
                config.network_mode,
                if config.network_mode == "host" {
                    "the task listens on the node's own ports"
                } else {
                    "the container has no network"
                }
            ),
        );
    }
    config.mounts = mounts(&table, &mut p);

    if let Some(user) = string(&table, "user", "\"1000:1000\"", &mut p) {
        if user.trim().is_empty() || user.chars().any(char::is_whitespace) {
            p.add(
                "config.user",
                format!(
                    "{user:?} is not a user: give a name or uid, optionally with a group, e.g. user = \"1000:1000\""
                ),
            );
        } else {
            config.user = Some(user);
        }
    }
    if let Some(dir) = string(&table, "work_dir", "\"/app\"", &mut p) {
        if dir.starts_with('/') {
            config.work_dir = Some(dir);
        } else {
            p.add(
                "config.work_dir",
                format!(
                    "{dir:?} must be an absolute path inside the container, e.g. work_dir = \"/app\""
                ),
            );
        }
    }

    let mut unknown: Vec<&String> = table
        .keys()
        .filter(|k| !KNOWN.contains(&k.as_str()))
        .collect();
    unknown.sort();
    for key in unknown {
        let hint = match ELSEWHERE.iter().find(|(k, _)| k.eq_ignore_ascii_case(key)) {
            Some((_, hint)) => (*hint).to_owned(),
            None => match closest(key, KNOWN) {
                Some(known) => format!("did you mean `{known}`?"),
                None => format!("the oci driver knows {}", KNOWN.join(", ")),
            },
        };
        p.add(
            format!("config.{key}"),
            format!("is not a setting of the oci driver; {hint}"),
        );
    }

    if p.0.is_empty() { Ok(config) } else { Err(p.0) }
}

#[derive(Default)]
struct Problems(Vec<ConfigError>);

impl Problems {
    fn add(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.0.push(ConfigError::new(field, message));
    }
}

/// A string setting; `None` when absent or wrong (a problem is recorded).
fn string(
    table: &Map<String, Value>,
    key: &str,
    example: &str,
    p: &mut Problems,
) -> Option<String> {
    match table.get(key)? {
        Value::String(s) if s.contains('\0') => {
            p.add(format!("config.{key}"), "contains a NUL character");
            None
        }
        Value::String(s) => Some(s.clone()),
        other => {
            p.add(
                format!("config.{key}"),
                format!(
                    "must be a string, not {}; e.g. {key} = {example}",
                    kind(other)
                ),
            );
            None
        }
    }
}

/// A list of strings; `None` when absent (or not a list: a problem is
/// recorded). Elements that are wrong are each a problem and left out.
fn strings(
    table: &Map<String, Value>,
    key: &str,
    example: &str,
    p: &mut Problems,
) -> Option<Vec<String>> {
    match table.get(key)? {
        Value::Array(items) => {
            let mut out = Vec::new();
            for (i, item) in items.iter().enumerate() {
                match item {
                    Value::String(s) if s.contains('\0') => {
                        p.add(format!("config.{key}[{i}]"), "contains a NUL character");
                    }
                    Value::String(s) => out.push(s.clone()),
                    other => p.add(
                        format!("config.{key}[{i}]"),
                        format!(
                            "must be a string, not {}; quote it, e.g. \"{}\"",
                            kind(other),
                            unquoted(other)
                        ),
                    ),
                }
            }
            Some(out)
        }
        Value::String(s) => {
            p.add(
                format!("config.{key}"),
                format!(
                    "must be an array of strings, not a string; write {key} = [{s:?}] (one element per argument)"
                ),
            );
            None
        }
        other => {
            p.add(
                format!("config.{key}"),
                format!(
                    "must be an array of strings, e.g. {key} = {example}; got {}",
                    kind(other)
                ),
            );
            None
        }
    }
}

fn boolean(table: &Map<String, Value>, key: &str, p: &mut Problems) -> bool {
    match table.get(key) {
        None => false,
        Some(Value::Bool(b)) => *b,
        Some(other) => {
            p.add(
                format!("config.{key}"),
                format!(
                    "must be true or false, not {}{}",
                    kind(other),
                    match other {
                        Value::String(s) if s == "true" || s == "false" =>
                            format!("; drop the quotes: {key} = {s}"),
                        _ => String::new(),
                    }
                ),
            );
            false
        }
    }
}

/// `pid_mode` / `ipc_mode`: `""` (the container's own namespace) or
/// `"host"`. True for `"host"`.
fn namespace(table: &Map<String, Value>, key: &str, p: &mut Problems) -> bool {
    match string(table, key, "\"host\"", p).as_deref() {
        None | Some("") => false,
        Some("host") => true,
        Some(other) => {
            p.add(
                format!("config.{key}"),
                format!(
                    "{other:?} is not supported: use \"host\" to share the node's namespace, or leave it out for the container's own"
                ),
            );
            false
        }
    }
}

/// `ports`: Docker CLI style, `"8080"` (the engine picks the host port),
/// `"18080:8080"`, `"53/udp"`, `"18053:53/udp"`; a bare number is a TCP
/// container port. Labelled `port_<container port>`, and
/// `port_<container port>_udp` for UDP, so that one port number can be
/// published for both protocols.
fn ports(table: &Map<String, Value>, p: &mut Problems) -> Vec<PortMapping> {
    let items = match table.get("ports") {
        None => return Vec::new(),
        Some(Value::Array(items)) => items,
        Some(Value::String(s)) => {
            p.add(
                "config.ports",
                format!("must be an array, not a string; write ports = [{s:?}]"),
            );
            return Vec::new();
        }
        Some(other) => {
            p.add(
                "config.ports",
                format!(
                    "must be an array, e.g. ports = [\"8080\", \"18080:80\", \"53/udp\"]; got {}",
                    kind(other)
                ),
            );
            return Vec::new();
        }
    };
    let mut out: Vec<(usize, PortMapping)> = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let field = format!("config.ports[{i}]");
        let parsed = match item {
            Value::String(s) => port(s),
            Value::Number(n) => n
                .as_u64()
                .and_then(|n| u16::try_from(n).ok())
                .filter(|n| *n > 0)
                .map(|n| (0, n, "tcp"))
                .ok_or_else(|| format!("{n} is not a port: use a number from 1 to 65535")),
            other => Err(format!(
                "must be a string such as \"8080\", \"18080:80\" or \"53/udp\", not {}",
                kind(other)
            )),
        };
        let (host_port, container_port, protocol) = match parsed {
            Ok(parsed) => parsed,
            Err(why) => {
                p.add(field, why);
                continue;
            }
        };
        if let Some((j, _)) = out
            .iter()
            .find(|(_, m)| m.container_port == container_port && m.protocol == protocol)
        {
            p.add(
                field,
                format!(
                    "publishes container port {container_port}/{protocol} again (config.ports[{j}] does already)"
                ),
            );
            continue;
        }
        if let Some((j, _)) = out
            .iter()
            .find(|(_, m)| host_port != 0 && m.host_port == host_port && m.protocol == protocol)
        {
            p.add(
                field,
                format!(
                    "uses host port {host_port}/{protocol}, which config.ports[{j}] already uses"
                ),
            );
            continue;
        }
        let label = if protocol == "udp" {
            format!("port_{container_port}_udp")
        } else {
            format!("port_{container_port}")
        };
        out.push((
            i,
            PortMapping {
                label,
                container_port,
                host_port,
                protocol: protocol.to_owned(),
            },
        ));
    }
    out.into_iter().map(|(_, m)| m).collect()
}

/// One `ports` entry: (host port or 0, container port, protocol).
fn port(spec: &str) -> Result<(u16, u16, &'static str), String> {
    let example = "e.g. \"8080\", \"18080:80\" or \"53/udp\"";
    if spec.trim().is_empty() {
        return Err(format!("is empty; {example}"));
    }
    let (ports, protocol) = match spec.split_once('/') {
        None => (spec, "tcp"),
        Some((ports, "tcp")) => (ports, "tcp"),
        Some((ports, "udp")) => (ports, "udp"),
        Some((_, other)) => {
            return Err(format!(
                "{spec:?}: the protocol {other:?} is not supported; use tcp (the default) or udp"
            ));
        }
    };
    if ports.contains('-') {
        return Err(format!(
            "{spec:?}: port ranges are not supported; list each port, {example}"
        ));
    }
    let number = |s: &str, what: &str, zero: bool| -> Result<u16, String> {
        s.parse::<u16>()
            .ok()
            .filter(|n| zero || *n > 0)
            .ok_or_else(|| {
                format!(
                    "{spec:?}: the {what} port {s:?} is not a number from {} to 65535; {example}",
                    u8::from(!zero)
                )
            })
    };
    let parts: Vec<&str> = ports.split(':').collect();
    match parts.as_slice() {
        [container] => Ok((0, number(container, "container", false)?, protocol)),
        [host, container] => {
            let host = number(host, "host", true);
            let container = number(container, "container", false);
            match (host, container) {
                (Ok(h), Ok(c)) => Ok((h, c, protocol)),
                (Err(e), _) | (_, Err(e)) => Err(e),
            }
        }
        _ => Err(format!(
            "{spec:?}: a bind address cannot be given here: the operator chooses it (port_bind_address in agent.toml's [containers]); write \"HOST_PORT:CONTAINER_PORT\", e.g. \"18080:80\""
        )),
    }
}

/// `mounts`: `[{ source = "local/data", target = "/data", readonly = true }]`.
fn mounts(table: &Map<String, Value>, p: &mut Problems) -> Vec<Mount> {
    const KEYS: &[&str] = &["source", "target", "readonly"];
    const EXAMPLE: &str =
        "mounts = [{ source = \"local/data\", target = \"/data\", readonly = true }]";
    let items = match table.get("mounts") {
        None => return Vec::new(),
        Some(Value::Array(items)) => items,
        Some(Value::Object(_)) => {
            p.add(
                "config.mounts",
                format!("must be an array of tables, not one table; write {EXAMPLE}"),
            );
            return Vec::new();
        }
        Some(other) => {
            p.add(
                "config.mounts",
                format!(
                    "must be an array of tables, e.g. {EXAMPLE}; got {}",
                    kind(other)
                ),
            );
            return Vec::new();
        }
    };
    let mut out: Vec<(usize, Mount)> = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let at = format!("config.mounts[{i}]");
        let Value::Object(m) = item else {
            p.add(
                at,
                format!(
                    "must be a table, e.g. {{ source = \"local/data\", target = \"/data\" }}; got {}",
                    kind(item)
                ),
            );
            continue;
        };
        let before = p.0.len();
        let text = |key: &str, example: &str, p: &mut Problems| match m.get(key) {
            None => {
                p.add(
                    format!("{at}.{key}"),
                    format!("is required, e.g. {key} = {example}"),
                );
                None
            }
            Some(Value::String(s)) if s.trim().is_empty() => {
                p.add(
                    format!("{at}.{key}"),
                    format!("is empty; e.g. {key} = {example}"),
                );
                None
            }
            Some(Value::String(s)) if s.contains('\0') => {
                p.add(format!("{at}.{key}"), "contains a NUL character");
                None
            }
            Some(Value::String(s)) => Some(s.clone()),
            Some(other) => {
                p.add(
                    format!("{at}.{key}"),
                    format!(
                        "must be a string, not {}; e.g. {key} = {example}",
                        kind(other)
                    ),
                );
                None
            }
        };
        let source = text(
            "source",
            "\"local/data\" (the task's own directory) or \"alloc\" (the allocation's shared one)",
            p,
        );
        // The host decides, but a source it can never accept is a config
        // error found before any image is pulled.
        if let Some(source) = &source
            && !source.starts_with('/')
        {
            let mut parts = source.split('/').filter(|c| !c.is_empty() && *c != ".");
            let ok = match parts.next() {
                Some("alloc") => parts.next().is_none(),
                Some("local") => parts.all(|c| c != ".."),
                _ => false,
            };
            if !ok {
                p.add(
                    format!("{at}.source"),
                    format!(
                        "{source:?} is not a directory a task may mount; use \"local\" or \"local/…\" (the task's own directory), \"alloc\" (the allocation's shared directory), or an absolute host path the node's operator allows"
                    ),
                );
            }
        }
        let target = text("target", "\"/data\"", p);
        if let Some(target) = &target {
            let normal = target.trim_end_matches('/');
            if !target.starts_with('/') {
                p.add(
                    format!("{at}.target"),
                    format!("{target:?} must be an absolute path inside the container, e.g. \"/{target}\""),
                );
            } else if normal.is_empty() {
                p.add(format!("{at}.target"), "cannot be the container's root");
            } else if target.split('/').any(|c| c == "..") {
                p.add(
                    format!("{at}.target"),
                    format!("{target:?} contains \"..\"; write the path it means"),
                );
            } else if HOST_MOUNTS.contains(&normal) {
                p.add(
                    format!("{at}.target"),
                    format!(
                        "{normal} is where the host mounts the allocation's own directory ({}); choose another target",
                        HOST_MOUNTS.join(", ")
                    ),
                );
            } else if let Some((j, _)) = out
                .iter()
                .find(|(_, o)| o.target.trim_end_matches('/') == normal)
            {
                p.add(
                    format!("{at}.target"),
                    format!("{normal} is already the target of config.mounts[{j}]"),
                );
            }
        }
        let read_only = match m.get("readonly") {
            None => false,
            Some(Value::Bool(b)) => *b,
            Some(other) => {
                p.add(
                    format!("{at}.readonly"),
                    format!("must be true or false, not {}", kind(other)),
                );
                false
            }
        };
        let mut unknown: Vec<&String> = m.keys().filter(|k| !KEYS.contains(&k.as_str())).collect();
        unknown.sort();
        for key in unknown {
            let hint = match key.to_ascii_lowercase().as_str() {
                "read_only" | "ro" | "read-only" => Some("readonly"),
                "src" => Some("source"),
                "dst" | "dest" | "destination" | "path" => Some("target"),
                k => closest(k, KEYS),
            }
            .map_or_else(
                || format!("a mount has only {}", KEYS.join(", ")),
                |k| format!("did you mean `{k}`?"),
            );
            p.add(
                format!("{at}.{key}"),
                format!("is not a mount setting; {hint}"),
            );
        }
        if let (Some(source), Some(target), true) = (source, target, p.0.len() == before) {
            out.push((
                i,
                Mount {
                    source,
                    target,
                    read_only,
                },
            ));
        }
    }
    out.into_iter().map(|(_, m)| m).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems(json: &str) -> Vec<(String, String)> {
        parse(json)
            .unwrap_err()
            .into_iter()
            .map(|p| (p.field, p.message))
            .collect()
    }

    fn fields(json: &str) -> Vec<String> {
        problems(json).into_iter().map(|(f, _)| f).collect()
    }

    fn message(json: &str, field: &str) -> String {
        problems(json)
            .into_iter()
            .find(|(f, _)| f == field)
            .unwrap_or_else(|| panic!("no problem at {field} for {json}"))
            .1
    }

    #[test]
    fn a_full_config_parses() {
        let c = parse(
            r#"{"image": "127.0.0.1:5000/web:1", "entrypoint": ["/bin/httpd", "-f"],
                "args": ["-p", "8080"], "ports": ["8080", "18081:81", "53/udp", 9090],
                "privileged": true, "network_mode": "bridge", "pid_mode": "host", "ipc_mode": "",
                "mounts": [{"source": "local/data", "target": "/data", "readonly": true},
                           {"source": "/srv/x", "target": "/x"}],
                "user": "1000:1000", "work_dir": "/www"}"#,
        )
        .unwrap();
        assert_eq!(c.image, "127.0.0.1:5000/web:1");
        assert_eq!(
            c.entrypoint,
            Some(vec!["/bin/httpd".to_owned(), "-f".to_owned()])
        );
        assert_eq!(c.args, ["-p", "8080"]);
        let ports: Vec<(&str, u16, u16, &str)> = c
            .ports
            .iter()
            .map(|p| {
                (
                    p.label.as_str(),
                    p.host_port,
                    p.container_port,
                    p.protocol.as_str(),
                )
            })
            .collect();
        assert_eq!(
            ports,
            [
                ("port_8080", 0, 8080, "tcp"),
                ("port_81", 18081, 81, "tcp"),
                ("port_53_udp", 0, 53, "udp"),
                ("port_9090", 0, 9090, "tcp"),
            ]
        );
        assert!(c.privileged && c.host_pid && !c.host_ipc);
        assert_eq!(c.network_mode, "bridge");
        assert_eq!(c.mounts.len(), 2);
        assert!(c.mounts[0].read_only && !c.mounts[1].read_only);
        assert_eq!(c.user.as_deref(), Some("1000:1000"));
        assert_eq!(c.work_dir.as_deref(), Some("/www"));
    }

    #[test]
    fn a_minimal_config_gets_the_defaults() {
        let c = parse(r#"{"image": "busybox"}"#).unwrap();
        assert_eq!(
            c,
            OciConfig {
                image: "busybox:latest".into(),
                network_mode: "bridge".into(),
                ..OciConfig::default()
            }
        );
        let c =
            parse(r#"{"image": "busybox", "command": "/bin/sh", "args": ["-c", "true"]}"#).unwrap();
        assert_eq!(c.entrypoint, Some(vec!["/bin/sh".to_owned()]));
    }

    #[test]
    fn every_problem_is_listed_with_its_field() {
        assert_eq!(
            fields(
                r#"{"image": 5, "entrypoint": ["a", 1], "command": "x", "args": "-v",
                    "ports": ["80", "80", "0", "1-2", "1.2.3.4:80:80", "81/sctp", true],
                    "privileged": "true", "network_mode": "overlay", "pid_mode": "private",
                    "ipc_mode": "shareable",
                    "mounts": [{"source": "", "target": "data", "ro": true}, 3,
                               {"source": "local/a", "target": "/alloc"}, {"source": "logs", "target": "/l"}],
                    "user": "", "work_dir": "app", "volumes": [], "imagee": "x"}"#
            ),
            [
                "config.image",
                "config.entrypoint[1]",
                "config.command",
                "config.args",
                "config.privileged",
                "config.network_mode",
                "config.pid_mode",
                "config.ipc_mode",
                "config.ports[1]",
                "config.ports[2]",
                "config.ports[3]",
                "config.ports[4]",
                "config.ports[5]",
                "config.ports[6]",
                "config.mounts[0].source",
                "config.mounts[0].target",
                "config.mounts[0].ro",
                "config.mounts[1]",
                "config.mounts[2].target",
                "config.mounts[3].source",
                "config.user",
                "config.work_dir",
                "config.imagee",
                "config.volumes",
            ]
        );
    }

    #[test]
    fn messages_say_what_to_do() {
        assert!(message("{}", "config.image").starts_with("is required"));
        assert!(message(r#"{"image": "App"}"#, "config.image").contains("must be lowercase"));
        let both = r#"{"image": "a", "command": "x", "entrypoint": ["y"]}"#;
        assert!(message(both, "config.command").contains("short for entrypoint = [\"x\"]"));
        let j = r#"{"image": "a", "ports": ["80", "80/tcp", "8080:80/udp", "8080:81/udp"]}"#;
        assert!(message(j, "config.ports[1]").contains("config.ports[0] does already"));
        assert!(message(j, "config.ports[3]").contains("host port 8080/udp"));
        let j = r#"{"image": "a", "ports": ["127.0.0.1:80:80"]}"#;
        assert!(message(j, "config.ports[0]").contains("port_bind_address"));
        let j = r#"{"image": "a", "ports": ["80"], "network_mode": "host"}"#;
        assert!(message(j, "config.ports").contains("network_mode = \"host\""));
        let j = r#"{"image": "a", "privileged": "true"}"#;
        assert!(message(j, "config.privileged").contains("drop the quotes: privileged = true"));
        let j = r#"{"image": "a", "mounts": [{"src": "d", "target": "/d", "read_only": true}]}"#;
        assert!(message(j, "config.mounts[0].src").contains("did you mean `source`?"));
        assert!(message(j, "config.mounts[0].read_only").contains("did you mean `readonly`?"));
        assert!(message(j, "config.mounts[0].source").starts_with("is required"));
        let j = r#"{"image": "a", "mounts": [{"source": "local/d", "target": "/d"}, {"source": "alloc", "target": "/d/"}]}"#;
        assert!(
            message(j, "config.mounts[1].target")
                .contains("already the target of config.mounts[0]")
        );
        let j = r#"{"image": "a", "netwrk_mode": "none", "env": {}, "cmd": []}"#;
        assert!(message(j, "config.netwrk_mode").contains("did you mean `network_mode`?"));
        assert!(message(j, "config.env").contains("`env` block"));
        assert!(message(j, "config.cmd").contains("use `args`"));
        let j = r#"{"image": "a", "labels": {}}"#;
        assert!(message(j, "config.labels").contains("the oci driver knows image, entrypoint"));
    }

    #[test]
    fn a_config_that_is_not_a_table_is_one_problem() {
        assert_eq!(fields("[1]"), ["config"]);
        assert_eq!(fields("not json"), ["config"]);
    }
}
