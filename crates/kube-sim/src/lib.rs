//! kube-sim: a simulated Kubernetes API server.
//!
//! It speaks the real REST protocol — discovery, CRUD with optimistic
//! concurrency, the four patch types, watches with bookmarks and `410 Expired`,
//! pagination, graceful deletion and finalizers, subresources — so the same
//! `kube` client code and a real `kubectl` work against it and against a real
//! cluster. Use it in-process ([`Cluster`]) or as the `kube-sim` binary.
#![forbid(unsafe_code)]

pub mod apiserver;
pub mod auth;
pub mod cached_pod;
pub mod clock;
pub mod cluster;
pub mod controllers;
pub mod convert;
pub mod crd_schema;
pub mod discovery;
pub mod error;
pub mod faults;
pub mod http;
mod kinds;
pub mod meta;
pub mod openapi;
pub mod openapi_v2;
pub mod patch;
pub mod protobuf;
pub mod resources;
pub mod rules;
pub mod scenario;
pub mod selector;
pub mod store;
pub mod table;
pub mod watch;

mod defaults;
pub mod quantity;
pub mod requests;
mod validation;

pub use apiserver::{ApiServer, DeleteOptions, PatchType, ServerConfig, WriteOptions};
pub use auth::{AuthConfig, AuthorizationMode, Credentials, UserInfo};
pub use clock::Clock;
pub use cluster::{Cluster, Dynamic, DynamicEvent, Server, Typed, TypedEvent, kubeconfig};
pub use error::{ApiError, ApiResult};
pub use store::EventKind;
