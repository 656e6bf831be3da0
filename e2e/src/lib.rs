//! The mock provider as a library: a stand-in for the AI providers (OpenAI
//! chat, Responses and embeddings, Anthropic Messages, Gemini), speaking
//! their wire formats with deterministic replies, tool calls and usage (the
//! rules are in `tokens.rs`), recording what it receives and misbehaving on
//! demand.
//!
//! The `mock-provider` binary serves it for the Python suite and the
//! benchmarks; Rust tests start one in process on port 0 with
//! [`MockServer::start`] and drive its faults directly.

mod accounts;
mod anthropic;
mod app;
mod embeddings;
mod error;
mod faults;
mod fields;
mod gemini;
mod ids;
mod openai;
mod recording;
mod responses;
mod server;
mod sse;
mod tokens;

pub use accounts::KeyState;
pub use app::{Mock, router};
pub use faults::Fault;
pub use recording::Recorded;
pub use server::{MockServer, serve};
