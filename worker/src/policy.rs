//! Whether a job's money terms are within what the operator agreed to sign ([`TermsPolicy`]).
//! The program refuses a claim whose terms differ from the ones the worker read, so checking
//! the terms as read is checking the terms the claim commits to.

use tensorgrid_client::state::JobTerms;

use crate::config::TermsPolicy;

/// `Err(reason)` naming the first term outside the policy.
pub fn check_terms(terms: &JobTerms, policy: &TermsPolicy) -> Result<(), String> {
    let share = |bps: u32| format!("{}%", f64::from(bps) / 100.0);
    if u32::from(terms.collateral_bps) > policy.max_collateral_bps {
        return Err(format!(
            "terms: collateral is {} of the reward, above the configured {} (max_collateral_bps)",
            share(terms.collateral_bps.into()),
            share(policy.max_collateral_bps)
        ));
    }
    if u32::from(terms.slash_bps) > policy.max_slash_bps {
        return Err(format!(
            "terms: a missed deadline or a lost dispute takes {} of the collateral, above the configured {} (max_slash_bps)",
            share(terms.slash_bps.into()),
            share(policy.max_slash_bps)
        ));
    }
    if u32::from(terms.abandon_penalty_bps) > policy.max_abandon_penalty_bps {
        return Err(format!(
            "terms: giving the job back costs {} of the collateral, above the configured {} (max_abandon_penalty_bps)",
            share(terms.abandon_penalty_bps.into()),
            share(policy.max_abandon_penalty_bps)
        ));
    }
    if terms.challenge_window_s > policy.max_challenge_window_s {
        return Err(format!(
            "terms: the poster may dispute for {} s, longer than the configured {} s (max_challenge_window)",
            terms.challenge_window_s, policy.max_challenge_window_s
        ));
    }
    if terms.resolve_window_s < policy.min_resolve_window_s {
        return Err(format!(
            "terms: the arbiter has {} s to rule on a dispute the verifiers cannot settle, less than the configured {} s (min_resolve_window)",
            terms.resolve_window_s, policy.min_resolve_window_s
        ));
    }
    if terms.resolve_window_s > policy.max_resolve_window_s {
        return Err(format!(
            "terms: a dispute may lock the stake for {} s, longer than the configured {} s (max_resolve_window)",
            terms.resolve_window_s, policy.max_resolve_window_s
        ));
    }
    if terms.dispute.verify_window_s > policy.max_verify_window_s {
        return Err(format!(
            "terms: a dispute's verifiers may take {} s to commit and as long to reveal, longer than the configured {} s (max_verify_window)",
            terms.dispute.verify_window_s, policy.max_verify_window_s
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> TermsPolicy {
        crate::FileConfig::parse("store = \"s3://b\"")
            .unwrap()
            .resolve(std::path::Path::new("/h"))
            .unwrap()
            .terms
    }

    #[test]
    fn the_default_market_is_within_the_default_policy() {
        let terms = tensorgrid_client::defaults::market_params().job_terms();
        check_terms(&terms, &policy()).unwrap();
    }

    /// The review's sock-puppet market: 5 × collateral, 100 % slash, a one-second ruling
    /// window. Each term on its own is refused, with its name.
    #[test]
    fn each_harsh_term_is_refused_by_name() {
        let fair = tensorgrid_client::defaults::market_params().job_terms();
        let slow = JobTerms {
            dispute: tensorgrid_client::state::DisputeTerms {
                verify_window_s: 30 * 86_400,
                ..fair.dispute
            },
            ..fair
        };
        let cases: [(JobTerms, &str); 7] = [
            (slow, "max_verify_window"),
            (
                JobTerms {
                    collateral_bps: 50_000,
                    ..fair
                },
                "max_collateral_bps",
            ),
            (
                JobTerms {
                    slash_bps: 10_000,
                    ..fair
                },
                "max_slash_bps",
            ),
            (
                JobTerms {
                    abandon_penalty_bps: 4_999,
                    ..fair
                },
                "max_abandon_penalty_bps",
            ),
            (
                JobTerms {
                    challenge_window_s: 30 * 86_400,
                    ..fair
                },
                "max_challenge_window",
            ),
            (
                JobTerms {
                    resolve_window_s: 1,
                    ..fair
                },
                "min_resolve_window",
            ),
            (
                JobTerms {
                    resolve_window_s: 30 * 86_400,
                    ..fair
                },
                "max_resolve_window",
            ),
        ];
        for (terms, field) in cases {
            let why = check_terms(&terms, &policy()).unwrap_err();
            assert!(why.contains(field), "{why}");
        }
    }
}
