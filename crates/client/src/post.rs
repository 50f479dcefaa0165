//! Posting a job as a client must: agreeing to the market's terms as read, at an id no job of
//! this poster ever had, with the poster's account created first when it has none.

use anchor_lang::prelude::Pubkey;
use tensorgrid::instructions::JobPostArgs;

use crate::{
    instructions::{self as ix, Instruction},
    state::{JobTerms, Market, Poster},
};

/// What the chain says about a post about to be made.
#[derive(Debug, Clone)]
pub struct PostContext {
    /// The market as read (its current parameters become the job's terms).
    pub market: Market,
    /// The poster's account in the market, `None` before its first post.
    pub poster: Option<Poster>,
}

impl PostContext {
    /// The least id the poster may post at next.
    pub fn next_job_id(&self) -> u64 {
        self.poster.as_ref().map_or(0, |p| p.next_job_id)
    }

    /// The market's current terms: what a post made now agrees to.
    pub fn terms(&self) -> JobTerms {
        self.market.job_terms()
    }

    /// The instructions of the post: `poster_init` first when the poster has no account,
    /// then `job_post` of `args` as given.
    pub fn instructions(
        &self,
        wallet: Pubkey,
        market: Pubkey,
        args: JobPostArgs,
    ) -> Vec<Instruction> {
        let mut out = Vec::with_capacity(2);
        if self.poster.is_none() {
            out.push(ix::poster_init(wallet, market));
        }
        out.push(ix::job_post_in(
            &crate::Currency::of(&self.market),
            wallet,
            market,
            args,
        ));
        out
    }
}
