//! Query parameters and blocking queries.
//!
//! Every read accepts `?index=N&wait=DURATION`: it waits until the state's
//! index is above N (or the wait runs out), then answers from one snapshot
//! and says which in `X-Orch-Index`. A client polls by passing back the
//! index it got, so it hears of a change at once without busy polling.

use super::error::ApiError;
use crate::{State, Store};
use axum::extract::{FromRequestParts, Path, Query};
use axum::http::HeaderValue;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use orch_model::Dur;
use orch_wire::INDEX_HEADER;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// How long a blocking query waits when `wait` is not given.
pub const DEFAULT_WAIT: Duration = Duration::from_secs(5 * 60);
/// The longest wait granted: a connection held longer is more likely cut
/// by a proxy than answered.
pub const MAX_WAIT: Duration = Duration::from_secs(10 * 60);

/// A response with the `X-Orch-Index` it was read (or written) at.
pub struct Indexed<T>(pub u64, pub T);

impl<T: IntoResponse> IntoResponse for Indexed<T> {
    fn into_response(self) -> Response {
        let mut response = self.1.into_response();
        response
            .headers_mut()
            .insert(INDEX_HEADER, HeaderValue::from(self.0));
        response
    }
}

/// The query string, taken parameter by parameter so that one nobody took
/// (a typo such as `?jobs=web`) is refused instead of silently ignored.
pub struct Params(BTreeMap<String, String>);

impl<S: Send + Sync> FromRequestParts<S> for Params {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let Query(pairs) = Query::<Vec<(String, String)>>::from_request_parts(parts, state)
            .await
            .map_err(|e| ApiError::bad_request(format!("bad query string: {}", e.body_text())))?;
        Ok(Params(pairs.into_iter().collect()))
    }
}

impl Params {
    pub fn take(&mut self, name: &str) -> Option<String> {
        self.0.remove(name)
    }

    /// A `true`/`false` parameter; present without a value means true.
    pub fn flag(&mut self, name: &str) -> Result<bool, ApiError> {
        match self.take(name).as_deref() {
            None | Some("false") | Some("0") => Ok(false),
            Some("" | "true" | "1") => Ok(true),
            Some(other) => Err(ApiError::bad_request(format!(
                "{name} must be true or false, not {other:?}"
            ))),
        }
    }

    /// Takes `index` and `wait`, refuses any parameter left over, then
    /// waits as asked and returns the snapshot to answer from.
    pub async fn block(mut self, store: &Store) -> Result<Arc<State>, ApiError> {
        let blocking = Blocking::take(&mut self)?;
        self.finish()?;
        Ok(blocking.snapshot(store).await)
    }

    /// Refuses parameters no one took, naming them.
    pub fn finish(self) -> Result<(), ApiError> {
        if self.0.is_empty() {
            return Ok(());
        }
        let names: Vec<&str> = self.0.keys().map(String::as_str).collect();
        Err(ApiError::bad_request(format!(
            "unknown query parameter{} {}; see /v1/openapi.json for what this route takes",
            if names.len() == 1 { "" } else { "s" },
            names.join(", ")
        )))
    }
}

/// `?index=N&wait=D` of one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Blocking {
    pub index: Option<u64>,
    pub wait: Duration,
}

impl Blocking {
    pub fn take(params: &mut Params) -> Result<Self, ApiError> {
        let index = match params.take("index") {
            None => None,
            Some(text) => Some(text.trim().parse::<u64>().map_err(|_| {
                ApiError::bad_request(format!(
                    "index must be a whole number (the X-Orch-Index of an earlier answer), not {text:?}"
                ))
            })?),
        };
        let wait = match params.take("wait") {
            None => DEFAULT_WAIT,
            Some(text) => text
                .parse::<Dur>()
                .map_err(|e| ApiError::bad_request(format!("wait: {e}")))?
                .0
                .min(MAX_WAIT),
        };
        Ok(Self { index, wait })
    }

    /// The state to answer from: at once without `index`, otherwise once
    /// the index is above it or the wait is over.
    pub async fn snapshot(&self, store: &Store) -> Arc<State> {
        if let Some(index) = self.index
            && store.index() <= index
        {
            store.wait_past(index, self.wait).await;
        }
        store.snapshot()
    }
}

/// The `{id}` of a route, with a JSON error when it is not valid text.
pub struct PathId(pub String);

impl<S: Send + Sync> FromRequestParts<S> for PathId {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let Path(id) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|e| ApiError::bad_request(format!("bad path: {}", e.body_text())))?;
        Ok(PathId(id))
    }
}

/// The shortest id prefix looked up; shorter ones match too much to mean
/// anything (Nomad's rule).
pub const MIN_PREFIX: usize = 4;

/// Finds the one id that is `wanted` or starts with it, among `ids`.
/// Exact matches win; an ambiguous prefix names its matches.
pub fn resolve<'a>(
    kind: &str,
    wanted: &str,
    ids: impl Iterator<Item = &'a str>,
) -> Result<String, ApiError> {
    let mut matches: Vec<&str> = Vec::new();
    for id in ids {
        if id == wanted {
            return Ok(id.to_owned());
        }
        if wanted.len() >= MIN_PREFIX && id.starts_with(wanted) {
            matches.push(id);
        }
    }
    if let [only] = matches[..] {
        return Ok(only.to_owned());
    }
    match matches.len() {
        0 if wanted.len() < MIN_PREFIX => Err(ApiError::not_found(format!(
            "{kind} {wanted:?} not found (an id prefix needs at least {MIN_PREFIX} characters)"
        ))),
        0 => Err(ApiError::no_such(kind, wanted)),
        n => {
            matches.sort_unstable();
            const SHOWN: usize = 10;
            let mut names = matches[..n.min(SHOWN)].join(", ");
            if n > SHOWN {
                names.push_str(&format!(" and {} more", n - SHOWN));
            }
            Err(ApiError::bad_request(format!(
                "id prefix {wanted:?} matches {n} {kind}s: {names}; give more of the id"
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests may")]
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> Params {
        Params(
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        )
    }

    #[test]
    fn wait_defaults_parses_and_caps() {
        let b = Blocking::take(&mut params(&[])).unwrap();
        assert_eq!(
            b,
            Blocking {
                index: None,
                wait: DEFAULT_WAIT
            }
        );
        let b = Blocking::take(&mut params(&[("index", "7"), ("wait", "500ms")])).unwrap();
        assert_eq!(b.index, Some(7));
        assert_eq!(b.wait, Duration::from_millis(500));
        let b = Blocking::take(&mut params(&[("wait", "1h")])).unwrap();
        assert_eq!(b.wait, MAX_WAIT);
        let e = Blocking::take(&mut params(&[("wait", "5 minutes")])).unwrap_err();
        assert!(
            e.body
                .message
                .starts_with("wait: \"5 minutes\" is not a duration")
        );
        let e = Blocking::take(&mut params(&[("index", "-1")])).unwrap_err();
        assert!(e.body.message.starts_with("index must be a whole number"));
    }

    #[test]
    fn leftover_parameters_are_named() {
        let mut p = params(&[("jobs", "web"), ("index", "1")]);
        Blocking::take(&mut p).unwrap();
        let e = p.finish().unwrap_err();
        assert!(e.body.message.starts_with("unknown query parameter jobs;"));
    }

    #[test]
    fn prefixes() {
        let ids = ["abcd1111", "abcd2222", "ffff0000"];
        let find = |w: &str| resolve("allocation", w, ids.iter().copied());
        assert_eq!(find("ffff").unwrap(), "ffff0000");
        assert_eq!(find("abcd1").unwrap(), "abcd1111");
        let e = find("abcd").unwrap_err();
        assert_eq!(e.status, axum::http::StatusCode::BAD_REQUEST);
        assert!(
            e.body.message.contains("abcd1111, abcd2222"),
            "{}",
            e.body.message
        );
        assert_eq!(
            find("abc").unwrap_err().status,
            axum::http::StatusCode::NOT_FOUND
        );
        assert_eq!(
            find("0000").unwrap_err().status,
            axum::http::StatusCode::NOT_FOUND
        );
    }
}
