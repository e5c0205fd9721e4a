//! The HTTP side of the client commands: one small wrapper over `ureq` that
//! turns every way a request can go wrong into an error a person can act
//! on, and keeps the server's JSON text so `--json` can print it unchanged.

use orch_model::ErrorBody;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::fmt;
use std::time::Duration;

pub const DEFAULT_ADDRESS: &str = "http://127.0.0.1:4646";

/// The address flag every client command takes, as Nomad's `-address` and
/// `NOMAD_ADDR`.
#[derive(clap::Args, Clone)]
pub struct AddressArgs {
    /// The orch server's HTTP address.
    #[arg(long, env = "ORCH_ADDR", default_value = DEFAULT_ADDRESS, value_name = "URL")]
    pub address: String,
}

impl AddressArgs {
    pub fn client(&self) -> Result<Client, ClientError> {
        Client::new(&self.address)
    }
}

/// Why a request did not give the answer asked for.
#[derive(Debug)]
pub enum ClientError {
    /// The address is not one this client can speak to.
    Address { address: String, reason: String },
    /// No HTTP answer at all: refused, unresolvable, timed out, cut off.
    Unreachable { address: String, cause: String },
    /// The server answered with an error.
    Api { status: u16, body: ErrorBody },
    /// The server answered something this client does not understand
    /// (another program on the port, or a server of another version).
    Unexpected {
        address: String,
        status: u16,
        detail: String,
    },
}

impl std::error::Error for ClientError {}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientError::Address { address, reason } => {
                write!(f, "cannot use the address {address}: {reason}")
            }
            ClientError::Unreachable { address, cause } => write!(
                f,
                "cannot reach the orch server at {address}: {cause}; is `orch server` running? \
                 set ORCH_ADDR or --address"
            ),
            ClientError::Api { status, body } => {
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
        }
    }
}

/// A successful answer: the decoded body, the server's JSON text, and the
/// `X-Orch-Index` it was read at (0 when absent) for blocking queries.
pub struct Reply<T> {
    pub body: T,
    pub text: String,
    pub index: u64,
}

/// A successful answer that is not JSON.
pub struct RawReply {
    pub body: Vec<u8>,
    pub headers: ureq::http::HeaderMap,
}

pub struct Client {
    base: String,
    agent: ureq::Agent,
}

/// How long a plain request may take; a blocking query gets its wait on top.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// Lists of a large cluster's allocations run to megabytes; a cap still
/// protects the terminal from something that is not an orch server.
const BODY_LIMIT: u64 = 256 << 20;

impl Client {
    pub fn new(address: &str) -> Result<Self, ClientError> {
        let base = normalize_address(address)?;
        let agent: ureq::Agent = ureq::Agent::config_builder()
            // Error statuses carry an ErrorBody worth reading.
            .http_status_as_error(false)
            .timeout_connect(Some(Duration::from_secs(5)))
            .user_agent(concat!("orch-cli/", env!("CARGO_PKG_VERSION")))
            .build()
            .into();
        Ok(Self { base, agent })
    }

    pub fn get<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, &str)],
    ) -> Result<Reply<T>, ClientError> {
        self.get_with_timeout(path, query, REQUEST_TIMEOUT)
    }

    /// A blocking query: answers once the server's index passes `index` or
    /// `wait` ran out.
    pub fn get_blocking<T: DeserializeOwned>(
        &self,
        path: &str,
        index: u64,
        wait: Duration,
    ) -> Result<Reply<T>, ClientError> {
        let index = index.to_string();
        let wait_text = format!("{}ms", wait.as_millis());
        self.get_with_timeout(
            path,
            &[("index", &index), ("wait", &wait_text)],
            wait + REQUEST_TIMEOUT,
        )
    }

    fn get_with_timeout<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, &str)],
        timeout: Duration,
    ) -> Result<Reply<T>, ClientError> {
        let mut req = self.agent.get(format!("{}{path}", self.base));
        for (k, v) in query {
            req = req.query(*k, *v);
        }
        let res = req.config().timeout_global(Some(timeout)).build().call();
        self.answer(res)
    }

    /// A GET whose answer is bytes rather than JSON (a task's logs): the
    /// body as sent, and the headers that come with it.
    pub fn get_bytes(&self, path: &str, query: &[(&str, &str)]) -> Result<RawReply, ClientError> {
        let mut req = self.agent.get(format!("{}{path}", self.base));
        for (k, v) in query {
            req = req.query(*k, *v);
        }
        let mut res = req
            .config()
            .timeout_global(Some(REQUEST_TIMEOUT))
            .build()
            .call()
            .map_err(|e| self.unreachable(&e))?;
        let status = res.status().as_u16();
        let body = res
            .body_mut()
            .with_config()
            .limit(BODY_LIMIT)
            .read_to_vec()
            .map_err(|e| self.unreachable(&e))?;
        if !(200..300).contains(&status) {
            return Err(match serde_json::from_slice::<ErrorBody>(&body) {
                Ok(body) => ClientError::Api { status, body },
                Err(_) => self.unexpected(
                    status,
                    format!(
                        "not an orch error body: {}",
                        clip(&String::from_utf8_lossy(&body))
                    ),
                ),
            });
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
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse().ok())
            .ok_or_else(|| self.unexpected(200, format!("the answer has no valid {name} header")))
    }

    pub fn post<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<Reply<T>, ClientError> {
        let res = self
            .agent
            .post(format!("{}{path}", self.base))
            .config()
            .timeout_global(Some(REQUEST_TIMEOUT))
            .build()
            .send_json(body);
        self.answer(res)
    }

    pub fn delete<T: DeserializeOwned>(&self, path: &str) -> Result<Reply<T>, ClientError> {
        let res = self
            .agent
            .delete(format!("{}{path}", self.base))
            .config()
            .timeout_global(Some(REQUEST_TIMEOUT))
            .build()
            .call();
        self.answer(res)
    }

    fn answer<T: DeserializeOwned>(
        &self,
        res: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    ) -> Result<Reply<T>, ClientError> {
        let mut res = res.map_err(|e| self.unreachable(&e))?;
        let status = res.status().as_u16();
        let index = res
            .headers()
            .get("x-orch-index")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        let text = res
            .body_mut()
            .with_config()
            .limit(BODY_LIMIT)
            .read_to_string()
            .map_err(|e| self.unreachable(&e))?;
        if !(200..300).contains(&status) {
            return Err(match serde_json::from_str::<ErrorBody>(&text) {
                Ok(body) => ClientError::Api { status, body },
                Err(_) => {
                    self.unexpected(status, format!("not an orch error body: {}", clip(&text)))
                }
            });
        }
        match serde_json::from_str(&text) {
            Ok(body) => Ok(Reply { body, text, index }),
            Err(e) => Err(self.unexpected(status, format!("cannot read the answer: {e}"))),
        }
    }

    fn unreachable(&self, e: &ureq::Error) -> ClientError {
        ClientError::Unreachable {
            address: self.base.clone(),
            cause: describe(e),
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

/// A short, one-line excerpt of a body that was not what we expected.
fn clip(text: &str) -> String {
    let one_line: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
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
/// because this build has no TLS.
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
            "this orch CLI speaks plain http only (it is built without TLS); use http://HOST:PORT, \
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

/// One path segment, percent-encoded: ids come from the command line.
pub use orch::api::path_segment as seg;

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
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

    #[test]
    fn segments_are_encoded() {
        assert_eq!(seg("web.api-1"), "web.api-1");
        assert_eq!(seg("a/b c"), "a%2Fb%20c");
    }

    /// What another program on the port answers: named as not this
    /// server, with an excerpt of what it said.
    #[test]
    fn answers_that_are_not_an_orch_servers() {
        let client = Client::new("127.0.0.1:1").unwrap();
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
    }
}
