//! The data plane: serves apps from the last config snapshot it received.
//! A library so benchmarks and tests can drive its parts: `node` wires them
//! (for `main.rs` and for in-process tests), `service` is the request path
//! as a `tower::Service`.
// `unsafe` only where a module says why (the spool's mapped segments).
#![deny(unsafe_code)]

pub mod affinity;
pub mod auth;
pub mod body_budget;
pub mod body_rewrite;
pub mod config;
pub mod context;
pub mod context_limit;
pub mod control;
pub mod cores;
pub mod demand;
pub mod embed_batch;
pub mod endpoints;
pub mod error;
pub mod forward;
pub mod json_array;
pub mod listener;
pub mod models;
pub mod node;
pub mod pipeline;
pub mod plan;
pub mod providers;
pub mod ratelimit;
pub mod ratelimit_headers;
pub mod redact;
pub mod respond;
pub mod runtime;
pub mod schedule;
pub mod service;
pub mod snapshot;
pub mod sse;
pub mod state;
pub mod state_dir;
pub mod stream;
pub mod stream_start;
pub mod telemetry;
pub mod trace_report;
pub mod translate;
pub mod unparsed;
pub mod upstream_client;
pub mod usage;
pub mod validate;
