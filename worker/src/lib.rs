//! `tensorgrid-worker`, the provider's daemon (in progress): its configuration and its work
//! directory are here; discovery, the job pipeline and the binary follow.

pub mod config;
pub mod state;

pub use config::{Config, ConfigErrors, FileConfig, LogFormat};
pub use state::{Stage, WorkDir};
