//! The agent's side of the server's HTTP API. The agent always dials out
//! (register, heartbeat, a long-poll for its allocations, status reports),
//! so an agent behind NAT needs nothing opened towards it.

use orch_model::{Allocation, ClientStatus, ErrorBody, Job, Node, TaskState};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;

/// Why a call to the server did not give the answer asked for.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot reach the orch server at {address}: {cause}")]
    Unreachable { address: String, cause: String },
    #[error("the orch server at {address} answered HTTP {status}: {message}")]
    Api {
        address: String,
        status: u16,
        code: String,
        message: String,
    },
}

impl ClientError {
    /// Whether the server said the object is not there (HTTP 404).
    pub fn is_not_found(&self) -> bool {
        matches!(self, ClientError::Api { status: 404, .. })
    }

    /// Whether the server refused the request itself (a 4xx other than
    /// those that say "later": 408, 429).
    pub fn is_refused(&self) -> bool {
        matches!(self, ClientError::Api { status, .. }
            if (400..500).contains(status) && !matches!(status, 404 | 408 | 429))
    }
}

/// What registering or a heartbeat answers.
#[derive(Debug, Clone, Copy, Deserialize)]
pub struct Alive {
    pub heartbeat_ttl_ms: u64,
}

/// One allocation's status as the agent reports it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StatusUpdate {
    pub alloc_id: String,
    pub client_status: ClientStatus,
    pub description: String,
    pub task_states: BTreeMap<String, TaskState>,
}

#[derive(Debug, Deserialize)]
pub struct StatusUpdated {
    #[serde(default)]
    pub unknown: Vec<String>,
}

/// A client of one orch server.
#[derive(Clone)]
pub struct ServerClient {
    base: String,
    agent: ureq::Agent,
}

/// How long a plain request may take; a long-poll gets its wait on top.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

impl ServerClient {
    /// `address` is `http://host:port` (a bare `host:port` gets `http://`).
    pub fn new(address: &str) -> Self {
        let trimmed = address.trim().trim_end_matches('/');
        let base = if trimmed.contains("://") {
            trimmed.to_owned()
        } else {
            format!("http://{trimmed}")
        };
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(Duration::from_secs(5)))
            .user_agent(concat!("orch-agent/", env!("CARGO_PKG_VERSION")))
            .build()
            .into();
        Self { base, agent }
    }

    pub fn address(&self) -> &str {
        &self.base
    }

    pub fn register(&self, node: &Node) -> Result<Alive, ClientError> {
        self.post("/v1/nodes", node)
    }

    pub fn heartbeat(&self, node_id: &str) -> Result<Alive, ClientError> {
        self.post(
            &format!("/v1/node/{node_id}/heartbeat"),
            &serde_json::json!({}),
        )
    }

    /// The node's allocations once the server's state moves past `index`
    /// (or `wait` runs out), with the index they were read at.
    pub fn allocations(
        &self,
        node_id: &str,
        index: u64,
        wait: Duration,
    ) -> Result<(Vec<Allocation>, u64), ClientError> {
        let query = [
            ("index", index.to_string()),
            ("wait", format!("{}ms", wait.as_millis())),
        ];
        self.get(
            &format!("/v1/node/{node_id}/allocations"),
            &query,
            wait + REQUEST_TIMEOUT,
        )
    }

    /// Version `version` of job `job_id`.
    pub fn job_version(&self, job_id: &str, version: u64) -> Result<Job, ClientError> {
        let query = [("version", version.to_string())];
        self.get(&format!("/v1/job/{job_id}"), &query, REQUEST_TIMEOUT)
            .map(|(job, _)| job)
    }

    pub fn update_status(&self, updates: &[StatusUpdate]) -> Result<StatusUpdated, ClientError> {
        self.post(
            "/v1/allocations/status",
            &serde_json::json!({ "updates": updates }),
        )
    }

    fn get<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, String)],
        timeout: Duration,
    ) -> Result<(T, u64), ClientError> {
        let mut req = self.agent.get(format!("{}{path}", self.base));
        for (k, v) in query {
            req = req.query(*k, v);
        }
        let res = req.config().timeout_global(Some(timeout)).build().call();
        self.answer(res)
    }

    fn post<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T, ClientError> {
        let res = self
            .agent
            .post(format!("{}{path}", self.base))
            .config()
            .timeout_global(Some(REQUEST_TIMEOUT))
            .build()
            .send_json(body);
        self.answer(res).map(|(body, _)| body)
    }

    fn answer<T: DeserializeOwned>(
        &self,
        res: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    ) -> Result<(T, u64), ClientError> {
        let unreachable = |e: ureq::Error| ClientError::Unreachable {
            address: self.base.clone(),
            cause: e.to_string(),
        };
        let mut res = res.map_err(unreachable)?;
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
            .limit(64 << 20)
            .read_to_string()
            .map_err(unreachable)?;
        let api = |code: String, message: String| ClientError::Api {
            address: self.base.clone(),
            status,
            code,
            message,
        };
        if !(200..300).contains(&status) {
            return Err(match serde_json::from_str::<ErrorBody>(&text) {
                Ok(body) => api(body.code, body.message),
                Err(_) => api("unexpected".into(), text.chars().take(200).collect()),
            });
        }
        serde_json::from_str(&text)
            .map(|body| (body, index))
            .map_err(|e| api("unexpected".into(), format!("cannot read the answer: {e}")))
    }
}
