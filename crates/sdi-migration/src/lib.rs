//! sdi-migration: moves pods between Kubernetes nodes safely — on request through
//! an HTTP API, or automatically when a node runs hot.
//!
//! The shape is a functional core (`sdi-core`: every decision as a pure function)
//! inside an imperative shell (this crate: the Kubernetes API, HTTP, clocks).
#![forbid(unsafe_code)]

pub mod access;
pub mod api;
pub mod checkpoint;
pub mod cluster;
pub mod config;
#[cfg(feature = "demo")]
pub mod demo;
pub mod engine;
pub mod error;
pub mod jobs;
pub mod migrations;
pub mod policy;
pub mod rebalancer;
pub mod said;
pub mod service;
pub mod sinks;
pub mod stream;
pub mod telemetry;
pub mod tls;
pub mod web;
