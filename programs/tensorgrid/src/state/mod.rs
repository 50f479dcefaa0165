//! Account types, the value types stored in them, and the rules that change them.

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
