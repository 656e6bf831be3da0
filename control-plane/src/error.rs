//! The crate's one error type, grouped by who is at fault, and the one place
//! where it becomes a gRPC status. Internal details (SQL errors, decryption
//! failures) are logged here and replaced by a generic message, so a client
//! never sees more than it needs.

use aigw_proto::model::InvalidSnapshot;
use diesel::result::DatabaseErrorKind;
use tonic::{Code, Status};

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// "transport error: tcp connect error: Connection refused": tonic's own
/// message alone says too little.
pub fn with_causes(e: &dyn std::error::Error) -> String {
    let mut msg = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        msg.push_str(": ");
        msg.push_str(&c.to_string());
        cause = c.source();
    }
    msg
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    // --- the caller's fault (bad request, bad file, bad settings) ---
    /// A request or a file failed validation; the message says what to fix.
    #[error("{0}")]
    InvalidArgument(String),
    /// The change would produce a snapshot the data planes would refuse.
    #[error("the resulting configuration is invalid: {0}")]
    InvalidSnapshot(#[from] InvalidSnapshot),
    /// Missing, wrong, expired or revoked bearer token; a disabled user.
    #[error("{0}")]
    Unauthenticated(&'static str),
    /// An OpenID Connect sign-in failed (the identity provider refused, or
    /// its ID token did not verify); the message says why.
    #[error("sign-in failed: {0}")]
    SignIn(String),
    /// The caller's role (or object ownership) does not allow the call.
    #[error("{0}")]
    PermissionDenied(String),
    /// The named object does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The object conflicts with another one (e.g. a client key already in use).
    #[error("{0}")]
    AlreadyExists(String),
    /// The call is valid but the current state forbids it (e.g. deleting a
    /// provider a route still names).
    #[error("{0}")]
    FailedPrecondition(String),
    /// A startup setting (flag / env var) is missing or malformed.
    #[error("{0}")]
    Settings(String),
    /// `${VAR}` in an apply file names a variable that is not set.
    #[error("{path}: environment variable {var} is not set")]
    MissingVar { var: String, path: String },
    /// The apply file is not valid YAML for the expected shape.
    #[error("{0}")]
    Yaml(#[from] serde_yaml::Error),
    /// The control plane refused an apply request.
    #[error("{what}: {status}", status = .status.message())]
    Rpc {
        what: String,
        #[source]
        status: Box<Status>,
    },

    // --- the database ---
    #[error("database error: {0}")]
    Database(#[from] diesel::result::Error),
    #[error("database unavailable: {0}")]
    Pool(#[from] diesel::r2d2::PoolError),
    #[error("cannot open the database: {0}")]
    Connect(String),
    #[error("database migrations failed: {0}")]
    Migration(String),

    // --- ours / the environment ---
    /// A stored secret does not decrypt: the master key changed or the row was
    /// tampered with.
    #[error("cannot decrypt {0} (wrong AIGW_MASTER_KEY, or the stored value was altered)")]
    Decrypt(String),
    /// `apply` could not connect to the control plane.
    #[error("cannot reach the control plane at {0}")]
    Unreachable(String),
    #[error("internal error: {0}")]
    Internal(String),
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// A start-up line could not be printed.
    #[error(transparent)]
    Startup(#[from] aigw_startup::Error),
    #[error("gRPC transport error: {0}")]
    Transport(#[from] tonic::transport::Error),
}

impl Error {
    pub fn invalid(msg: impl Into<String>) -> Self {
        Self::InvalidArgument(msg.into())
    }

    pub fn internal(msg: impl Into<String>) -> Self {
        Self::Internal(msg.into())
    }
}

impl From<Error> for Status {
    fn from(e: Error) -> Self {
        match &e {
            Error::InvalidArgument(_)
            | Error::InvalidSnapshot(_)
            | Error::MissingVar { .. }
            | Error::Yaml(_) => Status::invalid_argument(e.to_string()),
            Error::Unauthenticated(m) => Status::unauthenticated(*m),
            Error::SignIn(_) => Status::unauthenticated(e.to_string()),
            Error::PermissionDenied(m) => Status::permission_denied(m.clone()),
            Error::NotFound(m) => Status::not_found(m.clone()),
            Error::AlreadyExists(m) => Status::already_exists(m.clone()),
            Error::FailedPrecondition(m) => Status::failed_precondition(m.clone()),
            Error::Rpc { status, .. } => Status::new(status.code(), e.to_string()),
            Error::Pool(_) | Error::Connect(_) => {
                tracing::warn!(error = %e, "database unavailable");
                Status::unavailable("database unavailable, retry later")
            }
            Error::Database(diesel::result::Error::DatabaseError(
                DatabaseErrorKind::SerializationFailure | DatabaseErrorKind::ClosedConnection,
                _,
            )) => {
                tracing::warn!(error = %e, "transient database error");
                Status::unavailable("database busy, retry later")
            }
            Error::Database(_)
            | Error::Migration(_)
            | Error::Decrypt(_)
            | Error::Internal(_)
            | Error::Unreachable(_)
            | Error::Io(_)
            | Error::Startup(_)
            | Error::Transport(_)
            | Error::Settings(_) => {
                tracing::error!(error = %e, "request failed");
                Status::new(Code::Internal, "internal error (see control-plane logs)")
            }
        }
    }
}
