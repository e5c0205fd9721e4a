//! The one route table. The server builds its router from [`ROUTES`] and
//! nothing else (a test holds the two equal), the agent serves
//! [`AGENT_ROUTES`], clients build their paths from the same constants, and
//! `openapi.json` is held to [`ROUTES`] (the agent's route is not part of
//! the public API).

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Method {
    Get,
    Post,
    Delete,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Delete => "DELETE",
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One route: its method, its path as OpenAPI writes it (`/v1/job/{id}`),
/// and its OpenAPI `operationId`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Route {
    pub method: Method,
    pub path: &'static str,
    pub operation: &'static str,
}

impl Route {
    const fn new(method: Method, path: &'static str, operation: &'static str) -> Self {
        Self {
            method,
            path,
            operation,
        }
    }

    /// The path with its `{…}` parameters filled in order, each
    /// percent-encoded (ids and task names come from people). A missing
    /// parameter is left empty, which no route matches: the server answers
    /// 404 rather than a request reaching the wrong route.
    pub fn path_with(&self, params: &[&str]) -> String {
        let mut out = String::with_capacity(self.path.len() + 16);
        let mut params = params.iter();
        for (i, segment) in self.path.split('/').enumerate() {
            if i > 0 {
                out.push('/');
            }
            if segment.starts_with('{') && segment.ends_with('}') {
                if let Some(value) = params.next() {
                    out.push_str(&path_segment(value));
                }
            } else {
                out.push_str(segment);
            }
        }
        out
    }

    /// Whether a request path (no query) is this route's, `{x}` matching one
    /// non-empty segment.
    pub fn matches(&self, path: &str) -> bool {
        let (a, b): (Vec<&str>, Vec<&str>) =
            (self.path.split('/').collect(), path.split('/').collect());
        a.len() == b.len()
            && a.iter()
                .zip(&b)
                .all(|(p, s)| p == s || (p.starts_with('{') && !s.is_empty()))
    }
}

impl fmt::Display for Route {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.method, self.path)
    }
}

use Method::{Delete, Get, Post};

// The server's API, `/v1`.
pub const STATUS: Route = Route::new(Get, "/v1/status", "getStatus");
pub const JOBS: Route = Route::new(Get, "/v1/jobs", "listJobs");
pub const JOB_REGISTER: Route = Route::new(Post, "/v1/jobs", "registerJob");
pub const JOB: Route = Route::new(Get, "/v1/job/{id}", "getJob");
pub const JOB_STOP: Route = Route::new(Delete, "/v1/job/{id}", "stopJob");
pub const JOB_PLAN: Route = Route::new(Post, "/v1/job/{id}/plan", "planJob");
pub const JOB_VERSIONS: Route = Route::new(Get, "/v1/job/{id}/versions", "listJobVersions");
pub const JOB_ALLOCATIONS: Route =
    Route::new(Get, "/v1/job/{id}/allocations", "listJobAllocations");
pub const JOB_EVALUATIONS: Route =
    Route::new(Get, "/v1/job/{id}/evaluations", "listJobEvaluations");
pub const NODES: Route = Route::new(Get, "/v1/nodes", "listNodes");
pub const NODE_REGISTER: Route = Route::new(Post, "/v1/nodes", "registerNode");
pub const NODE: Route = Route::new(Get, "/v1/node/{id}", "getNode");
pub const NODE_ALLOCATIONS: Route =
    Route::new(Get, "/v1/node/{id}/allocations", "listNodeAllocations");
pub const NODE_HEARTBEAT: Route = Route::new(Post, "/v1/node/{id}/heartbeat", "nodeHeartbeat");
pub const NODE_DRAIN: Route = Route::new(Post, "/v1/node/{id}/drain", "drainNode");
pub const NODE_ELIGIBILITY: Route =
    Route::new(Post, "/v1/node/{id}/eligibility", "setNodeEligibility");
pub const EVALUATIONS: Route = Route::new(Get, "/v1/evaluations", "listEvaluations");
pub const EVALUATION: Route = Route::new(Get, "/v1/evaluation/{id}", "getEvaluation");
pub const ALLOCATIONS: Route = Route::new(Get, "/v1/allocations", "listAllocations");
pub const ALLOCATION: Route = Route::new(Get, "/v1/allocation/{id}", "getAllocation");
pub const ALLOCATION_LOGS: Route =
    Route::new(Get, "/v1/allocation/{id}/logs/{task}", "getAllocationLogs");
pub const ALLOCATION_WHY_NOT: Route = Route::new(
    Get,
    "/v1/allocation/{id}/why-not/{node}",
    "getAllocationWhyNot",
);
pub const ALLOCATION_STATUS: Route =
    Route::new(Post, "/v1/allocations/status", "updateAllocationStatus");
pub const OPENAPI: Route = Route::new(Get, "/v1/openapi.json", "getOpenApi");
pub const METRICS: Route = Route::new(Get, "/v1/metrics", "getMetrics");
pub const SCHEDULER: Route = Route::new(Get, "/v1/scheduler", "getScheduler");
pub const SCHEDULER_SCORER: Route =
    Route::new(Post, "/v1/scheduler/scorer/{name}", "putSchedulerScorer");
pub const SCHEDULER_SCORER_DELETE: Route = Route::new(
    Delete,
    "/v1/scheduler/scorer/{name}",
    "deleteSchedulerScorer",
);
pub const SCHEDULER_CANDIDATE: Route = Route::new(
    Post,
    "/v1/scheduler/candidate/{name}",
    "putSchedulerCandidate",
);
pub const SCHEDULER_CANDIDATE_DELETE: Route = Route::new(
    Delete,
    "/v1/scheduler/candidate/{name}",
    "deleteSchedulerCandidate",
);
pub const SCHEDULER_PROMOTE: Route = Route::new(
    Post,
    "/v1/scheduler/promote/{name}",
    "promoteSchedulerScorer",
);
pub const SCHEDULER_RESET: Route = Route::new(Post, "/v1/scheduler/reset", "resetScheduler");
pub const SCHEDULER_COMPARE: Route = Route::new(Get, "/v1/scheduler/compare", "compareSchedulers");
pub const SCHEDULER_DECISIONS: Route =
    Route::new(Get, "/v1/scheduler/decisions", "listSchedulerDecisions");

/// Every route of the server's API.
pub const ROUTES: &[Route] = &[
    STATUS,
    JOBS,
    JOB_REGISTER,
    JOB,
    JOB_STOP,
    JOB_PLAN,
    JOB_VERSIONS,
    JOB_ALLOCATIONS,
    JOB_EVALUATIONS,
    NODES,
    NODE_REGISTER,
    NODE,
    NODE_ALLOCATIONS,
    NODE_HEARTBEAT,
    NODE_DRAIN,
    NODE_ELIGIBILITY,
    EVALUATIONS,
    EVALUATION,
    ALLOCATIONS,
    ALLOCATION,
    ALLOCATION_LOGS,
    ALLOCATION_WHY_NOT,
    ALLOCATION_STATUS,
    OPENAPI,
    METRICS,
    SCHEDULER,
    SCHEDULER_SCORER,
    SCHEDULER_SCORER_DELETE,
    SCHEDULER_CANDIDATE,
    SCHEDULER_CANDIDATE_DELETE,
    SCHEDULER_PROMOTE,
    SCHEDULER_RESET,
    SCHEDULER_COMPARE,
    SCHEDULER_DECISIONS,
];

// The agent's own small API, read by the server (`orch alloc logs` is
// relayed through it).
pub const AGENT_LOGS: Route = Route::new(Get, "/v1/agent/logs/{alloc}/{task}", "getAgentLogs");

/// Every route an agent serves.
pub const AGENT_ROUTES: &[Route] = &[AGENT_LOGS];

/// One URL path segment, percent-encoded (ids and task names come from
/// people).
pub fn path_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn segments_are_encoded() {
        assert_eq!(path_segment("web.api-1"), "web.api-1");
        assert_eq!(path_segment("a/b c"), "a%2Fb%20c");
        assert_eq!(
            ALLOCATION_LOGS.path_with(&["a/1", "web server"]),
            "/v1/allocation/a%2F1/logs/web%20server"
        );
        assert_eq!(JOBS.path_with(&[]), "/v1/jobs");
        // A parameter left out matches no route.
        assert!(!JOB.matches(&JOB.path_with(&[])));
    }

    #[test]
    fn path_patterns() {
        assert!(JOB.matches("/v1/job/web"));
        assert!(!JOB.matches("/v1/job/web/plan"));
        assert!(!JOB.matches("/v1/job/"));
    }

    /// A route is one method on one path, named once.
    #[test]
    fn routes_are_unique() {
        let all: Vec<&Route> = ROUTES.iter().chain(AGENT_ROUTES).collect();
        let keys: BTreeSet<(Method, &str)> = all.iter().map(|r| (r.method, r.path)).collect();
        let operations: BTreeSet<&str> = all.iter().map(|r| r.operation).collect();
        assert_eq!(keys.len(), all.len());
        assert_eq!(operations.len(), all.len());
    }
}
