//! The embedded local chain for development and tests: surfpool running in this process,
//! serving the standard Solana JSON-RPC and websocket on localhost, offline, with the tensorgrid
//! program loaded from its `.so`, funded keypairs written as Solana-CLI files and, optionally,
//! a market created, and a local S3-protocol server for artifacts ([`LocalS3`]). Tests start one on free ports, move its clock with surfpool's cheatcodes,
//! and drop it; `tensorgrid localnet` keeps one up for manual use.

mod chain;
pub mod cheatcodes;
mod keypairs;
mod program;
pub mod s3;
pub mod testing;
pub mod usdc;

pub use chain::{
    default_market_params, Features, Localnet, LocalnetBuilder, LocalnetError, NamedAccount,
};
pub use program::{find_program, ProgramSource};
pub use s3::LocalS3;
pub use surfpool_types::BlockProductionMode;

pub use tensorgrid_client::defaults::SOL;
