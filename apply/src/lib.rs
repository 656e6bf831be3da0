//! The client side of `control-plane apply -f FILE [--prune]`: declarative
//! configuration through the Admin API, exactly like any other automation
//! client. The whole file is parsed, expanded and checked before anything
//! is sent, so a typo or a missing variable changes nothing; then it is
//! streamed to `AdminService.Apply`, which applies it in one transaction
//! (all or nothing, one new snapshot version) and says what happened to
//! each object.
//!
//! It is its own crate so the client does not compile with the server and
//! cannot reach into it: the server's rules it needs come in through
//! [`Rules`]. The control plane uses it twice: for the `apply` command, and
//! in process for the admin UI's ConfigFileService (export, plan, apply),
//! so a file means the same thing wherever it is applied from.
#![forbid(unsafe_code)]

pub mod client;
pub mod depth;
pub mod error;
pub mod export;
pub mod file;
pub mod plan;
pub mod rules;
pub mod vars;

pub use client::{Bearer, Client, Transport, apply, connect, run};
pub use error::{BoxError, Error, Result, with_causes};
pub use file::{ApplyFile, parse};
pub use rules::{Objects, Rules};
