//! `tensorgrid-worker`, the provider's daemon (in progress): its configuration is here; the
//! discovery, job pipeline and state directory follow.

pub mod config;

pub use config::{Config, ConfigErrors, FileConfig, LogFormat};
