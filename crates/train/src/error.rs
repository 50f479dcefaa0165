use std::path::PathBuf;

/// Everything that can go wrong between a job spec and a result.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid job spec:\n  - {}", .0.join("\n  - "))]
    InvalidSpec(Vec<String>),
    #[error("cannot parse job spec: {0}")]
    SpecSyntax(#[from] serde_json::Error),
    #[error("dataset {uri}: sha256 is {actual}, the spec says {expected}")]
    HashMismatch {
        uri: String,
        expected: String,
        actual: String,
    },
    #[error("dataset {uri}: larger than the limit of {limit} bytes")]
    TooLarge { uri: String, limit: u64 },
    #[error("dataset {uri}: {reason}")]
    Fetch { uri: String, reason: String },
    /// The dataset cannot be had as specified (a scheme this engine does not read, a 4xx
    /// answer): asking again gives the same answer.
    #[error("dataset {uri}: {reason}")]
    Unavailable { uri: String, reason: String },
    #[error("dataset: {0}")]
    Format(String),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("device: {0}")]
    Device(String),
    #[error("checkpoint: {0}")]
    Checkpoint(String),
    #[error("limit exceeded: {0}")]
    LimitExceeded(String),
    #[error("training cancelled at step {0}")]
    Cancelled(u64),
    #[error("deadline reached at step {0}")]
    DeadlineReached(u64),
    #[error("training diverged at step {0}: the loss is not finite (learning rate too high?)")]
    Diverged(u64),
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Whose problem an error is, which decides what a worker does with the job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The job as posted cannot be done: an invalid spec, data that is not what the spec
    /// says (hash, size, format), a limit the spec sets. Retrying gives the same; give the
    /// job back (abandon) rather than miss its deadline.
    Poster,
    /// This machine or the network: I/O, a download, the device. Worth retrying.
    Transient,
    /// Stopped on request or at the deadline; a checkpoint was written.
    Stopped,
    /// A bug or a broken checkpoint: not the poster's, and retrying will not help.
    Internal,
}

impl Error {
    pub fn fault(&self) -> Fault {
        match self {
            Error::InvalidSpec(_)
            | Error::SpecSyntax(_)
            | Error::HashMismatch { .. }
            | Error::TooLarge { .. }
            | Error::Format(_)
            | Error::LimitExceeded(_)
            | Error::Diverged(_)
            | Error::Unavailable { .. } => Fault::Poster,
            Error::Fetch { .. } | Error::Io { .. } | Error::Device(_) => Fault::Transient,
            Error::Cancelled(_) | Error::DeadlineReached(_) => Fault::Stopped,
            Error::Checkpoint(_) | Error::Candle(_) => Fault::Internal,
        }
    }
}

impl Error {
    pub fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Error {
        let path = path.into();
        move |source| Error::Io { path, source }
    }
}
