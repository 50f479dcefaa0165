//! Account types, the value types stored in them, and the rules that change them.

mod dispute;
mod hardware;
mod job;
mod market;
mod math;
mod mint;
mod pool;
mod poster;
mod worker;

pub use dispute::*;
pub use hardware::*;
pub use job::*;
pub use market::*;
pub use math::*;
pub use mint::*;
pub use pool::*;
pub use poster::*;
pub use worker::*;
