//! Migration jobs: the record of each move (`model`), where records live
//! (`store`), and their lifecycle — start, timeout, cancel (`runner`).

pub mod model;
pub mod runner;
pub mod store;

pub use model::{Job, MigrationRequest};
pub use store::{JobStore, ListFilter, MemoryStore};
