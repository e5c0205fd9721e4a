//! The scheduler, read like Nomad's: reconcile → feasibility → sample →
//! one scorer call → pick → plan. Only feasibility is here so far; the rest
//! of the pipeline follows it.

pub mod feasible;
pub mod sample;
pub mod score;
