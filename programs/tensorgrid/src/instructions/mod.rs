//! One file per instruction: its arguments, its accounts, `validate()` and the handler.

mod job_abandon;
mod job_accept;
mod job_cancel;
mod job_claim;
mod job_dispute;
mod job_dispute_timeout;
mod job_finalize;
mod job_post;
mod job_reclaim;
mod job_resolve;
mod job_submit;
mod market_init;
mod market_update;
mod market_withdraw_fees;
mod settle;
mod worker_deregister;
mod worker_register;
mod worker_update;

pub use job_abandon::*;
pub use job_accept::*;
pub use job_cancel::*;
pub use job_claim::*;
pub use job_dispute::*;
pub use job_dispute_timeout::*;
pub use job_finalize::*;
pub use job_post::*;
pub use job_reclaim::*;
pub use job_resolve::*;
pub use job_submit::*;
pub use market_init::*;
pub use market_update::*;
pub use market_withdraw_fees::*;
pub use worker_deregister::*;
pub use worker_register::*;
pub use worker_update::*;
