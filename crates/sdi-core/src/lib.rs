//! Pure domain logic of sdi-migration: every decision the service makes, as
//! functions over plain data. No Kubernetes client, no async runtime, no I/O —
//! so the rules are unit-tested exhaustively and benchmarked without a network.
#![forbid(unsafe_code)]

pub mod access;
pub mod admission;
pub mod checkpoint;
pub mod containers;
pub mod error;
pub mod fit;
pub mod index;
pub mod job;
pub mod male;
pub mod planner;
pub mod policy;
pub mod quantity;
pub mod repair;
pub mod snapshot;
pub mod strategy;
