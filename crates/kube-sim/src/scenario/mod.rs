//! Scenario files: a cluster to simulate (nodes, namespaces, workloads with
//! usage profiles and behaviours, budgets, claims) and a timeline of what
//! happens to it. The format is documented in `docs/scenarios.md`.

pub mod generate;
pub mod load;
pub mod model;
pub mod profile;

pub use load::{ScenarioError, parse};
pub use model::{Action, Scenario};
