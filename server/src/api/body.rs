//! JSON request bodies: the content type checked, the size limited, and a
//! body that does not parse refused with what is wrong and where.
//!
//! serde_json says *where* (line and column) but not *in which field*; the
//! field is what a person fixes, so [`path_at`] recovers it by walking the
//! JSON text up to the error's position. The path uses the scheme of
//! `validate_job`'s problems (`job.group[0].task[1].resources`), so a
//! client prints both kinds of error the same way.

use super::ApiContext;
use super::error::ApiError;
use axum::body::HttpBody;
use axum::extract::{FromRequest, Request};
use axum::http::{HeaderMap, header};
use orch_model::Problem;
use serde::de::DeserializeOwned;

/// A JSON body of type `T`; every way it can be wrong is an [`ApiError`].
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned> FromRequest<ApiContext> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &ApiContext) -> Result<Self, ApiError> {
        if !is_json(req.headers()) {
            let got = req
                .headers()
                .get(header::CONTENT_TYPE)
                .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
            return Err(ApiError::unsupported_media_type(got.as_deref()));
        }
        // A client that stops sending would hold its connection (and the
        // server's shutdown) forever.
        let bytes = tokio::time::timeout(BODY_TIMEOUT, read_limited(req, state.max_body_bytes))
            .await
            .map_err(|_| {
                ApiError::new(
                    axum::http::StatusCode::REQUEST_TIMEOUT,
                    "request_timeout",
                    format!(
                        "the request body did not arrive within {} s; send it whole, and check the Content-Length",
                        BODY_TIMEOUT.as_secs()
                    ),
                )
            })??;
        parse(&bytes).map(JsonBody)
    }
}

/// Past the limit, the rest of a body is still read, and thrown away, up
/// to this much: most clients send the whole body before reading the
/// answer, and a connection closed under them reads as a broken pipe rather
/// than as the 413 that says what to do. Beyond it the connection is cut.
const DRAIN_MAX: usize = 32 * 1024 * 1024;

/// How long a request body may take to arrive.
const BODY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// The body, if it is at most `limit` bytes. Read here rather than by
/// axum's `Bytes` (which [`DefaultBodyLimit`](axum::extract::DefaultBodyLimit)
/// limits too) so that an oversized body can be drained first.
async fn read_limited(req: Request, limit: usize) -> Result<Vec<u8>, ApiError> {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit.saturating_add(DRAIN_MAX)) {
        return Err(ApiError::body_too_large(limit));
    }
    let mut body = std::pin::pin!(req.into_body());
    let mut buf = Vec::with_capacity(declared.unwrap_or(0).min(limit));
    let mut seen: usize = 0;
    while let Some(frame) = std::future::poll_fn(|cx| body.as_mut().poll_frame(cx)).await {
        let frame =
            frame.map_err(|e| ApiError::bad_request(format!("cannot read the body: {e}")))?;
        let Ok(data) = frame.into_data() else {
            continue; // trailers
        };
        seen = seen.saturating_add(data.len());
        if seen <= limit {
            buf.extend_from_slice(&data);
        } else if seen > limit.saturating_add(DRAIN_MAX) {
            break;
        } else if !buf.is_empty() {
            buf = Vec::new();
        }
    }
    if seen > limit {
        return Err(ApiError::body_too_large(limit));
    }
    Ok(buf)
}

/// `application/json`, or any `application/*+json`, parameters ignored.
fn is_json(headers: &HeaderMap) -> bool {
    let Some(value) = headers.get(header::CONTENT_TYPE) else {
        return false;
    };
    let Ok(value) = value.to_str() else {
        return false;
    };
    let essence = value
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || essence
            .strip_prefix("application/")
            .is_some_and(|sub| sub.ends_with("+json"))
}

/// Deserializes `bytes` as `T`, or says what is wrong and where.
pub fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let what = type_label::<T>();
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::bad_request(format!(
            "the request body is empty; send a {what} as JSON"
        )));
    }
    serde_json::from_slice(bytes).map_err(|e| describe(bytes, &e, what))
}

fn describe(bytes: &[u8], e: &serde_json::Error, what: &str) -> ApiError {
    let (line, column) = (e.line(), e.column());
    // serde_json appends the position to its message; it is given separately
    // (and as numbers in the details), so take it off.
    let full = e.to_string();
    let suffix = format!(" at line {line} column {column}");
    let reason = full.strip_suffix(&suffix).unwrap_or(&full).to_owned();
    let path = if line == 0 {
        String::new()
    } else {
        path_at(bytes, offset_of(bytes, line, column))
    };
    let kind = match e.classify() {
        serde_json::error::Category::Syntax => "is not valid JSON",
        serde_json::error::Category::Eof => "ends early",
        serde_json::error::Category::Data | serde_json::error::Category::Io => {
            "does not match the schema"
        }
    };
    let at = if path.is_empty() {
        String::new()
    } else {
        format!(" at {path}")
    };
    let message = format!("the {what} body {kind}{at} (line {line}, column {column}): {reason}");
    let mut problem = Problem::new(path, reason);
    problem.line = u32::try_from(line).ok().filter(|&l| l > 0);
    problem.column = u32::try_from(column).ok().filter(|_| line > 0);
    ApiError::bad_request(message).with_details(vec![problem])
}

/// The last segment of `T`'s type name: `JobRegisterRequest`, `Node`.
fn type_label<T>() -> &'static str {
    let full = std::any::type_name::<T>();
    let base = full.split('<').next().unwrap_or(full);
    base.rsplit("::").next().unwrap_or(base)
}

/// The byte offset of serde_json's (line, column): lines count from 1,
/// columns count the bytes already read on that line.
fn offset_of(bytes: &[u8], line: usize, column: usize) -> usize {
    let mut start = 0;
    for _ in 1..line {
        match bytes[start..].iter().position(|&b| b == b'\n') {
            Some(nl) => start += nl + 1,
            None => return bytes.len(),
        }
    }
    start.saturating_add(column).min(bytes.len())
}

/// The path of the value being read at byte `offset` of a JSON text, e.g.
/// `job.group[0].task[1].resources`: object keys joined by dots, array
/// positions in brackets. Keys are shown as written (escapes are not
/// decoded). It tolerates broken JSON: it only tracks brackets, commas,
/// colons and strings.
pub fn path_at(text: &[u8], offset: usize) -> String {
    enum Frame {
        Object { key: Option<String>, want_key: bool },
        Array { index: usize },
    }
    let mut stack: Vec<Frame> = Vec::new();
    let end = offset.min(text.len());
    let mut i = 0;
    while i < end {
        match text[i] {
            b'{' => stack.push(Frame::Object {
                key: None,
                want_key: true,
            }),
            b'[' => stack.push(Frame::Array { index: 0 }),
            b'}' | b']' => {
                stack.pop();
            }
            b':' => {
                if let Some(Frame::Object { want_key, .. }) = stack.last_mut() {
                    *want_key = false;
                }
            }
            b',' => match stack.last_mut() {
                Some(Frame::Object { key, want_key }) => {
                    *key = None;
                    *want_key = true;
                }
                Some(Frame::Array { index }) => *index += 1,
                None => {}
            },
            b'"' => {
                let close = string_end(text, i + 1);
                if let Some(Frame::Object {
                    key,
                    want_key: true,
                }) = stack.last_mut()
                {
                    let raw = &text[i + 1..close.min(text.len())];
                    *key = Some(String::from_utf8_lossy(raw).into_owned());
                }
                // Past the closing quote; the loop's `i += 1` steps over it.
                i = close;
            }
            _ => {}
        }
        i += 1;
    }
    let mut path = String::new();
    for frame in &stack {
        match frame {
            Frame::Object { key: Some(key), .. } => {
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(key);
            }
            // An object whose key is not read yet: the error is about the
            // object itself, and nothing deeper exists.
            Frame::Object { key: None, .. } => break,
            Frame::Array { index } => path.push_str(&format!("[{index}]")),
        }
    }
    path
}

/// The index of the quote closing a string whose content starts at `from`
/// (the text's length when it is not closed).
fn string_end(text: &[u8], from: usize) -> usize {
    let mut j = from;
    while j < text.len() {
        match text[j] {
            b'\\' => j += 2,
            b'"' => return j,
            _ => j += 1,
        }
    }
    text.len()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic, reason = "tests may")]
    use super::*;
    use orch_wire::JobRegisterRequest;

    fn error_of(text: &str) -> ApiError {
        match parse::<JobRegisterRequest>(text.as_bytes()) {
            Ok(_) => panic!("{text} parsed"),
            Err(e) => e,
        }
    }

    #[test]
    fn unknown_field_names_its_path() {
        let e = error_of(
            r#"{"job": {"id": "web", "group": [{"name": "g", "task": [{"name": "t", "driver": "exec", "resources": {"memroy": 5}}]}]}}"#,
        );
        assert_eq!(e.body.code, "bad_request");
        let p = &e.body.details[0];
        assert_eq!(p.field, "job.group[0].task[0].resources.memroy");
        assert!(p.message.starts_with("unknown field `memroy`"), "{p:?}");
        assert_eq!(p.line, Some(1));
        assert!(
            e.body
                .message
                .contains("at job.group[0].task[0].resources.memroy (line 1"),
            "{}",
            e.body.message
        );
    }

    #[test]
    fn wrong_type_on_a_later_line() {
        let e = error_of(
            "{\n  \"job\": {\n    \"id\": \"web\",\n    \"group\": [\n      {\"name\": \"a\", \"task\": []},\n      {\"name\": \"b\", \"count\": \"three\", \"task\": []}\n    ]\n  }\n}",
        );
        let p = &e.body.details[0];
        assert_eq!(p.field, "job.group[1].count");
        assert_eq!(p.line, Some(6));
        assert!(
            p.message.starts_with("invalid type: string \"three\""),
            "{p:?}"
        );
    }

    #[test]
    fn missing_field_names_the_object() {
        let e = error_of(r#"{"job": {"id": "web"}}"#);
        let p = &e.body.details[0];
        assert_eq!(p.field, "job");
        assert_eq!(p.message, "missing field `group`");
    }

    #[test]
    fn syntax_errors_and_empty_bodies() {
        let e = error_of(r#"{"job": {"id": "web",, }}"#);
        assert!(
            e.body.message.contains("is not valid JSON at job"),
            "{}",
            e.body.message
        );
        let e = error_of(r#"{"job": {"id": "#);
        assert!(e.body.message.contains("ends early"), "{}", e.body.message);
        let e = error_of("  \n");
        assert_eq!(
            e.body.message,
            "the request body is empty; send a JobRegisterRequest as JSON"
        );
    }

    #[test]
    fn content_types() {
        let with = |ct: &str| {
            let mut h = HeaderMap::new();
            h.insert(header::CONTENT_TYPE, ct.parse().unwrap());
            is_json(&h)
        };
        assert!(with("application/json"));
        assert!(with("Application/JSON; charset=utf-8"));
        assert!(with("application/merge-patch+json"));
        assert!(!with("text/plain"));
        assert!(!with("application/x-www-form-urlencoded"));
        assert!(!is_json(&HeaderMap::new()));
    }

    #[test]
    fn path_at_tolerates_strings_with_brackets_and_escapes() {
        let text = br#"{"a": "x[,]\"{", "b": [1, {"c": 2}]}"#;
        let at = |needle: &str| {
            let pos = std::str::from_utf8(text).unwrap().find(needle).unwrap();
            path_at(text, pos + needle.len())
        };
        assert_eq!(at(r#""x[,]\"{""#), "a");
        assert_eq!(at(r#"[1, {"c": 2"#), "b[1].c");
        assert_eq!(at(r#"[1, {"c": 2}]"#), "b");
    }
}
