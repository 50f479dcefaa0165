//! `tensorgrid-worker`, the provider's daemon (in progress): its configuration, the check
//! made before claiming a job, and its work directory are here; discovery, the rest of the
//! job pipeline and the binary follow.

pub mod config;
pub mod pipeline;
pub mod precheck;
pub mod state;

pub use config::{Config, ConfigErrors, FileConfig, LogFormat};
pub use pipeline::{JobError, Submitted, Worker};
pub use state::{Stage, WorkDir};
