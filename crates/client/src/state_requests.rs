//! Asking a worker for committed training states. A result commits to the hash of its
//! training state every few steps, but the states themselves stay with the worker (fifty
//! copies of a model are not worth storing for nobody): anyone who wants to re-run segments
//! asks for their start states with a memo — `tensorgrid-states <job> <i>,<j>,…` — in a
//! transaction that names the job's poster. The worker holding the job reads the memos of the
//! poster's recent transactions and publishes each state asked for once, beside the result,
//! whoever asked (a state reveals nothing the weights do not, and all of them together cost
//! the worker no more than publishing them with the result would). A dispute of segment `i`
//! asks for state `i` by itself.

use anchor_lang::prelude::{AccountMeta, Pubkey};

use crate::instructions::{Instruction, MEMO_PROGRAM_ID};

/// The memo's first word.
pub const PREFIX: &str = "tensorgrid-states";
/// The most segments one request names (a memo stays well inside a transaction).
pub const MAX_PER_REQUEST: usize = 64;

/// The instructions asking `job`'s worker for the start states of `segments`: a memo signed
/// by `signer`, and, when `signer` is not the job's `poster`, a transfer of 0 lamports to the
/// poster so the transaction is in the poster's history, where the worker reads it.
pub fn request(
    signer: Pubkey,
    poster: Pubkey,
    job: &Pubkey,
    segments: &[usize],
) -> Vec<Instruction> {
    let list: Vec<String> = segments
        .iter()
        .take(MAX_PER_REQUEST)
        .map(usize::to_string)
        .collect();
    let memo = Instruction {
        program_id: MEMO_PROGRAM_ID,
        accounts: vec![AccountMeta::new_readonly(signer, true)],
        data: format!("{PREFIX} {job} {}", list.join(",")).into_bytes(),
    };
    if signer == poster {
        vec![memo]
    } else {
        let to_poster =
            anchor_lang::solana_program::system_instruction::transfer(&signer, &poster, 0);
        vec![to_poster, memo]
    }
}

/// The segments asked for `job` in a memo field as the RPC reports it (`[len] text; …`):
/// every request naming this job, each segment at most `MAX_PER_REQUEST` per request, below
/// `segments` (the run's count). Anything else in the memo is ignored.
pub fn requested(memo: &str, job: &Pubkey, segments: usize) -> Vec<usize> {
    let job = job.to_string();
    let mut out = Vec::new();
    let mut rest = memo;
    while let Some(at) = rest.find(PREFIX) {
        rest = &rest[at + PREFIX.len()..];
        let mut words = rest.split_whitespace();
        let (Some(named), Some(list)) = (words.next(), words.next()) else {
            continue;
        };
        if named != job {
            continue;
        }
        // The list ends at the first character that is neither a digit nor a comma (the
        // RPC joins memos with "; ").
        let list: String = list
            .chars()
            .take_while(|c| c.is_ascii_digit() || *c == ',')
            .collect();
        out.extend(
            list.split(',')
                .filter_map(|s| s.parse::<usize>().ok())
                .filter(|&i| i < segments)
                .take(MAX_PER_REQUEST),
        );
    }
    out.sort_unstable();
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_reads_back_as_the_rpc_reports_it() {
        let (job, other) = (Pubkey::new_unique(), Pubkey::new_unique());
        let poster = Pubkey::new_unique();
        let ixs = request(poster, poster, &job, &[17, 4, 30]);
        assert_eq!(ixs.len(), 1, "the poster's own request is one memo");
        let stranger = request(Pubkey::new_unique(), poster, &job, &[1]);
        assert_eq!(stranger.len(), 2);
        assert!(stranger[0].accounts.iter().any(|a| a.pubkey == poster));
        let text = String::from_utf8(ixs[0].data.clone()).unwrap();
        assert_eq!(text, format!("{PREFIX} {job} 17,4,30"));
        // The RPC's memo field: each memo as "[len] text", joined by "; ".
        let field = format!(
            "[10] other note; [{}] {text}; [{}] {PREFIX} {other} 1,2",
            text.len(),
            PREFIX.len() + 48
        );
        assert_eq!(requested(&field, &job, 50), vec![4, 17, 30]);
        assert_eq!(requested(&field, &other, 50), vec![1, 2]);
        // Past the run's segments, malformed words, another job: nothing.
        assert_eq!(requested(&field, &job, 10), vec![4]);
        assert!(requested(&format!("{PREFIX} {job}"), &job, 50).is_empty());
        assert!(requested(&format!("{PREFIX} {job} x,y"), &job, 50).is_empty());
        assert!(requested("", &job, 50).is_empty());
        // A request names at most MAX_PER_REQUEST segments.
        let many: Vec<String> = (0..500).map(|i| i.to_string()).collect();
        let field = format!("{PREFIX} {job} {}", many.join(","));
        assert_eq!(requested(&field, &job, 1_000).len(), MAX_PER_REQUEST);
    }
}
