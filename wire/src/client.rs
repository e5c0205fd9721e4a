//! The one HTTP client of orch's processes: the CLI and the agent talk to
//! the server with it, and the server to agents (the log relay). A wrapper
//! over `ureq` that turns every way a request can go wrong into an error a
//! person can act on, and keeps the JSON text of an answer so `--json` can
//! print it unchanged.

use crate::ErrorBody;
use crate::routes::{Method, Route};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::fmt;
use std::time::Duration;

/// Where `orch` looks for a server when told nothing else.
pub const DEFAULT_ADDRESS: &str = "http://127.0.0.1:4646";

/// The header every answer of the server carries: the state index it was
/// read (or written) at.
pub const INDEX_HEADER: &str = "x-orch-index";
/// The header naming the log file to ask from next.
pub const LOG_FILE_HEADER: &str = "x-orch-log-file";
/// The header naming the offset in that file to ask from next.
pub const LOG_OFFSET_HEADER: &str = "x-orch-log-offset";

/// How a client behaves: who it says it is, how long it waits, how much it
/// reads, and what it tells a person when nothing answers.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    pub user_agent: &'static str,
    /// How long connecting may take.
    pub connect_timeout: Duration,
    /// How long a plain request may take; a blocking query gets its wait
    /// on top.
    pub timeout: Duration,
    /// The most bytes read of one answer.
    pub body_limit: u64,
    /// Said after "cannot reach …" (e.g. how to point the CLI elsewhere).
    pub unreachable_hint: &'static str,
}

impl ClientOptions {
    /// `orch job|node|eval|alloc`: a person waits, and lists of a large
    /// cluster's allocations run to megabytes.
    pub fn cli() -> Self {
        Self {
            user_agent: concat!("orch-cli/", env!("CARGO_PKG_VERSION")),
            connect_timeout: Duration::from_secs(5),
            timeout: Duration::from_secs(60),
            body_limit: 256 << 20,
            unreachable_hint: "is `orch server` running? set ORCH_ADDR or --address",
        }
    }

    /// An agent reporting to its server; it retries on its own schedule.
    pub fn agent() -> Self {
        Self {
            user_agent: concat!("orch-agent/", env!("CARGO_PKG_VERSION")),
            connect_timeout: Duration::from_secs(5),
            timeout: Duration::from_secs(30),
            body_limit: 64 << 20,
            unreachable_hint: "",
        }
    }

    /// The server asking an agent (the log relay): an agent that does not
    /// answer this fast is not there, and the client waiting on the server
    /// should hear so soon.
    pub fn server() -> Self {
        Self {
            user_agent: concat!("orch-server/", env!("CARGO_PKG_VERSION")),
            connect_timeout: Duration::from_secs(3),
            timeout: Duration::from_secs(30),
            body_limit: 16 << 20,
            unreachable_hint: "",
        }
    }
}

/// Why a request did not give the answer asked for.
#[derive(Debug)]
pub enum ClientError {
    /// The address is not one this client can speak to.
    Address { address: String, reason: String },
    /// No HTTP answer at all: refused, unresolvable, timed out, cut off.
    Unreachable {
        address: String,
        cause: String,
        hint: &'static str,
    },
    /// The server answered with an error.
    Api {
        address: String,
        status: u16,
        body: ErrorBody,
    },
    /// The server answered something this client does not understand
    /// (another program on the port, or a server of another version).
    Unexpected {
        address: String,
        status: u16,
        detail: String,
    },
    /// The answer began (with this status) but the connection broke off
    /// before its body was read.
    BrokeOff {
        address: String,
        status: u16,
        cause: String,
    },
}

impl ClientError {
    /// The HTTP status of an answer, if there was one.
    pub fn status(&self) -> Option<u16> {
        match self {
            ClientError::Api { status, .. }
            | ClientError::Unexpected { status, .. }
            | ClientError::BrokeOff { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// Whether the answer was HTTP 404, with an orch error body or not (a
    /// proxy in front of the server, or a server that lost the object).
    pub fn is_not_found(&self) -> bool {
        self.status() == Some(404)
    }

    /// Whether the request itself was refused (a 4xx other than those that
    /// say "later": 404, 408, 429), with an orch error body or not, so
    /// sending it again will not help.
    pub fn is_refused(&self) -> bool {
        self.status()
            .is_some_and(|s| (400..500).contains(&s) && !matches!(s, 404 | 408 | 429))
    }
}

impl std::error::Error for ClientError {}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientError::Address { address, reason } => {
                write!(f, "cannot use the address {address}: {reason}")
            }
            ClientError::Unreachable {
                address,
                cause,
                hint,
            } => {
                write!(f, "cannot reach the orch server at {address}: {cause}")?;
                if !hint.is_empty() {
                    write!(f, "; {hint}")?;
                }
                Ok(())
            }
            ClientError::Api { status, body, .. } => {
                write!(f, "{} ({}, HTTP {status})", body.message, body.code)?;
                for p in &body.details {
                    write!(f, "\n  {p}")?;
                }
                Ok(())
            }
            ClientError::Unexpected {
                address,
                status,
                detail,
            } => write!(
                f,
                "unexpected answer from {address} (HTTP {status}): {detail}; \
                 is the address an orch server of this version?"
            ),
            ClientError::BrokeOff {
                address,
                status,
                cause,
            } => write!(
                f,
                "the answer from {address} (HTTP {status}) broke off: {cause}; try again"
            ),
        }
    }
}

/// A successful answer: the decoded body, the server's JSON text, and the
/// `X-Orch-Index` it was read at (0 when absent) for blocking queries.
#[derive(Debug)]
pub struct Reply<T> {
    pub body: T,
    pub text: String,
    pub index: u64,
}

/// A successful answer that is not JSON (a task's logs).
#[derive(Debug)]
pub struct RawReply {
    pub body: Vec<u8>,
    pub headers: ureq::http::HeaderMap,
}

impl RawReply {
    /// The whole-number header `name`, if the answer has a valid one.
    pub fn number_header(&self, name: &str) -> Option<u64> {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse().ok())
    }
}

/// A client of one orch process at one address; clones share connections.
#[derive(Clone)]
pub struct Client {
    base: String,
    http: ureq::Agent,
    options: ClientOptions,
}

impl Client {
    /// A client of the server at `address` (`http://host:port`, or a bare
    /// `host:port`).
    pub fn new(address: &str, options: ClientOptions) -> Result<Self, ClientError> {
        let base = normalize_address(address)?;
        let http: ureq::Agent = ureq::Agent::config_builder()
            // Error statuses carry an ErrorBody worth reading.
            .http_status_as_error(false)
            .timeout_connect(Some(options.connect_timeout))
            .user_agent(options.user_agent)
            .build()
            .into();
        Ok(Self {
            base,
            http,
            options,
        })
    }

    /// The same client (options and connection pool) at another address.
    pub fn at(&self, address: &str) -> Result<Self, ClientError> {
        Ok(Self {
            base: normalize_address(address)?,
            http: self.http.clone(),
            options: self.options.clone(),
        })
    }

    /// `http://host:port`, as normalized.
    pub fn address(&self) -> &str {
        &self.base
    }

    /// `GET route` with its path parameters and a query.
    pub fn get<T: DeserializeOwned>(
        &self,
        route: &Route,
        params: &[&str],
        query: &[(&str, &str)],
    ) -> Result<Reply<T>, ClientError> {
        self.get_with_timeout(route, params, query, self.options.timeout)
    }

    /// A blocking query: answers once the server's index passes `index` or
    /// `wait` ran out.
    pub fn get_blocking<T: DeserializeOwned>(
        &self,
        route: &Route,
        params: &[&str],
        index: u64,
        wait: Duration,
    ) -> Result<Reply<T>, ClientError> {
        let index = index.to_string();
        let wait_text = format!("{}ms", wait.as_millis());
        self.get_with_timeout(
            route,
            params,
            &[("index", &index), ("wait", &wait_text)],
            wait + self.options.timeout,
        )
    }

    fn get_with_timeout<T: DeserializeOwned>(
        &self,
        route: &Route,
        params: &[&str],
        query: &[(&str, &str)],
        timeout: Duration,
    ) -> Result<Reply<T>, ClientError> {
        debug_assert_eq!(route.method, Method::Get, "{route} is not a GET");
        let mut req = self.http.get(self.url(route, params));
        for (k, v) in query {
            req = req.query(*k, *v);
        }
        let res = req.config().timeout_global(Some(timeout)).build().call();
        self.answer(res)
    }

    /// A GET whose answer is bytes rather than JSON (a task's logs): the
    /// body as sent, and the headers that come with it.
    pub fn get_bytes(
        &self,
        route: &Route,
        params: &[&str],
        query: &[(&str, &str)],
    ) -> Result<RawReply, ClientError> {
        debug_assert_eq!(route.method, Method::Get, "{route} is not a GET");
        let mut req = self.http.get(self.url(route, params));
        for (k, v) in query {
            req = req.query(*k, *v);
        }
        let mut res = req
            .config()
            .timeout_global(Some(self.options.timeout))
            .build()
            .call()
            .map_err(|e| self.unreachable(&e))?;
        let status = res.status().as_u16();
        let body = res
            .body_mut()
            .with_config()
            .limit(self.options.body_limit)
            .read_to_vec()
            .map_err(|e| self.read_failed(status, &e))?;
        if !(200..300).contains(&status) {
            return Err(self.error_answer(status, &body));
        }
        Ok(RawReply {
            body,
            headers: res.headers().clone(),
        })
    }

    /// The whole-number header `name` of a [`RawReply`], or an error saying
    /// the server did not send it.
    pub fn number_header(&self, reply: &RawReply, name: &str) -> Result<u64, ClientError> {
        reply
            .number_header(name)
            .ok_or_else(|| self.unexpected(200, format!("the answer has no valid {name} header")))
    }

    pub fn post<B: Serialize, T: DeserializeOwned>(
        &self,
        route: &Route,
        params: &[&str],
        body: &B,
    ) -> Result<Reply<T>, ClientError> {
        self.post_with_query(route, params, &[], body)
    }

    /// `POST route` with its path parameters and a query.
    pub fn post_with_query<B: Serialize, T: DeserializeOwned>(
        &self,
        route: &Route,
        params: &[&str],
        query: &[(&str, &str)],
        body: &B,
    ) -> Result<Reply<T>, ClientError> {
        debug_assert_eq!(route.method, Method::Post, "{route} is not a POST");
        let mut req = self.http.post(self.url(route, params));
        for (k, v) in query {
            req = req.query(*k, *v);
        }
        let res = req
            .config()
            .timeout_global(Some(self.options.timeout))
            .build()
            .send_json(body);
        self.answer(res)
    }

    pub fn delete<T: DeserializeOwned>(
        &self,
        route: &Route,
        params: &[&str],
    ) -> Result<Reply<T>, ClientError> {
        debug_assert_eq!(route.method, Method::Delete, "{route} is not a DELETE");
        let res = self
            .http
            .delete(self.url(route, params))
            .config()
            .timeout_global(Some(self.options.timeout))
            .build()
            .call();
        self.answer(res)
    }

    fn url(&self, route: &Route, params: &[&str]) -> String {
        format!("{}{}", self.base, route.path_with(params))
    }

    fn answer<T: DeserializeOwned>(
        &self,
        res: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    ) -> Result<Reply<T>, ClientError> {
        let mut res = res.map_err(|e| self.unreachable(&e))?;
        let status = res.status().as_u16();
        let index = res
            .headers()
            .get(INDEX_HEADER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        let text = res
            .body_mut()
            .with_config()
            .limit(self.options.body_limit)
            .read_to_string()
            .map_err(|e| self.read_failed(status, &e))?;
        if !(200..300).contains(&status) {
            return Err(self.error_answer(status, text.as_bytes()));
        }
        match serde_json::from_str(&text) {
            Ok(body) => Ok(Reply { body, text, index }),
            Err(e) => Err(self.unexpected(status, format!("cannot read the answer: {e}"))),
        }
    }

    /// An error status: the orch error body it carries, or what else it said.
    fn error_answer(&self, status: u16, body: &[u8]) -> ClientError {
        match serde_json::from_slice::<ErrorBody>(body) {
            Ok(body) => ClientError::Api {
                address: self.base.clone(),
                status,
                body,
            },
            Err(_) => self.unexpected(
                status,
                format!(
                    "not an orch error body: {}",
                    clip(&String::from_utf8_lossy(body))
                ),
            ),
        }
    }

    /// Reading an answer failed: it was too large (what answered is not
    /// behaving), or the connection broke off.
    fn read_failed(&self, status: u16, e: &ureq::Error) -> ClientError {
        match e {
            ureq::Error::BodyExceedsLimit(limit) => {
                self.unexpected(status, format!("answered more than {limit} bytes at once"))
            }
            _ => ClientError::BrokeOff {
                address: self.base.clone(),
                status,
                cause: describe(e),
            },
        }
    }

    fn unreachable(&self, e: &ureq::Error) -> ClientError {
        ClientError::Unreachable {
            address: self.base.clone(),
            cause: describe(e),
            hint: self.options.unreachable_hint,
        }
    }

    fn unexpected(&self, status: u16, detail: String) -> ClientError {
        ClientError::Unexpected {
            address: self.base.clone(),
            status,
            detail,
        }
    }
}

fn describe(e: &ureq::Error) -> String {
    match e {
        ureq::Error::Io(io) => io.to_string(),
        ureq::Error::HostNotFound => "host not found".to_owned(),
        ureq::Error::ConnectionFailed => "connection failed".to_owned(),
        ureq::Error::Timeout(t) => format!("timed out ({t})"),
        other => other.to_string(),
    }
}

/// A short, one-line excerpt of a body that was not what we expected, with
/// control characters shown as `�`: whatever answered must not drive the
/// terminal of the person reading the error.
fn clip(text: &str) -> String {
    let one_line: String = text
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .chars()
        .map(|c| if c.is_control() { '\u{fffd}' } else { c })
        .collect();
    if one_line.is_empty() {
        return "(empty body)".to_owned();
    }
    let mut out: String = one_line.chars().take(200).collect();
    if out.len() < one_line.len() {
        out.push('…');
    }
    out
}

/// `http://host:port` without a trailing slash. A bare `host:port` gets
/// `http://`, as people type it after Nomad; `https` is refused by name
/// because no orch process serves TLS yet.
pub fn normalize_address(address: &str) -> Result<String, ClientError> {
    let refuse = |reason: &str| ClientError::Address {
        address: address.to_owned(),
        reason: reason.to_owned(),
    };
    let trimmed = address.trim().trim_end_matches('/');
    if trimmed.is_empty() {
        return Err(refuse("it is empty (e.g. http://127.0.0.1:4646)"));
    }
    let lower = trimmed.to_ascii_lowercase();
    if lower.starts_with("https://") {
        return Err(refuse(
            "orch speaks plain http only (no orch process serves TLS yet); use http://HOST:PORT, \
             or reach a TLS server through a local proxy or an SSH tunnel",
        ));
    }
    if lower.starts_with("http://") {
        if trimmed.len() == "http://".len() {
            return Err(refuse("it has no host (e.g. http://127.0.0.1:4646)"));
        }
        return Ok(trimmed.to_owned());
    }
    if let Some((scheme, _)) = trimmed.split_once("://") {
        return Err(refuse(&format!(
            "`{scheme}` is not a scheme orch speaks; use http://HOST:PORT"
        )));
    }
    Ok(format!("http://{trimmed}"))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic, reason = "tests may")]
    use super::*;

    #[test]
    fn addresses() {
        assert_eq!(
            normalize_address("http://10.0.0.1:4646/").unwrap(),
            "http://10.0.0.1:4646"
        );
        assert_eq!(normalize_address("box:4646").unwrap(), "http://box:4646");
        let e = normalize_address("https://box:4646")
            .unwrap_err()
            .to_string();
        assert!(e.contains("plain http only"), "{e}");
        let e = normalize_address("ftp://box").unwrap_err().to_string();
        assert!(e.contains("`ftp` is not a scheme"), "{e}");
    }

    /// What another program on the port answers: named as not this
    /// server, with an excerpt of what it said.
    #[test]
    fn answers_that_are_not_an_orch_servers() {
        let client = Client::new("127.0.0.1:1", ClientOptions::cli()).unwrap();
        let answer = |status: u16, body: &str| {
            let res = ureq::http::Response::builder()
                .status(status)
                .body(ureq::Body::builder().data(body.to_owned()))
                .unwrap();
            match client.answer::<Vec<orch_model::Node>>(Ok(res)) {
                Ok(_) => panic!("{status} {body} was taken for nodes"),
                Err(e) => e.to_string(),
            }
        };
        let e = answer(502, "<html>\n  bad gateway\n</html>");
        assert_eq!(
            e,
            "unexpected answer from http://127.0.0.1:1 (HTTP 502): not an orch error body: \
             <html> bad gateway </html>; is the address an orch server of this version?"
        );
        // Escape sequences from whatever answered are not passed on.
        let e = answer(500, "\u{1b}[2Jgone");
        assert!(
            e.contains("not an orch error body: \u{fffd}[2Jgone;"),
            "{e}"
        );
        let e = answer(200, r#"{"nodes": []}"#);
        assert!(
            e.starts_with(
                "unexpected answer from http://127.0.0.1:1 (HTTP 200): cannot read the answer: "
            ),
            "{e}"
        );
    }

    #[test]
    fn api_errors_list_every_problem() {
        let mut p = orch_model::Problem::new("group[0].count", "count must be at least 0")
            .hint("e.g. count = 1");
        p.line = Some(5);
        p.column = Some(3);
        let e = ClientError::Api {
            address: "http://box:4646".into(),
            status: 400,
            body: ErrorBody {
                code: "invalid_job".into(),
                message: "the job is invalid".into(),
                details: vec![p, orch_model::Problem::new("id", "missing")],
            },
        };
        assert_eq!(
            e.to_string(),
            "the job is invalid (invalid_job, HTTP 400)\n  \
             5:3: group[0].count: count must be at least 0 (e.g. count = 1)\n  id: missing"
        );
        assert!(e.is_refused() && !e.is_not_found());
        // A proxy's answers count by their status too: the agent drops a
        // refused report and registers again after a 404.
        let proxy = |status| ClientError::Unexpected {
            address: "http://box:4646".into(),
            status,
            detail: "not an orch error body: <html>".into(),
        };
        assert!(proxy(404).is_not_found() && !proxy(404).is_refused());
        assert!(proxy(403).is_refused());
        assert!(!proxy(503).is_refused() && !proxy(429).is_refused());
    }
}
