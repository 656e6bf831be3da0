//! The control plane: the only process that touches the database. It compiles
//! the configuration into versioned snapshots and pushes them to the data
//! planes, stores their traces exactly once, and serves the Admin API.
#![forbid(unsafe_code)]

pub mod admin;
pub mod auth;
pub mod budgets;
#[cfg(test)]
mod canned_http;
pub mod cli;
pub mod compile;
pub mod crypto;
pub mod db;
pub mod error;
pub mod health;
pub mod ingest;
pub mod node_auth;
pub mod oauth;
pub mod oidc;
pub mod outbound;
pub mod push;
pub mod redact;
pub mod retention;
pub mod rollup;
pub mod rotate;
pub mod server;
pub mod telemetry;
pub mod trace_server;
pub mod trace_writer;

#[cfg(test)]
mod admin_server_tests;
#[cfg(test)]
mod apply_server_tests;
#[cfg(test)]
mod grpc_tests;
#[cfg(test)]
mod tls_tests;
#[cfg(test)]
mod trace_stream_tests;
