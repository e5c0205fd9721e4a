//! Walks a parsed TOML document against the [schema](super::schema),
//! collecting every unknown key, type mismatch and missing field with its
//! byte span, and indexing the span of every field path so that problems
//! found later, on the typed job, can be placed too.

use super::schema::{JOB, Kind, Schema};
use super::suggest::closest;
use crate::{Dur, Problem};
use std::collections::HashMap;
use std::ops::Range;
use toml::Spanned;
use toml::de::{DeTable, DeValue};

/// A problem and where in the text it is.
pub(super) struct Located {
    pub(super) problem: Problem,
    pub(super) span: Option<Range<usize>>,
}

/// Field path (`group[0].task[1].resources.memory`) to the span that
/// locates it: a key for a field, the table for an array element.
pub(super) type SpanIndex = HashMap<String, Range<usize>>;

#[derive(Default)]
pub(super) struct Walk {
    pub(super) problems: Vec<Located>,
    pub(super) spans: SpanIndex,
}

/// Walk the whole document; the job's keys are at its top level.
pub(super) fn walk_document(doc: &Spanned<DeTable<'_>>) -> Walk {
    let mut walk = Walk::default();
    walk.spans.insert(String::new(), doc.span());
    walk.table("", &JOB, doc.get_ref(), doc.span());
    walk
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

/// The TOML table header of a field path: `group[0].task` is written
/// `group.task`.
fn header(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    let mut in_index = false;
    for c in path.chars() {
        match c {
            '[' => in_index = true,
            ']' => in_index = false,
            _ if !in_index => out.push(c),
            _ => {}
        }
    }
    out
}

fn a_type(v: &DeValue<'_>) -> &'static str {
    match v {
        DeValue::String(_) => "a string",
        DeValue::Integer(_) => "an integer",
        DeValue::Float(_) => "a float",
        DeValue::Boolean(_) => "a boolean",
        DeValue::Datetime(_) => "a datetime",
        DeValue::Array(_) => "an array",
        DeValue::Table(_) => "a table",
    }
}

/// The value as TOML would write it, for hints such as "quote it".
fn scalar_text(v: &DeValue<'_>) -> Option<String> {
    match v {
        DeValue::Integer(i) => Some(i.to_string()),
        DeValue::Float(f) => Some(f.to_string()),
        DeValue::Boolean(b) => Some(b.to_string()),
        DeValue::Datetime(d) => Some(d.to_string()),
        _ => None,
    }
}

impl Walk {
    fn push(&mut self, span: Range<usize>, problem: Problem) {
        self.problems.push(Located {
            problem,
            span: Some(span),
        });
    }

    fn table(&mut self, path: &str, schema: &Schema, table: &DeTable<'_>, span: Range<usize>) {
        // Fields a misspelt key was taken for: `drivr` is reported once, as
        // unknown, not again as a missing `driver`.
        let mut suggested = Vec::new();
        for (key, value) in table.iter() {
            let name = key.get_ref().as_ref();
            let Some(field) = schema.field(name) else {
                suggested.extend(self.unknown(path, schema, name, key.span()));
                continue;
            };
            let field_path = join(path, name);
            self.spans.insert(field_path.clone(), key.span());
            if let Kind::ServerSet = field.kind {
                self.push(
                    key.span(),
                    Problem::new(
                        field_path,
                        format!("`{name}` is set by the server, not in a job file"),
                    )
                    .hint("remove it"),
                );
                continue;
            }
            self.value(&field_path, name, field.kind, value);
        }
        // A file in the `[job]` shape gets one problem that says so, not
        // a missing field for every key under the header.
        let wrapped = path.is_empty() && table.contains_key("job");
        for field in schema.fields {
            if let Some(hint) = field.required
                && !wrapped
                && !table.contains_key(field.name)
                && !suggested.contains(&field.name)
            {
                self.push(
                    span.clone(),
                    Problem::new(path, format!("missing field `{}`", field.name)).hint(hint),
                );
            }
        }
    }

    /// Report an unknown key; returns the field it is probably a typo of.
    fn unknown(
        &mut self,
        path: &str,
        schema: &Schema,
        name: &str,
        span: Range<usize>,
    ) -> Option<&'static str> {
        if path.is_empty() && name == "job" {
            // The other shape a job file could have had; say which we chose.
            self.push(
                span,
                Problem::new(path, "unknown field `job`").hint(
                    "a job file has the job's keys at the top level: remove the [job] header",
                ),
            );
            return None;
        }
        let near = closest(name, schema.names());
        let hint = match near {
            Some(near) => format!("did you mean `{near}`?"),
            None => format!(
                "valid fields: {}",
                schema.names().collect::<Vec<_>>().join(", ")
            ),
        };
        self.push(
            span,
            Problem::new(path, format!("unknown field `{name}`")).hint(hint),
        );
        near
    }

    fn mismatch(&mut self, path: &str, expected: &str, value: &Spanned<DeValue<'_>>, hint: String) {
        self.push(
            value.span(),
            Problem::new(
                path,
                format!("expected {expected}, found {}", a_type(value.get_ref())),
            )
            .hint(hint),
        );
    }

    fn value(&mut self, path: &str, name: &str, kind: Kind, value: &Spanned<DeValue<'_>>) {
        let v = value.get_ref();
        match kind {
            Kind::ServerSet => {}
            Kind::Str => {
                if !v.is_str() {
                    let hint = match scalar_text(v) {
                        Some(text) => format!("quote it: {name} = \"{text}\""),
                        None => format!("write {name} = \"...\""),
                    };
                    self.mismatch(path, "a string", value, hint);
                }
            }
            Kind::Bool => {
                if !v.is_bool() {
                    let hint = match v.as_str() {
                        Some(s @ ("true" | "false")) => format!("remove the quotes: {name} = {s}"),
                        _ => format!("write {name} = true or {name} = false"),
                    };
                    self.mismatch(path, "true or false", value, hint);
                }
            }
            Kind::Int { min, max, hint } => self.int(path, name, value, min, max, hint),
            Kind::Dur => match v {
                DeValue::String(s) => {
                    if let Err(e) = s.parse::<Dur>() {
                        self.push(
                            value.span(),
                            Problem::new(
                                path,
                                format!("\"{}\" is not a duration: {}", e.input, e.reason),
                            )
                            .hint("write e.g. \"30s\", \"5m\", \"1h30m\" or \"250ms\""),
                        );
                    }
                }
                DeValue::Integer(i) => {
                    let hint = format!("add a unit and quotes: {name} = \"{i}s\" for seconds");
                    self.mismatch(path, "a duration such as \"30s\"", value, hint);
                }
                _ => self.mismatch(
                    path,
                    "a duration such as \"30s\"",
                    value,
                    "write e.g. \"30s\", \"5m\", \"1h30m\" or \"250ms\"".to_owned(),
                ),
            },
            Kind::Enum(options) => match v.as_str() {
                Some(s) if options.contains(&s) => {}
                Some(s) => {
                    let hint = match closest(s, options.iter().copied()) {
                        Some(near) => format!("did you mean \"{near}\"?"),
                        None => format!("use one of: {}", options.join(", ")),
                    };
                    self.push(
                        value.span(),
                        Problem::new(path, format!("unknown {name} \"{s}\"")).hint(hint),
                    );
                }
                None => {
                    let hint = format!("use one of: {}", options.join(", "));
                    self.mismatch(path, "a string", value, hint);
                }
            },
            Kind::StrList => match v.as_array() {
                Some(items) => {
                    for (i, item) in items.iter().enumerate() {
                        let item_path = format!("{path}[{i}]");
                        self.spans.insert(item_path.clone(), item.span());
                        if !item.get_ref().is_str() {
                            let hint = match scalar_text(item.get_ref()) {
                                Some(text) => format!("quote it: \"{text}\""),
                                None => "write a list of strings, e.g. [\"dc1\"]".to_owned(),
                            };
                            self.mismatch(&item_path, "a string", item, hint);
                        }
                    }
                }
                None => {
                    let hint = match v.as_str() {
                        Some(s) => format!("write a list: {name} = [\"{s}\"]"),
                        None => format!("write a list of strings: {name} = [\"...\"]"),
                    };
                    self.mismatch(path, "an array of strings", value, hint);
                }
            },
            Kind::StrMap => match v.as_table() {
                Some(map) => {
                    for (key, item) in map.iter() {
                        let key = key.get_ref().as_ref();
                        let item_path = join(path, key);
                        self.spans.insert(item_path.clone(), item.span());
                        if !item.get_ref().is_str() {
                            let hint = match scalar_text(item.get_ref()) {
                                Some(text) => format!("quote it: {key} = \"{text}\""),
                                None => format!("{name} values are strings"),
                            };
                            self.mismatch(&item_path, "a string", item, hint);
                        }
                    }
                }
                None => self.mismatch(
                    path,
                    "a table of strings",
                    value,
                    format!("write a [{name}] table, or {name} = {{ KEY = \"value\" }}"),
                ),
            },
            Kind::AnyMap => match v.as_table() {
                Some(_) => self.no_datetimes(path, value),
                None => self.mismatch(
                    path,
                    "a table",
                    value,
                    format!("write a [{name}] table, or {name} = {{ key = \"value\" }}"),
                ),
            },
            Kind::Table(schema) => match v.as_table() {
                Some(table) => self.table(path, schema, table, value.span()),
                None => self.mismatch(
                    path,
                    "a table",
                    value,
                    format!("write a [{name}] table, or {name} = {{ ... }}"),
                ),
            },
            Kind::Tables(schema) => match v {
                DeValue::Array(items) => {
                    for (i, item) in items.iter().enumerate() {
                        let item_path = format!("{path}[{i}]");
                        self.spans.insert(item_path.clone(), item.span());
                        match item.get_ref().as_table() {
                            Some(table) => self.table(&item_path, schema, table, item.span()),
                            None => self.mismatch(
                                &item_path,
                                "a table",
                                item,
                                format!("each {name} is a table: [[{name}]] or {{ ... }}"),
                            ),
                        }
                    }
                }
                DeValue::Table(_) => self.mismatch(
                    path,
                    "an array of tables",
                    value,
                    format!(
                        "write [[{}]] with double brackets: there may be several",
                        header(path)
                    ),
                ),
                _ => self.mismatch(
                    path,
                    "an array of tables",
                    value,
                    format!("write a [[{}]] table", header(path)),
                ),
            },
        }
    }

    fn int(
        &mut self,
        path: &str,
        name: &str,
        value: &Spanned<DeValue<'_>>,
        min: i64,
        max: i64,
        hint: &str,
    ) {
        match value.get_ref() {
            DeValue::Integer(i) => {
                let n = i128::from_str_radix(i.as_str(), i.radix()).ok();
                if !n.is_some_and(|n| (i128::from(min)..=i128::from(max)).contains(&n)) {
                    self.push(
                        value.span(),
                        Problem::new(path, format!("{i} is out of range for {name}")).hint(hint),
                    );
                }
            }
            DeValue::String(s) if s.trim().parse::<i64>().is_ok() => {
                let hint = format!("remove the quotes: {name} = {}", s.trim());
                self.mismatch(path, "an integer", value, hint);
            }
            DeValue::Float(f) => {
                self.push(
                    value.span(),
                    Problem::new(path, format!("expected an integer, found the float {f}"))
                        .hint(hint),
                );
            }
            _ => self.mismatch(path, "an integer", value, hint.to_owned()),
        }
    }

    /// Driver configuration is free-form, but it reaches drivers as JSON,
    /// which has no datetimes.
    fn no_datetimes(&mut self, path: &str, value: &Spanned<DeValue<'_>>) {
        match value.get_ref() {
            DeValue::Datetime(d) => {
                self.push(
                    value.span(),
                    Problem::new(path, "datetimes are not supported in config")
                        .hint(format!("quote it: \"{d}\"")),
                );
            }
            DeValue::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    self.no_datetimes(&format!("{path}[{i}]"), item);
                }
            }
            DeValue::Table(map) => {
                for (key, item) in map.iter() {
                    self.no_datetimes(&join(path, key.get_ref()), item);
                }
            }
            _ => {}
        }
    }
}
