//! The exec driver's task config: `command` (required) and `args`, checked
//! so that every problem is reported at once, each at its field with a fix.

use orch_plugin_sdk::ConfigError;
use orch_plugin_sdk::config::{kind, unquoted};
use serde_json::Value;

/// The settings the exec driver knows, for "did you mean" suggestions.
const KNOWN: &[&str] = &["command", "args"];

/// A valid exec config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecConfig {
    /// The program to run: a path, or a name looked up in the task
    /// directory, then in `PATH`.
    pub command: String,
    pub args: Vec<String>,
}

impl ExecConfig {
    /// `command` followed by `args`.
    pub fn argv(&self) -> Vec<String> {
        std::iter::once(self.command.clone())
            .chain(self.args.iter().cloned())
            .collect()
    }
}

/// Parses the task's `config` table (JSON text), or lists every problem.
pub fn parse(json: &str) -> Result<ExecConfig, Vec<ConfigError>> {
    let table = orch_plugin_sdk::config::table(json, "command = \"/bin/echo\"")?;
    let mut problems = Vec::new();
    let command = match table.get("command") {
        None => {
            problems.push(ConfigError::new(
                "config.command",
                "is required: the program to run, e.g. command = \"/usr/bin/env\"",
            ));
            None
        }
        Some(Value::String(c)) if c.trim().is_empty() => {
            problems.push(ConfigError::new(
                "config.command",
                "is empty: give the program to run, e.g. command = \"/usr/bin/env\"",
            ));
            None
        }
        Some(Value::String(c)) if c.contains('\0') => {
            problems.push(ConfigError::new(
                "config.command",
                "contains a NUL character, which no program path can",
            ));
            None
        }
        Some(Value::String(c)) => Some(c.clone()),
        Some(other) => {
            problems.push(ConfigError::new(
                "config.command",
                format!(
                    "must be a string (the program to run), not {}; quote it, e.g. command = \"/usr/bin/env\"",
                    kind(other)
                ),
            ));
            None
        }
    };
    let mut args = Vec::new();
    match table.get("args") {
        None => {}
        Some(Value::Array(items)) => {
            for (i, item) in items.iter().enumerate() {
                match item {
                    Value::String(a) if a.contains('\0') => problems.push(ConfigError::new(
                        format!("config.args[{i}]"),
                        "contains a NUL character, which no argument can",
                    )),
                    Value::String(a) => args.push(a.clone()),
                    other => problems.push(ConfigError::new(
                        format!("config.args[{i}]"),
                        format!(
                            "must be a string, not {}; quote it, e.g. \"{}\"",
                            kind(other),
                            unquoted(other)
                        ),
                    )),
                }
            }
        }
        Some(Value::String(s)) => problems.push(ConfigError::new(
            "config.args",
            format!(
                "must be an array of strings, not a string; write args = [{:?}] (one element per argument)",
                s
            ),
        )),
        Some(other) => problems.push(ConfigError::new(
            "config.args",
            format!(
                "must be an array of strings, e.g. args = [\"-c\", \"echo hi\"]; got {}",
                kind(other)
            ),
        )),
    }
    let mut unknown: Vec<&String> = table
        .keys()
        .filter(|k| !KNOWN.contains(&k.as_str()))
        .collect();
    unknown.sort();
    for key in unknown {
        let hint = match closest(key) {
            Some(known) => format!("did you mean `{known}`?"),
            None => format!("the exec driver knows only {}", KNOWN.join(" and ")),
        };
        problems.push(ConfigError::new(
            format!("config.{key}"),
            format!("is not a setting of the exec driver; {hint}"),
        ));
    }
    match command {
        Some(command) if problems.is_empty() => Ok(ExecConfig { command, args }),
        _ => Err(problems),
    }
}

/// The known setting `key` is most likely a misspelling of, if any is close.
fn closest(key: &str) -> Option<&'static str> {
    orch_plugin_sdk::config::closest(key, KNOWN)
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

    #[test]
    fn a_valid_config_parses() {
        let c = parse(r#"{"command": "/bin/sh", "args": ["-c", "echo hi"]}"#).unwrap();
        assert_eq!(c.argv(), vec!["/bin/sh", "-c", "echo hi"]);
        let c = parse(r#"{"command": "sleep"}"#).unwrap();
        assert_eq!(c.argv(), vec!["sleep"]);
    }

    #[test]
    fn every_problem_is_listed_with_its_field() {
        assert_eq!(
            fields(r#"{"args": ["a", 2, true], "comand": "x", "env": {}}"#),
            vec![
                "config.command",
                "config.args[1]",
                "config.args[2]",
                "config.comand",
                "config.env"
            ]
        );
    }

    #[test]
    fn messages_say_what_to_do() {
        let p = problems(r#"{"command": 7, "args": "-v", "arg": []}"#);
        assert_eq!(p[0].0, "config.command");
        assert!(p[0].1.contains("must be a string"), "{}", p[0].1);
        assert!(p[0].1.contains("not a number"), "{}", p[0].1);
        assert_eq!(p[1].0, "config.args");
        assert!(p[1].1.contains(r#"args = ["-v"]"#), "{}", p[1].1);
        assert_eq!(p[2].0, "config.arg");
        assert!(p[2].1.contains("did you mean `args`?"), "{}", p[2].1);
    }

    #[test]
    fn missing_and_empty_commands_are_refused() {
        let p = problems("{}");
        assert_eq!(p.len(), 1);
        assert!(p[0].1.starts_with("is required"), "{}", p[0].1);
        let p = problems(r#"{"command": "  "}"#);
        assert!(p[0].1.starts_with("is empty"), "{}", p[0].1);
        let p = problems(r#"{"command": "/bin/true", "args": 3}"#);
        assert_eq!(p[0].0, "config.args");
        assert!(p[0].1.contains("got a number"), "{}", p[0].1);
    }

    #[test]
    fn a_config_that_is_not_a_table_is_one_problem() {
        assert_eq!(fields("[1]"), vec!["config"]);
        assert_eq!(fields("not json"), vec!["config"]);
    }

    #[test]
    fn suggestions_only_for_near_misses() {
        assert_eq!(closest("comand"), Some("command"));
        assert_eq!(closest("Command"), Some("command"));
        assert_eq!(closest("cmd"), None);
        assert_eq!(closest("argv"), Some("args"));
        assert_eq!(closest("environment"), None);
        let p = problems(r#"{"command": "x", "image": "y"}"#);
        assert!(p[0].1.contains("knows only command and args"), "{}", p[0].1);
    }
}
