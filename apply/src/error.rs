//! The crate's one error type: what can go wrong between reading an apply
//! file and the server's answer. Messages are for the operator who ran
//! `control-plane apply` (or the admin who pasted the file in the UI), so
//! they name the file path, the variable or the setting to fix.

use tonic::Status;

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// An error from the server's own rules ([`crate::Rules::check`]), kept
/// whole so the server can answer with its own status for it.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The file is not valid for the expected shape; the message says where.
    #[error("{0}")]
    InvalidArgument(String),
    /// The file is not YAML.
    #[error("{0}")]
    Yaml(#[from] serde_yaml::Error),
    /// `${VAR}` in the file names a variable that is not set.
    #[error("{path}: environment variable {var} is not set")]
    MissingVar { var: String, path: String },
    /// A `secret` or `key` that is only empty because `${…}` expanded to
    /// nothing: left empty it would keep the stored secret (or generate a
    /// key), silently, instead of the one the file meant.
    #[error(
        "{path}: {text} expanded to an empty value; set the variable, or leave the field out to keep what is stored"
    )]
    EmptySecret { path: String, text: String },
    /// An object of the file breaks a rule of the Admin API (checked before
    /// anything is sent); the message is the server's own.
    #[error("{0}")]
    Refused(#[source] BoxError),
    /// A setting (flag / env var) is missing or malformed, or the file
    /// cannot be read.
    #[error("{0}")]
    Settings(String),
    /// The control plane could not be reached.
    #[error("cannot reach the control plane at {0}")]
    Unreachable(String),
    /// The control plane refused a call.
    #[error("{what}: {status}", status = .status.message())]
    Rpc {
        what: String,
        #[source]
        status: Box<Status>,
    },
    /// The live configuration could not be written as YAML.
    #[error("exporting the configuration: {0}")]
    Export(#[source] serde_yaml::Error),
    /// Printing the outcome failed.
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
}

impl Error {
    pub fn invalid(msg: impl Into<String>) -> Self {
        Self::InvalidArgument(msg.into())
    }
}

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
