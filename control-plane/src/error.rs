//! The crate's one error type, grouped by who is at fault, and the one place
//! where it becomes a gRPC status. Internal details (SQL errors, decryption
//! failures) are logged here and replaced by a generic message, so a client
//! never sees more than it needs.

use aigw_proto::model::InvalidSnapshot;
use diesel::result::DatabaseErrorKind;
use tonic::{Code, Status};

pub type Result<T, E = Error> = std::result::Result<T, E>;

pub use aigw_apply::with_causes;

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
    /// Applying, planning or exporting a configuration file (`aigw-apply`).
    #[error(transparent)]
    Apply(#[from] aigw_apply::Error),

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
        status_of(&e)
    }
}

fn status_of(e: &Error) -> Status {
    match e {
        Error::Apply(a) => apply_status(a),
        Error::InvalidArgument(_) | Error::InvalidSnapshot(_) => {
            Status::invalid_argument(e.to_string())
        }
        Error::Unauthenticated(m) => Status::unauthenticated(*m),
        Error::SignIn(_) => Status::unauthenticated(e.to_string()),
        Error::PermissionDenied(m) => Status::permission_denied(m.clone()),
        Error::NotFound(m) => Status::not_found(m.clone()),
        Error::AlreadyExists(m) => Status::already_exists(m.clone()),
        Error::FailedPrecondition(m) => Status::failed_precondition(m.clone()),
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
        | Error::Io(_)
        | Error::Startup(_)
        | Error::Transport(_)
        | Error::Settings(_) => {
            tracing::error!(error = %e, "request failed");
            Status::new(Code::Internal, "internal error (see control-plane logs)")
        }
    }
}

/// An apply run's error as ConfigFileService answers it. A refusal by this
/// server's rules ([`crate::admin::apply::ServerRules`]) is one of our own
/// errors and is answered as such; the rest is the file's fault, or ours.
fn apply_status(e: &aigw_apply::Error) -> Status {
    use aigw_apply::Error as A;
    match e {
        A::Refused(inner) => match inner.downcast_ref::<Error>() {
            Some(own) => status_of(own),
            None => Status::invalid_argument(inner.to_string()),
        },
        A::InvalidArgument(_) | A::Yaml(_) | A::MissingVar { .. } | A::EmptySecret { .. } => {
            Status::invalid_argument(e.to_string())
        }
        A::Rpc { status, .. } => Status::new(status.code(), e.to_string()),
        A::Settings(_) | A::Unreachable(_) | A::Export(_) | A::Io(_) => {
            tracing::error!(error = %e, "request failed");
            Status::new(Code::Internal, "internal error (see control-plane logs)")
        }
    }
}
