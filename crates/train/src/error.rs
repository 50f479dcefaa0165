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
    /// A file the job names besides its dataset (a tokenizer, initial weights) is not what
    /// the spec says, or does not fit the job.
    #[error("{role}: {reason}")]
    File { role: &'static str, reason: String },
    /// A bug: the engine was used in a way it should not have been.
    #[error("internal: {0}")]
    Internal(String),
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
            | Error::File { .. }
            | Error::LimitExceeded(_)
            | Error::Diverged(_)
            | Error::Unavailable { .. } => Fault::Poster,
            Error::Fetch { .. } | Error::Io { .. } | Error::Device(_) => Fault::Transient,
            Error::Cancelled(_) | Error::DeadlineReached(_) => Fault::Stopped,
            // A checkpoint or weights file that could not be written (a full disk): this
            // machine's condition, like any other I/O, never a reason to give a job back.
            Error::Candle(e) if from_io(e) => Fault::Transient,
            Error::Checkpoint(_) | Error::Candle(_) | Error::Internal(_) => Fault::Internal,
        }
    }
}

/// Whether a candle error comes from reading or writing a file: candle wraps I/O errors
/// (its own, and safetensors' when saving) and may add a backtrace, a path or context around
/// them.
fn from_io(e: &candle_core::Error) -> bool {
    use candle_core::Error as C;
    match e {
        C::Io(_) => true,
        C::WithBacktrace { inner, .. } | C::WithPath { inner, .. } | C::Context { inner, .. } => {
            from_io(inner)
        }
        C::WrappedContext { wrapped, .. } => chain_has_io(wrapped.as_ref()),
        e => chain_has_io(e),
    }
}

fn chain_has_io(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut next = Some(e);
    while let Some(e) = next {
        if e.downcast_ref::<std::io::Error>().is_some() {
            return true;
        }
        next = e.source();
    }
    false
}

impl Error {
    pub fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Error {
        let path = path.into();
        move |source| Error::Io { path, source }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use candle_core::{Device, Tensor};

    use super::*;

    /// A checkpoint or weights file that cannot be written (a full disk; here, a directory
    /// that is not there: the same I/O error inside safetensors' error inside candle's) is
    /// worth retrying, not a bug and not the poster's fault.
    #[test]
    fn a_file_that_cannot_be_saved_is_transient() {
        let t = Tensor::zeros((64, 64), candle_core::DType::F32, &Device::Cpu).unwrap();
        let tensors: HashMap<String, Tensor> = [("w".to_string(), t)].into();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("gone/w.safetensors");
        let e = Error::from(candle_core::safetensors::save(&tensors, &path).unwrap_err());
        assert_eq!(e.fault(), Fault::Transient, "{e}");
        // Wrapped with a path and a backtrace, still I/O.
        let wrapped = candle_core::safetensors::save(&tensors, &path)
            .unwrap_err()
            .with_path(&path)
            .bt();
        assert_eq!(Error::from(wrapped).fault(), Fault::Transient);
        let full = candle_core::Error::from(std::io::Error::from(std::io::ErrorKind::StorageFull));
        assert_eq!(Error::from(full).fault(), Fault::Transient);
        // Not every candle error is: a shape mismatch is a bug.
        let a = Tensor::zeros(3, candle_core::DType::F32, &Device::Cpu).unwrap();
        let b = Tensor::zeros(4, candle_core::DType::F32, &Device::Cpu).unwrap();
        assert_eq!(Error::from((&a + &b).unwrap_err()).fault(), Fault::Internal);
    }
}
