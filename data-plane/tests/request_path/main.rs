//! The request path, in process: a real data plane (`Node`) called through
//! its `tower::Service`, a real mock provider and a real gRPC control plane
//! on port 0. No binaries, no Python; each test asserts what an app or an
//! operator sees (status, body, headers, the trace's attempts, tokens and
//! cost).

mod control_plane;
mod harness;

mod bodies;
mod budgets;
mod compat;
mod echoes;
mod forward;
mod serving;
mod snapshots;
mod stream_start;
mod streams;
mod traces;
