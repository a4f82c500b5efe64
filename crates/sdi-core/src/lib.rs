//! Pure domain logic of sdi-migration: every decision the service makes, as
//! functions over plain data. No Kubernetes client, no async runtime, no I/O —
//! so the rules are unit-tested exhaustively and benchmarked without a network.
#![forbid(unsafe_code)]

pub mod containers;
pub mod fit;
pub mod job;
pub mod male;
pub mod planner;
pub mod quantity;
pub mod snapshot;
pub mod strategy;
