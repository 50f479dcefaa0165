//! `tensorgrid-worker`, the provider's daemon: it finds jobs it can run on the chain, checks
//! each before claiming, claims, trains with candle, publishes the result, submits its hash
//! and follows the job to payment. The binary (`src/main.rs`) only parses flags and starts
//! [`daemon::Daemon`].

pub mod check;
pub mod config;
pub mod crashguard;
pub mod daemon;
pub mod disputes;
pub mod estimate;
pub mod files;
pub mod hardware;
pub mod judge;
pub mod ledger;
pub mod money;
pub mod pipeline;
pub mod policy;
pub mod precheck;
pub mod refusals;
pub mod resources;
pub mod shards;
pub mod state;
pub mod states;
pub mod status;

pub use config::{Config, ConfigErrors, FileConfig, LogFormat};
pub use daemon::Daemon;
pub use money::{Money, Unit};
pub use pipeline::{JobError, Submitted, Worker};
pub use state::{Stage, WorkDir};
pub use status::{Snapshot, Status};
