//! Byte offsets of the fixed-size fields of each account, for `getProgramAccounts` filters
//! (`memcmp`) and partial reads (`dataSlice`). Every variable-length field (URIs, the hardware
//! label) comes after these, so the offsets hold for every account. The tests below pin them
//! against really serialised accounts.

/// Anchor's 8-byte account discriminator comes first in every account.
pub const DISCRIMINATOR: usize = 0;

/// `Job` field offsets.
pub mod job {
    pub const MARKET: usize = 8;
    pub const POSTER: usize = 40;
    /// The holding `Worker` account (all zeros while open).
    pub const WORKER: usize = 72;
    /// One byte: `JobState` as 0 Open, 1 Claimed, 2 Submitted, 3 Disputed.
    pub const STATE: usize = 104;
    pub const JOB_ID: usize = 105;
    pub const REWARD: usize = 113;
    pub const COLLATERAL: usize = 121;
    pub const COMPENSATION: usize = 129;
    pub const SPEC_HASH: usize = 137;
    pub const RESULT_HASH: usize = 169;
    pub const REPORTED_METRIC: usize = 201;
    pub const REQUIREMENTS: usize = 209;
    pub const TERMS: usize = 214;
    pub const MAX_DURATION_S: usize = 286;
    pub const CREATED_AT: usize = 294;
    pub const CLAIMED_AT: usize = 302;
    pub const DEADLINE: usize = 310;
    pub const SUBMITTED_AT: usize = 318;
    pub const CHALLENGE_ENDS_AT: usize = 326;
    pub const DISPUTE_ENDS_AT: usize = 334;
    pub const REOPENED_AT: usize = 342;
    pub const REOPENS: usize = 350;
    /// Eight `Worker` keys (`BARRED_WORKERS`), 32 bytes each.
    pub const BARRED_WORKERS: usize = 354;
    /// Where the variable-length part (spec URI, result URI) starts.
    pub const SPEC_URI: usize = 611;
}

/// `Worker` field offsets.
pub mod worker {
    pub const MARKET: usize = 8;
    pub const OPERATOR: usize = 40;
    /// The held `Job` account (all zeros when idle).
    pub const ACTIVE_JOB: usize = 72;
    pub const STAKE: usize = 104;
    pub const EARNINGS: usize = 112;
    pub const REGISTERED: usize = 120;
    pub const REGISTERED_AT: usize = 121;
    pub const RECORD: usize = 129;
    /// Stake pledged to the verifier pool (0 outside it).
    pub const POOLED_STAKE: usize = 201;
    /// Collateral locked by the active job's claim.
    pub const LOCKED_COLLATERAL: usize = 209;
    /// Stake reserved for the forfeits of open verifier seats.
    pub const SEAT_RESERVE: usize = 217;
    /// `u32`: verifier seats held in disputes not yet settled.
    pub const OPEN_SEATS: usize = 225;
    /// One byte: `DeviceKind` as 0 Cpu, 1 Cuda, 2 Metal.
    pub const DEVICE: usize = 230;
    pub const VRAM_MIB: usize = 231;
    /// Where the variable-length label starts.
    pub const LABEL: usize = 235;
}

/// `Poster` field offsets (the account has no variable-length part).
pub mod poster {
    pub const MARKET: usize = 8;
    pub const WALLET: usize = 40;
    pub const NEXT_JOB_ID: usize = 72;
    pub const JOBS_POSTED: usize = 80;
    /// Token market only: refunds credited and not yet withdrawn.
    pub const REFUNDS: usize = 89;
}

/// `Market` field offsets.
pub mod market {
    pub const AUTHORITY: usize = 8;
    pub const MARKET_ID: usize = 40;
    pub const PARAMS: usize = 48;
    pub const FEES_UNCLAIMED: usize = 104;
    pub const FEES_WITHDRAWN: usize = 112;
    pub const JOBS_POSTED: usize = 120;
    pub const PAUSED: usize = 128;
    /// The mint (all zeros for SOL).
    pub const MINT: usize = 130;
    pub const DECIMALS: usize = 162;
    pub const TOKEN_PROGRAM: usize = 163;
    pub const VAULT: usize = 195;
}

/// `Dispute` field offsets (the account has no variable-length part).
pub mod dispute {
    pub const JOB: usize = 8;
    pub const POSTER: usize = 40;
    /// The disputed `Worker` account.
    pub const WORKER: usize = 72;
    /// One byte: `DisputePhase` as 0 Drawing, 1 Voting, 2 Escalated.
    pub const PHASE: usize = 214;
    /// Three seats of `SEAT_LEN` bytes, each starting with the verifier's `Worker` key.
    pub const SEATS: usize = 231;
    /// Bytes per seat: worker key, reserve, vote state, commitment, revealed hash.
    pub const SEAT_LEN: usize = 105;
}

#[cfg(test)]
mod tests {
    use anchor_lang::{prelude::Pubkey, AccountSerialize};
    use tensorgrid::state::*;

    fn bytes<T: AccountSerialize>(account: &T) -> Vec<u8> {
        let mut out = Vec::new();
        account.try_serialize(&mut out).unwrap();
        out
    }

    fn u64_at(data: &[u8], at: usize) -> u64 {
        u64::from_le_bytes(data[at..at + 8].try_into().unwrap())
    }

    fn i64_at(data: &[u8], at: usize) -> i64 {
        i64::from_le_bytes(data[at..at + 8].try_into().unwrap())
    }

    fn key(n: u8) -> Pubkey {
        Pubkey::new_from_array([n; 32])
    }

    fn sample_job(spec_uri: &str, result_uri: &str) -> Job {
        Job {
            market: key(1),
            poster: key(2),
            worker: key(3),
            state: JobState::Disputed,
            job_id: 4,
            reward: 5,
            collateral: 6,
            compensation: 7,
            spec_hash: [8; 32],
            result_hash: [9; 32],
            reported_metric: 10,
            requirements: JobRequirements {
                device: DeviceRequirement::Metal,
                min_vram_mib: 13,
            },
            terms: JobTerms {
                fee_bps: 0x0102,
                collateral_bps: 0x0304,
                slash_bps: 0x0506,
                abandon_penalty_bps: 0x0708,
                crank_bounty_bps: 0x090a,
                challenge_window_s: 11,
                resolve_window_s: 12,
                dispute: DisputeTerms {
                    bond_bps: 0x0b0c,
                    verifier_fee_bps: 0x0d0e,
                    fraud_slash_bps: 0x0f10,
                    verify_window_s: 13,
                },
                mint: key(24),
            },
            max_duration_s: 14,
            created_at: 15,
            claimed_at: 16,
            deadline: 17,
            submitted_at: 18,
            challenge_ends_at: 19,
            dispute_ends_at: 20,
            reopened_at: 23,
            reopens: 0x0a0b0c0d,
            barred_workers: std::array::from_fn(|i| key(30 + i as u8)),
            bump: 22,
            spec_uri: spec_uri.into(),
            result_uri: result_uri.into(),
        }
    }

    #[test]
    fn job_offsets_match_a_serialised_job() {
        use super::job::*;
        // Whatever the URIs' lengths, the fixed fields must not move.
        let long = "s".repeat(200);
        for (spec_uri, result_uri) in [("spec", "result-uri"), ("", ""), (&long[..], "r")] {
            let d = bytes(&sample_job(spec_uri, result_uri));
            assert_eq!(&d[MARKET..MARKET + 32], key(1).as_ref());
            assert_eq!(&d[POSTER..POSTER + 32], key(2).as_ref());
            assert_eq!(&d[WORKER..WORKER + 32], key(3).as_ref());
            assert_eq!(d[STATE], 3);
            assert_eq!(u64_at(&d, JOB_ID), 4);
            assert_eq!(u64_at(&d, REWARD), 5);
            assert_eq!(u64_at(&d, COLLATERAL), 6);
            assert_eq!(u64_at(&d, COMPENSATION), 7);
            assert_eq!(&d[SPEC_HASH..SPEC_HASH + 32], &[8; 32]);
            assert_eq!(&d[RESULT_HASH..RESULT_HASH + 32], &[9; 32]);
            assert_eq!(u64_at(&d, REPORTED_METRIC), 10);
            assert_eq!(d[REQUIREMENTS], 3, "DeviceRequirement::Metal");
            assert_eq!(&d[TERMS..TERMS + 2], &0x0102u16.to_le_bytes());
            assert_eq!(i64_at(&d, TERMS + 10), 11);
            assert_eq!(i64_at(&d, MAX_DURATION_S), 14);
            assert_eq!(i64_at(&d, CREATED_AT), 15);
            assert_eq!(i64_at(&d, CLAIMED_AT), 16);
            assert_eq!(i64_at(&d, DEADLINE), 17);
            assert_eq!(i64_at(&d, SUBMITTED_AT), 18);
            assert_eq!(i64_at(&d, CHALLENGE_ENDS_AT), 19);
            assert_eq!(i64_at(&d, DISPUTE_ENDS_AT), 20);
            assert_eq!(i64_at(&d, REOPENED_AT), 23);
            assert_eq!(&d[REOPENS..REOPENS + 4], &0x0a0b0c0du32.to_le_bytes());
            for i in 0..8 {
                let at = BARRED_WORKERS + 32 * i;
                assert_eq!(&d[at..at + 32], key(30 + i as u8).as_ref());
            }
            assert_eq!(d[SPEC_URI - 1], 22, "bump just before the URIs");
            assert_eq!(
                &d[SPEC_URI..SPEC_URI + 4],
                &(spec_uri.len() as u32).to_le_bytes()
            );
            assert!(d.len() <= Job::SPACE);
        }
    }

    #[test]
    fn worker_offsets_match_a_serialised_worker() {
        use super::worker::*;
        for label in ["", "RTX 4090", &"x".repeat(32)] {
            let w = Worker {
                market: key(1),
                operator: key(2),
                active_job: key(3),
                stake: 4,
                earnings: 5,
                registered: true,
                registered_at: 6,
                record: WorkerRecord {
                    jobs_completed: 7,
                    ..Default::default()
                },
                pooled_stake: 10,
                locked_collateral: 12,
                seat_reserve: 13,
                open_seats: 11,
                bump: 8,
                hardware: Hardware {
                    device: DeviceKind::Cuda,
                    vram_mib: 9,
                    label: label.into(),
                },
            };
            let d = bytes(&w);
            assert_eq!(&d[MARKET..MARKET + 32], key(1).as_ref());
            assert_eq!(&d[OPERATOR..OPERATOR + 32], key(2).as_ref());
            assert_eq!(&d[ACTIVE_JOB..ACTIVE_JOB + 32], key(3).as_ref());
            assert_eq!(u64_at(&d, STAKE), 4);
            assert_eq!(u64_at(&d, EARNINGS), 5);
            assert_eq!(d[REGISTERED], 1);
            assert_eq!(i64_at(&d, REGISTERED_AT), 6);
            assert_eq!(u64_at(&d, RECORD), 7);
            assert_eq!(u64_at(&d, POOLED_STAKE), 10);
            assert_eq!(u64_at(&d, LOCKED_COLLATERAL), 12);
            assert_eq!(u64_at(&d, SEAT_RESERVE), 13);
            assert_eq!(&d[OPEN_SEATS..OPEN_SEATS + 4], &11u32.to_le_bytes());
            assert_eq!(d[DEVICE - 1], 8, "bump just before the hardware");
            assert_eq!(d[DEVICE], 1);
            assert_eq!(&d[VRAM_MIB..VRAM_MIB + 4], &9u32.to_le_bytes());
            assert_eq!(&d[LABEL..LABEL + 4], &(label.len() as u32).to_le_bytes());
            assert!(d.len() <= Worker::SPACE);
        }
    }

    #[test]
    fn poster_offsets_match_a_serialised_poster() {
        use super::poster::*;
        let p = Poster {
            market: key(1),
            wallet: key(2),
            next_job_id: 3,
            jobs_posted: 4,
            bump: 5,
            refunds: 6,
            refunds_withdrawn: 7,
        };
        let d = bytes(&p);
        assert_eq!(&d[MARKET..MARKET + 32], key(1).as_ref());
        assert_eq!(&d[WALLET..WALLET + 32], key(2).as_ref());
        assert_eq!(u64_at(&d, NEXT_JOB_ID), 3);
        assert_eq!(u64_at(&d, JOBS_POSTED), 4);
        assert_eq!(u64_at(&d, REFUNDS), 6);
        assert_eq!(d.len(), Poster::SPACE);
    }

    #[test]
    fn market_offsets_match_a_serialised_market() {
        use super::market::*;
        let m = Market {
            authority: key(1),
            market_id: 2,
            params: MarketParams {
                fee_bps: 3,
                min_stake: 4,
                collateral_bps: 5,
                slash_bps: 6,
                abandon_penalty_bps: 7,
                crank_bounty_bps: 8,
                challenge_window_s: 9,
                resolve_window_s: 10,
                max_claim_s: 11,
                dispute: DisputeTerms {
                    bond_bps: 16,
                    verifier_fee_bps: 17,
                    fraud_slash_bps: 18,
                    verify_window_s: 19,
                },
            },
            fees_unclaimed: 12,
            fees_withdrawn: 13,
            jobs_posted: 14,
            paused: true,
            bump: 15,
            mint: key(20),
            decimals: 6,
            token_program: key(21),
            vault: key(22),
        };
        let d = bytes(&m);
        assert_eq!(&d[AUTHORITY..AUTHORITY + 32], key(1).as_ref());
        assert_eq!(u64_at(&d, MARKET_ID), 2);
        assert_eq!(&d[PARAMS..PARAMS + 2], &3u16.to_le_bytes());
        assert_eq!(u64_at(&d, FEES_UNCLAIMED), 12);
        assert_eq!(u64_at(&d, FEES_WITHDRAWN), 13);
        assert_eq!(u64_at(&d, JOBS_POSTED), 14);
        assert_eq!(d[PAUSED], 1);
        assert_eq!(&d[MINT..MINT + 32], key(20).as_ref());
        assert_eq!(d[DECIMALS], 6);
        assert_eq!(&d[TOKEN_PROGRAM..TOKEN_PROGRAM + 32], key(21).as_ref());
        assert_eq!(&d[VAULT..VAULT + 32], key(22).as_ref());
        assert_eq!(d.len(), Market::SPACE);
    }

    #[test]
    fn dispute_offsets_match_a_serialised_dispute() {
        use super::dispute::*;
        let seat = |n: u8| Seat {
            worker: key(n),
            reserve: 5,
            vote: VoteState::Revealed,
            commitment: [n + 1; 32],
            revealed: [n + 2; 32],
        };
        let d = Dispute {
            job: key(1),
            poster: key(2),
            worker: key(3),
            segment: 4,
            start_hash: [5; 32],
            end_hash: [6; 32],
            device: DeviceKind::Metal,
            pool_frozen: true,
            bond: 7,
            forfeits: 8,
            verifier_fee: 9,
            disputed_slot: 10,
            drawn_slot: 11,
            phase: DisputePhase::Escalated,
            commit_ends_at: 12,
            reveal_ends_at: 13,
            seats: [seat(20), seat(30), seat(40)],
            bump: 14,
        };
        let b = bytes(&d);
        assert_eq!(&b[JOB..JOB + 32], key(1).as_ref());
        assert_eq!(&b[POSTER..POSTER + 32], key(2).as_ref());
        assert_eq!(&b[WORKER..WORKER + 32], key(3).as_ref());
        assert_eq!(b[PHASE], 2);
        for (i, n) in [20u8, 30, 40].into_iter().enumerate() {
            let at = SEATS + i * SEAT_LEN;
            assert_eq!(&b[at..at + 32], key(n).as_ref());
            assert_eq!(&b[at + 73..at + 105], &[n + 2; 32]);
        }
        assert_eq!(b[SEATS + 3 * SEAT_LEN], 14, "bump after the seats");
        assert_eq!(b.len(), Dispute::SPACE);
    }
}
