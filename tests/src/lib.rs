//! Test harness for the tensorgrid program on LiteSVM: the program runs natively as a builtin
//! with real CPIs (`native`), every transaction is checked for lamport conservation and
//! account invariants (`env`, `invariants`), and `fixtures` sets up markets, workers and jobs.

pub mod compute;
pub mod env;
pub mod fixtures;
pub mod idl;
pub mod invariants;
pub mod native;
pub mod tokens;

pub use env::{Executed, TestEnv, TxFailure, TxResult};
