//! What crosses the network between orch's processes, declared once:
//!
//! - the route table ([`ROUTES`] of the server, [`AGENT_ROUTES`] of an
//!   agent): the server builds its router from it, clients build their
//!   paths from it;
//! - the request and response bodies that are not model objects themselves
//!   (`bodies.rs`), serialized by the sender and deserialized by the
//!   receiver as the same type;
//! - the one HTTP [`Client`], used by the CLI and the agent to reach the
//!   server and by the server to reach agents, with the calls a node's
//!   agent makes typed (`node_calls.rs`: the real agent and the simulated
//!   ones of orch-testkit make them alike);
//! - the OpenAPI document ([`OPENAPI_JSON`]), which this crate's tests hold
//!   to the route table and to the bodies' serialized form.
//!
//! Model objects (jobs, nodes, allocations, evaluations) travel as
//! orch-model declares them.

mod bodies;
mod client;
mod node_calls;
mod openapi;
pub mod routes;
mod scheduler;

pub use bodies::{
    Alive, AllocationDetail, BrokerInfo, DrainRequest, EligibilityRequest, ErrorBody,
    EvaluationDetail, FieldDiff, GroupPlan, JobPlanResponse, JobRegisterRequest,
    JobRegisterResponse, JobStopResponse, JobSummary, NodeUpdated, PlannedPlacement, ScorerInfo,
    ServerStatus, StatusUpdate, StatusUpdated, StatusUpdates,
};
pub use bodies::{
    AllocWhyNot, CandidateScore, GroupWhyNot, NodeVerdict, PlacementFunnel, PlacementWhyNot,
    PlanWhyNot, WhyNotBasis,
};
pub use client::{
    Client, ClientError, ClientOptions, DEFAULT_ADDRESS, INDEX_HEADER, LOG_FILE_HEADER,
    LOG_OFFSET_HEADER, RawReply, Reply, normalize_address,
};
pub use openapi::{OPENAPI_JSON, schema_problems};
pub use routes::{AGENT_ROUTES, Method, ROUTES, Route, path_segment};
pub use scheduler::{
    CandidateStatus, Comparison, DecisionPage, NamedScorer, Packing, ResourcePacking,
    SchedulerStatus, ScorerFigures, ScorerRole, ShadowCounters, SpreadCount, UsageSample,
};
