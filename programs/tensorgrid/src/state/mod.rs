//! Account types, the value types stored in them, and the rules that change them.

mod hardware;
mod job;
mod market;
mod math;
mod poster;
mod worker;

pub use hardware::*;
pub use job::*;
pub use market::*;
pub use math::*;
pub use poster::*;
pub use worker::*;
