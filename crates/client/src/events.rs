//! Reading back `emit_cpi!` events: each is a self-invocation of the program whose data is
//! `EVENT_IX_TAG_LE ‖ event discriminator ‖ borsh(event)`.

use anchor_lang::{event::EVENT_IX_TAG_LE, prelude::Pubkey, AnchorDeserialize, Discriminator};
use tensorgrid::events::*;

/// Every event the program emits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    MarketInitialized(MarketInitialized),
    MarketUpdated(MarketUpdated),
    MarketFeesWithdrawn(MarketFeesWithdrawn),
    WorkerRegistered(WorkerRegistered),
    WorkerUpdated(WorkerUpdated),
    WorkerDeregistered(WorkerDeregistered),
    PosterInitialized(PosterInitialized),
    JobPosted(JobPosted),
    JobCancelled(JobCancelled),
    JobClaimed(JobClaimed),
    JobAbandoned(JobAbandoned),
    JobSubmitted(JobSubmitted),
    JobPaid(JobPaid),
    JobDisputed(JobDisputed),
    JobRefunded(JobRefunded),
    JobReclaimed(JobReclaimed),
    VerifierPoolChanged(VerifierPoolChanged),
    DisputeDrawn(DisputeDrawn),
    DisputeVoted(DisputeVoted),
    DisputeTallied(DisputeTallied),
    DisputeClosed(DisputeClosed),
}

fn try_as<E: AnchorDeserialize + Discriminator>(body: &[u8]) -> Option<E> {
    let rest = body.strip_prefix(E::DISCRIMINATOR)?;
    E::try_from_slice(rest).ok()
}

/// Decodes the data of an inner instruction addressed to the program; `None` when it is not
/// an event (or not one of ours).
pub fn decode_event(ix_data: &[u8]) -> Option<Event> {
    let body = ix_data.strip_prefix(EVENT_IX_TAG_LE)?;
    macro_rules! first_match {
        ($($t:ident),*) => {
            $( if let Some(e) = try_as::<$t>(body) { return Some(Event::$t(e)); } )*
        };
    }
    first_match!(
        MarketInitialized,
        MarketUpdated,
        MarketFeesWithdrawn,
        WorkerRegistered,
        WorkerUpdated,
        WorkerDeregistered,
        PosterInitialized,
        JobPosted,
        JobCancelled,
        JobClaimed,
        JobAbandoned,
        JobSubmitted,
        JobPaid,
        JobDisputed,
        JobRefunded,
        JobReclaimed,
        VerifierPoolChanged,
        DisputeDrawn,
        DisputeVoted,
        DisputeTallied,
        DisputeClosed
    );
    None
}

/// The program's events in a transaction, in order: `inner` lists each inner instruction as
/// (index of its program in `account_keys`, its data). Inner instructions addressed to another
/// program, or ours but not events, are skipped.
pub fn decode_events<'a>(
    account_keys: &[Pubkey],
    inner: impl IntoIterator<Item = (usize, &'a [u8])>,
) -> Vec<Event> {
    inner
        .into_iter()
        .filter(|(program, _)| account_keys.get(*program) == Some(&crate::program_id()))
        .filter_map(|(_, data)| decode_event(data))
        .collect()
}
