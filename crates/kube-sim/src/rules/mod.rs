//! The control plane's decisions as pure functions over Kubernetes objects —
//! what upstream's scheduler filters and scores, kubelet admission, the
//! ReplicaSet scale-down ranking, the Deployment rolling-update arithmetic and
//! the disruption controller compute — so each rule is tested on its own and
//! the simulated controllers stay thin.

pub mod cron;
pub mod deployment;
pub mod disruption;
pub mod fit;
pub mod job;
pub mod ranking;
pub mod resources;
