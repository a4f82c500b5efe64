//! The simulated control plane's loops. Each is written against the in-process
//! handles only — what it reads and writes is exactly what a client would see.

mod namespace;

use crate::Cluster;

/// Start every built-in loop of the cluster.
pub fn start(cluster: &Cluster) {
    tokio::spawn(namespace::run(cluster.clone()));
}
