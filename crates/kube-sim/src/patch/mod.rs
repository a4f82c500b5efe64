//! Patching: strategic merge patch, server-side apply and the field sets of
//! `managedFields`, with the list semantics of the built-in kinds they need.
//! (RFC 6902 JSON patch and RFC 7386 merge patch come from the `json-patch` crate.)

pub mod managed;
pub mod schema;
pub mod strategic;
