use anchor_lang::prelude::*;
use solana_sha256_hasher::hashv;

use super::{checked_add_i64, PoolEntry};
use crate::{constants::VERIFIER_SEATS, errors::TensorgridError};

/// Where a dispute is.
#[derive(AnchorSerialize, AnchorDeserialize, InitSpace, Clone, Copy, Debug, PartialEq, Eq)]
pub enum DisputePhase {
    /// Waiting for `dispute_draw` to seat the verifiers from a slot hash after the dispute.
    Drawing,
    /// The seated verifiers commit, then reveal, the segment's end-state hash.
    Voting,
    /// The verifiers could not settle it (too few in the pool, a tie, too few reveals): the
    /// market authority may rule until `Job::dispute_ends_at`, then the timeout default holds.
    Escalated,
}

/// Where a seat's vote is.
#[derive(AnchorSerialize, AnchorDeserialize, InitSpace, Clone, Copy, Debug, PartialEq, Eq)]
pub enum VoteState {
    /// Drawn; no commitment yet.
    Drawn,
    /// Committed to a hash it has not revealed.
    Committed,
    /// Revealed the hash it committed to.
    Revealed,
}

/// A drawn verifier and its vote.
#[derive(AnchorSerialize, AnchorDeserialize, InitSpace, Clone, Copy, Debug, PartialEq, Eq)]
pub struct Seat {
    /// The verifier's `Worker` account.
    pub worker: Pubkey,
    /// Stake the seat reserved at the draw: the most it can forfeit.
    pub reserve: u64,
    /// Where its vote is.
    pub vote: VoteState,
    /// `sha256(hash ‖ salt ‖ worker)`, zero until committed.
    pub commitment: [u8; 32],
    /// The end-state hash it revealed (all zeros: it could not re-run the segment from the
    /// committed state), meaningful once revealed.
    pub revealed: [u8; 32],
}

/// How the verifiers' votes came out.
#[derive(AnchorSerialize, AnchorDeserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tally {
    /// A majority re-ran the segment to the worker's committed end state.
    Upheld,
    /// A majority reached another state (or could not re-run it): the result is a fraud.
    Fraud,
    /// No majority: the authority rules.
    Undecided,
}

/// A poster's challenge of one segment of a submitted result, settled by re-execution. Holds
/// the poster's bond, and the forfeits of verifiers that failed their seats, as lamports above
/// rent; closed to the poster when the dispute ends.
#[account]
#[derive(InitSpace, Debug)]
pub struct Dispute {
    /// The disputed job.
    pub job: Pubkey,
    /// The job's poster, who posted the bond.
    pub poster: Pubkey,
    /// The `Worker` account whose result is disputed.
    pub worker: Pubkey,
    /// Index of the disputed segment in the result's commitments (states `segment` → `segment+1`).
    pub segment: u32,
    /// The segment's committed start state, as the poster read it in the result manifest.
    pub start_hash: [u8; 32],
    /// The segment's committed end state: the worker is upheld if the majority reaches it.
    pub end_hash: [u8; 32],
    /// The device class of the disputed worker; only verifiers of this class are drawn.
    pub device: super::DeviceKind,
    /// Whether the market's verifier pool existed when the dispute was opened: the dispute
    /// then froze it until its draw (`VerifierPool::pending_draws`). Without one, the draw
    /// hands the dispute to the authority.
    pub pool_frozen: bool,
    /// Lamports of bond held here.
    pub bond: u64,
    /// Lamports forfeited by verifiers, held here until the dispute ends.
    pub forfeits: u64,
    /// Each majority verifier's fee, and each failing verifier's forfeit, in lamports.
    pub verifier_fee: u64,
    /// Slot of the dispute: the draw uses the hash of the first slot after it.
    pub disputed_slot: u64,
    /// The slot whose hash seeded the draw (0 until drawn).
    pub drawn_slot: u64,
    /// Where the dispute is.
    pub phase: DisputePhase,
    /// Unix time until which seats may commit (0 until drawn).
    pub commit_ends_at: i64,
    /// Unix time until which seats may reveal (0 until drawn).
    pub reveal_ends_at: i64,
    /// The drawn verifiers (all default until drawn, or if the pool was too small).
    pub seats: [Seat; 3],
    /// The PDA's bump.
    pub bump: u8,
}

const _: () = assert!(VERIFIER_SEATS == 3, "Dispute::seats has 3 slots");

/// What a verifier commits to: its hash bound to a secret salt and to its own account, so a
/// commitment copied from another seat reveals nothing and cannot be revealed by the copier.
pub fn vote_commitment(hash: &[u8; 32], salt: &[u8; 32], worker: &Pubkey) -> [u8; 32] {
    hashv(&[hash, salt, worker.as_ref()]).to_bytes()
}

/// The draw's seed: the slot hash, bound to the job so disputes in one slot draw apart.
pub fn draw_seed(slot_hash: &[u8; 32], job: &Pubkey) -> [u8; 32] {
    hashv(&[slot_hash, job.as_ref()]).to_bytes()
}

/// Draws `VERIFIER_SEATS` distinct entries of `device` class, never the disputed `worker`
/// nor any worker of `poster`'s, each with probability proportional to its weight among
/// those left. `None` when fewer are eligible. Deterministic in `seed`: a client computes the
/// same seats to pass their accounts.
pub fn draw_seats(
    pool: &[PoolEntry],
    device: super::DeviceKind,
    worker: &Pubkey,
    poster: &Pubkey,
    seed: &[u8; 32],
) -> Option<[Pubkey; 3]> {
    let mut eligible: Vec<PoolEntry> = pool
        .iter()
        .filter(|e| {
            e.worker != Pubkey::default()
                && e.weight > 0
                && e.device == device as u8
                && e.worker != *worker
                && e.operator != *poster
        })
        .copied()
        .collect();
    let mut seats = [Pubkey::default(); 3];
    for (k, seat) in seats.iter_mut().enumerate() {
        let total: u128 = eligible.iter().map(|e| u128::from(e.weight)).sum();
        if total == 0 {
            return None;
        }
        let draw = hashv(&[&seed[..], &[k as u8]]).to_bytes();
        let mut word = [0u8; 16];
        word.copy_from_slice(draw.get(..16)?);
        let mut point = u128::from_le_bytes(word).checked_rem(total)?;
        let chosen = eligible.iter().position(|e| {
            let w = u128::from(e.weight);
            if point < w {
                true
            } else {
                point = point.saturating_sub(w);
                false
            }
        })?;
        *seat = eligible.swap_remove(chosen).worker;
    }
    Some(seats)
}

/// Slots the `SlotHashes` sysvar keeps.
pub const SLOT_HASHES_KEPT: usize = 512;

/// What the `SlotHashes` sysvar says about the slot after a dispute's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlotDraw {
    /// The first slot after it, and its hash: the draw's randomness.
    Hash(u64, [u8; 32]),
    /// No later slot yet: draw in a later slot.
    TooEarly,
    /// That slot has left the sysvar's window (nobody drew for about 512 slots): its hash can
    /// no longer be read, and any later one could be chosen by waiting, so nobody is drawn.
    Expired,
}

/// Reads the sysvar's raw data (newest first: `u64` count, then `(u64 slot, [u8; 32] hash)`
/// entries) for the first slot after `after`. `None`: the data is malformed.
pub fn slot_hash_after(data: &[u8], after: u64) -> Option<SlotDraw> {
    let count = usize::try_from(u64::from_le_bytes(data.get(..8)?.try_into().ok()?)).ok()?;
    let mut best = None;
    let mut reached = false;
    for i in 0..count {
        let at = 8usize.checked_add(i.checked_mul(40)?)?;
        let entry = data.get(at..at.checked_add(40)?)?;
        let slot = u64::from_le_bytes(entry.get(..8)?.try_into().ok()?);
        if slot <= after {
            reached = true;
            break;
        }
        let hash: [u8; 32] = entry.get(8..40)?.try_into().ok()?;
        best = Some((slot, hash));
    }
    Some(match best {
        None => SlotDraw::TooEarly,
        // Older entries were cut off: the first slot after `after` may be gone.
        Some((slot, _))
            if !reached && count >= SLOT_HASHES_KEPT && Some(slot) != after.checked_add(1) =>
        {
            SlotDraw::Expired
        }
        Some((slot, hash)) => SlotDraw::Hash(slot, hash),
    })
}

impl Dispute {
    pub const SPACE: usize = 8 + Dispute::INIT_SPACE;

    pub fn require_phase(&self, phase: DisputePhase) -> Result<()> {
        let err = match phase {
            DisputePhase::Drawing => TensorgridError::DisputeNotDrawing,
            DisputePhase::Voting => TensorgridError::DisputeNotVoting,
            DisputePhase::Escalated => TensorgridError::DisputeNotEscalated,
        };
        if self.phase != phase {
            return Err(crate::errors::fail(err));
        }
        Ok(())
    }

    /// Drawing → Voting with `seats` (worker, reserve), whose windows start at `now`.
    pub fn seat(
        &mut self,
        seats: [(Pubkey, u64); 3],
        slot: u64,
        now: i64,
        window: i64,
    ) -> Result<()> {
        for (seat, (worker, reserve)) in self.seats.iter_mut().zip(seats) {
            seat.worker = worker;
            seat.reserve = reserve;
        }
        self.drawn_slot = slot;
        self.phase = DisputePhase::Voting;
        self.commit_ends_at = checked_add_i64(now, window)?;
        self.reveal_ends_at = checked_add_i64(self.commit_ends_at, window)?;
        Ok(())
    }

    fn seat_of(&mut self, worker: &Pubkey) -> Result<&mut Seat> {
        self.seats
            .iter_mut()
            .find(|s| s.worker == *worker && *worker != Pubkey::default())
            .ok_or_else(|| crate::errors::fail(TensorgridError::NotVerifier))
    }

    fn all(&self, vote: VoteState) -> bool {
        self.seats.iter().all(|s| s.vote == vote)
    }

    /// `worker`'s seat commits, inside the commit window.
    pub fn commit(&mut self, worker: &Pubkey, commitment: [u8; 32], now: i64) -> Result<()> {
        self.require_phase(DisputePhase::Voting)?;
        ensure!(
            now <= self.commit_ends_at,
            TensorgridError::CommitWindowClosed
        );
        let seat = self.seat_of(worker)?;
        ensure!(seat.vote == VoteState::Drawn, TensorgridError::AlreadyVoted);
        seat.commitment = commitment;
        seat.vote = VoteState::Committed;
        Ok(())
    }

    /// `worker`'s seat reveals what it committed to: once the commit window has closed (or
    /// every seat has committed, so nobody can copy any more), and before the reveal window
    /// closes.
    pub fn reveal(
        &mut self,
        worker: &Pubkey,
        hash: [u8; 32],
        salt: [u8; 32],
        now: i64,
    ) -> Result<()> {
        self.require_phase(DisputePhase::Voting)?;
        let open =
            now > self.commit_ends_at || self.seats.iter().all(|s| s.vote != VoteState::Drawn);
        ensure!(open, TensorgridError::RevealNotOpen);
        ensure!(
            now <= self.reveal_ends_at,
            TensorgridError::RevealWindowClosed
        );
        let seat = self.seat_of(worker)?;
        match seat.vote {
            VoteState::Drawn => return Err(crate::errors::fail(TensorgridError::NotCommitted)),
            VoteState::Revealed => {
                return Err(crate::errors::fail(TensorgridError::AlreadyRevealed))
            }
            VoteState::Committed => {}
        }
        ensure!(
            vote_commitment(&hash, &salt, worker) == seat.commitment,
            TensorgridError::RevealMismatch
        );
        seat.revealed = hash;
        seat.vote = VoteState::Revealed;
        Ok(())
    }

    /// Voting is over: every seat has revealed, or the reveal window has closed.
    pub fn require_voting_over(&self, now: i64) -> Result<()> {
        self.require_phase(DisputePhase::Voting)?;
        ensure!(
            self.all(VoteState::Revealed) || now > self.reveal_ends_at,
            TensorgridError::VotingNotOver
        );
        Ok(())
    }

    /// The hash at least two seats revealed, if any (with three seats there is at most one).
    pub fn majority(&self) -> Option<[u8; 32]> {
        let revealed = |s: &&Seat| s.vote == VoteState::Revealed;
        self.seats.iter().filter(revealed).find_map(|s| {
            let same = self
                .seats
                .iter()
                .filter(revealed)
                .filter(|o| o.revealed == s.revealed)
                .count();
            (same >= 2).then_some(s.revealed)
        })
    }

    pub fn tally(&self) -> Tally {
        match self.majority() {
            Some(hash) if hash == self.end_hash => Tally::Upheld,
            Some(_) => Tally::Fraud,
            None => Tally::Undecided,
        }
    }

    /// Whether the seat earned its fee: it revealed the majority's hash.
    pub fn seat_earns(&self, seat: &Seat) -> bool {
        seat.vote == VoteState::Revealed && Some(seat.revealed) == self.majority()
    }

    /// Whether the seat forfeits: with a majority, every seat not in it; without one, only
    /// the seats that did not reveal (a disagreement is not proof that either side is wrong).
    pub fn seat_forfeits(&self, seat: &Seat) -> bool {
        match self.majority() {
            Some(_) => !self.seat_earns(seat),
            None => seat.vote != VoteState::Revealed,
        }
    }

    /// Voting → Escalated.
    pub fn escalate(&mut self) {
        self.phase = DisputePhase::Escalated;
    }

    pub fn invariant(&self, info: &AccountInfo, unit: super::Unit) -> Result<()> {
        ensure!(self.end_hash != [0; 32], TensorgridError::InvariantViolated);
        super::check_backed(info, super::checked_add(self.bond, self.forfeits)?, unit)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::arithmetic_side_effects)]
mod tests {
    use super::*;
    use crate::state::DeviceKind;

    fn key(n: u8) -> Pubkey {
        Pubkey::new_from_array([n; 32])
    }

    fn entry(n: u8, weight: u64, device: DeviceKind) -> PoolEntry {
        PoolEntry::new(key(n), key(n + 100), weight, device)
    }

    #[test]
    fn the_draw_takes_the_first_slot_after_the_dispute() {
        let mut data = 3u64.to_le_bytes().to_vec();
        for slot in [10u64, 9, 7] {
            data.extend(slot.to_le_bytes());
            data.extend([slot as u8; 32]);
        }
        let hash = |s: u64| Some(SlotDraw::Hash(s, [s as u8; 32]));
        assert_eq!(slot_hash_after(&data, 8), hash(9));
        assert_eq!(slot_hash_after(&data, 9), hash(10));
        assert_eq!(slot_hash_after(&data, 10), Some(SlotDraw::TooEarly));
        // A young chain keeps every slot: the oldest one is the first.
        assert_eq!(slot_hash_after(&data, 1), hash(7));
        assert_eq!(slot_hash_after(&data[..20], 1), None, "truncated data");
        assert_eq!(slot_hash_after(&[], 1), None);
        // A full window that starts after the dispute's next slot: it may have held an
        // earlier one, so nobody is drawn rather than a slot someone waited for.
        let mut full = (SLOT_HASHES_KEPT as u64).to_le_bytes().to_vec();
        for slot in (1_000..1_000 + SLOT_HASHES_KEPT as u64).rev() {
            full.extend(slot.to_le_bytes());
            full.extend([slot as u8; 32]);
        }
        assert_eq!(slot_hash_after(&full, 990), Some(SlotDraw::Expired));
        assert_eq!(
            slot_hash_after(&full, 999),
            hash(1_000),
            "exactly the next slot"
        );
        assert_eq!(slot_hash_after(&full, 1_000), hash(1_001));
    }

    #[test]
    fn the_draw_seats_three_eligible_verifiers_and_no_party() {
        let pool = [
            entry(1, 10, DeviceKind::Cpu), // the disputed worker
            entry(2, 10, DeviceKind::Cpu), // operated by the poster
            entry(3, 10, DeviceKind::Cuda),
            entry(4, 10, DeviceKind::Cpu),
            entry(5, 0, DeviceKind::Cpu),
            entry(6, 10, DeviceKind::Cpu),
            PoolEntry::default(),
        ];
        let poster = key(102);
        assert_eq!(
            draw_seats(&pool, DeviceKind::Cpu, &key(1), &poster, &[0; 32]),
            None,
            "two eligible"
        );
        let mut pool = pool.to_vec();
        pool.push(entry(7, 10, DeviceKind::Cpu));
        for s in 0..50u8 {
            let seats = draw_seats(&pool, DeviceKind::Cpu, &key(1), &poster, &[s; 32]).unwrap();
            let mut sorted = seats;
            sorted.sort();
            assert_eq!(sorted, [key(4), key(6), key(7)]);
            assert_eq!(
                draw_seats(&pool, DeviceKind::Cpu, &key(1), &poster, &[s; 32]),
                Some(seats),
                "deterministic"
            );
        }
    }

    fn with_votes(votes: [Option<[u8; 32]>; 3]) -> Dispute {
        let seat = |v: Option<[u8; 32]>| Seat {
            worker: key(9),
            reserve: 1,
            vote: if v.is_some() {
                VoteState::Revealed
            } else {
                VoteState::Committed
            },
            commitment: [0; 32],
            revealed: v.unwrap_or([0; 32]),
        };
        Dispute {
            job: key(1),
            poster: key(2),
            worker: key(3),
            segment: 0,
            start_hash: [1; 32],
            end_hash: [7; 32],
            device: DeviceKind::Cpu,
            pool_frozen: true,
            bond: 0,
            forfeits: 0,
            verifier_fee: 1,
            disputed_slot: 0,
            drawn_slot: 0,
            phase: DisputePhase::Voting,
            commit_ends_at: 0,
            reveal_ends_at: 0,
            seats: votes.map(seat),
            bump: 0,
        }
    }

    #[test]
    fn two_matching_reveals_decide_and_the_rest_forfeit() {
        let (end, other, zero) = (Some([7; 32]), Some([8; 32]), Some([0; 32]));
        assert_eq!(with_votes([end, end, other]).tally(), Tally::Upheld);
        assert_eq!(with_votes([end, end, None]).tally(), Tally::Upheld);
        assert_eq!(with_votes([other, other, end]).tally(), Tally::Fraud);
        // "Could not re-run it from the committed state" counts against the worker.
        assert_eq!(with_votes([zero, zero, None]).tally(), Tally::Fraud);
        assert_eq!(with_votes([end, other, None]).tally(), Tally::Undecided);
        assert_eq!(with_votes([end, other, zero]).tally(), Tally::Undecided);
        assert_eq!(with_votes([None, None, end]).tally(), Tally::Undecided);
        let d = with_votes([end, end, other]);
        assert!(d.seat_earns(&d.seats[0]) && !d.seat_forfeits(&d.seats[0]));
        assert!(!d.seat_earns(&d.seats[2]) && d.seat_forfeits(&d.seats[2]));
        let tie = with_votes([end, other, None]);
        assert!(!tie.seat_forfeits(&tie.seats[0]) && !tie.seat_forfeits(&tie.seats[1]));
        assert!(tie.seat_forfeits(&tie.seats[2]), "only the absent seat");
    }
}
