//! Account types and the value types stored in them.

mod hardware;
mod job;
mod market;
mod math;
mod worker;

pub use hardware::*;
pub use job::*;
pub use market::*;
pub use math::*;
pub use worker::*;
