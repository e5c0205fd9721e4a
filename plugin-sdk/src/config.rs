//! Reading a driver's task `config` (the job file's table, as JSON text)
//! so that every problem is reported at its field with a fix: the pieces
//! every driver's validation needs.

use crate::ConfigError;
use serde_json::{Map, Value};

/// The task config as a table, or the one problem that stops reading it.
/// `example` shows a minimal config, e.g. `command = "/bin/echo"`.
pub fn table(json: &str, example: &str) -> Result<Map<String, Value>, Vec<ConfigError>> {
    let value: Value = serde_json::from_str(json).map_err(|e| {
        vec![ConfigError::new(
            "config",
            format!("is not valid JSON ({e}); the agent should have sent the job's config table"),
        )]
    })?;
    match value {
        Value::Object(table) => Ok(table),
        other => Err(vec![ConfigError::new(
            "config",
            format!(
                "must be a table, e.g. config {{ {example} }}; got {}",
                kind(&other)
            ),
        )]),
    }
}

/// How a JSON value reads in a message.
pub fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "a table",
    }
}

/// A scalar as the user would write it without quotes (`true`, `8080`).
pub fn unquoted(value: &Value) -> String {
    match value {
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        _ => "…".to_owned(),
    }
}

/// The known config key `key` is most likely a misspelling of, if one is
/// close (case aside, within a third of its length in edits): the
/// "did you mean" of a driver's config errors.
pub fn closest(key: &str, known: &[&'static str]) -> Option<&'static str> {
    let key = key.to_ascii_lowercase();
    known
        .iter()
        .map(|k| (edit_distance(&key, k), *k))
        .filter(|(d, k)| *d <= (k.len() / 3).max(1))
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

/// Levenshtein distance, by characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}
