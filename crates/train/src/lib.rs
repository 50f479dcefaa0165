//! tensorgrid's training engine.
//!
//! A declarative [`spec::JobSpec`] names a dataset (fetched and sha256-verified by
//! [`data`]), a model from the built-in zoo ([`models`]) and how to train it. [`trainer`]
//! trains deterministically (own seeded init, own optimizers, seed-derived batch order) with
//! checkpoints that resume bit-identically, and [`manifest`] writes the result whose sha256 is
//! the hash a worker submits on-chain. [`verify`] re-checks a result.

pub mod alloc;
pub mod bench;
pub mod checkpoint;
pub mod commit;
pub mod data;
pub mod device;
pub mod dispute;
pub mod error;
pub mod finetune;
pub mod hf;
pub mod kernels;
pub mod manifest;
pub mod memory;
pub mod models;
pub mod optim;
pub mod parts;
pub mod precision;
#[cfg(test)]
mod precision_tests;
pub mod rehearsal;
pub mod rng;
pub mod sample;
pub mod schedule;
pub mod spec;
pub mod threads;
pub mod tokenizer;
pub mod trainer;
pub mod verify;

/// The device type runs are made on and the element types they compute in (re-exported so
/// callers need not depend on candle).
pub use candle_core::{DType, Device};

/// Threads the CPU kernels run on (`RAYON_NUM_THREADS`, else every core): candle's own count.
pub fn cpu_threads() -> usize {
    candle_core::utils::get_num_threads()
}
pub use error::{Error, Fault, Result};
