//! `--spot-check N` / `--segments LIST`: which committed training segments to re-run, and
//! what a re-run found, for `verify` and `job verify`.

use anyhow::{bail, Result};
use clap::Args;
use rand::seq::index;
use tensorgrid_train::{
    checkpoint,
    commit::{self, Commitments, SpotCheck},
    data::Split,
    manifest::Manifest,
    spec::JobSpec,
    verify::run_shape,
    Device,
};

#[derive(Args, Debug, Clone, Default)]
pub struct SpotCheckArgs {
    /// Re-run N segments of the training, chosen at random here (the worker committed to
    /// every segment's end state before it could know which), and compare the states reached.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub spot_check: Option<u64>,
    /// Re-run these segments (comma-separated indices), e.g. to repeat a finding.
    #[arg(
        long,
        value_delimiter = ',',
        value_name = "LIST",
        conflicts_with = "spot_check"
    )]
    pub segments: Vec<usize>,
}

impl SpotCheckArgs {
    pub fn wanted(&self) -> bool {
        self.spot_check.is_some_and(|n| n > 0) || !self.segments.is_empty()
    }

    /// The segments to re-run, sorted: those named, or N drawn from this machine's randomness.
    pub fn choose(&self, c: &Commitments) -> Result<Vec<usize>> {
        let of = c.segments();
        if of == 0 {
            bail!("the result commits to no training segment");
        }
        let mut chosen = if self.segments.is_empty() {
            let n = usize::try_from(self.spot_check.unwrap_or(0))
                .unwrap_or(usize::MAX)
                .min(of);
            index::sample(&mut rand::rng(), of, n).into_vec()
        } else {
            if let Some(bad) = self.segments.iter().find(|&&i| i >= of) {
                bail!("--segments: {bad} does not exist; the run has {of} segments (0..{of})");
            }
            self.segments.clone()
        };
        chosen.sort_unstable();
        chosen.dedup();
        Ok(chosen)
    }
}

/// What must hold before any segment is re-run: the commitments are well formed for the run
/// the spec describes (so every index and file name is safe to use), and this machine is of
/// the device class that trained it (bits agree only within one). Returns the run's steps.
pub fn ready(spec: &JobSpec, data: &Split, m: &Manifest, device: &Device) -> Result<u64> {
    let (total, every) = run_shape(spec, data)?;
    if m.steps != total || m.commitments.every != every {
        bail!(
            "cannot spot-check: the manifest says {} steps every {}, the spec makes {total} every {every}",
            m.steps,
            m.commitments.every
        );
    }
    let problems = commit::problems(&m.commitments, total);
    if let Some(first) = problems.first() {
        bail!("cannot spot-check: {first}");
    }
    if let Some(why) = checkpoint::cannot_rerun(m, device) {
        bail!("cannot spot-check here: {why}");
    }
    Ok(total)
}

/// The finding in one line: the summary, and the first bad segment's step range.
pub fn describe(s: &SpotCheck) -> String {
    let mut line = s.summary();
    let segments: Vec<String> = s.checked.iter().map(|c| c.segment.to_string()).collect();
    line.push_str(&format!(" (segments {})", segments.join(",")));
    if let Some(bad) = s.checked.iter().find(|c| !c.ok()) {
        line.push_str(&format!(
            "; first bad: segment {}, steps {}..{}: {}",
            bad.segment,
            bad.from,
            bad.to,
            bad.problem.clone().unwrap_or_else(|| format!(
                "reached {}, committed {}",
                bad.reached.as_deref().unwrap_or("nothing"),
                bad.expected
            ))
        ));
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;
    use tensorgrid_train::commit::SegmentCheck;

    fn commitments(segments: usize) -> Commitments {
        Commitments {
            every: 10,
            state_hashes: vec!["00".repeat(32); segments + 1],
            last: Default::default(),
        }
    }

    #[test]
    fn chooses_distinct_segments_that_exist() {
        let c = commitments(5);
        let n = |n: u64| SpotCheckArgs {
            spot_check: Some(n),
            segments: Vec::new(),
        };
        let three = n(3).choose(&c).unwrap();
        assert_eq!(three.len(), 3);
        assert!(three.windows(2).all(|w| w[0] < w[1]) && three[2] < 5);
        assert_eq!(n(9).choose(&c).unwrap(), [0, 1, 2, 3, 4]);
        let named = SpotCheckArgs {
            spot_check: None,
            segments: vec![4, 1, 4],
        };
        assert_eq!(named.choose(&c).unwrap(), [1, 4]);
        let missing = SpotCheckArgs {
            spot_check: None,
            segments: vec![5],
        };
        let e = missing.choose(&c).unwrap_err().to_string();
        assert!(
            e.contains("5 does not exist") && e.contains("5 segments"),
            "{e}"
        );
        assert!(n(1).choose(&commitments(0)).is_err());
        assert!(n(1).wanted() && named.wanted());
    }

    #[test]
    fn a_finding_names_the_first_bad_step_range() {
        let seg = |segment: usize, reached: &str| SegmentCheck {
            segment,
            from: segment as u64 * 10,
            to: segment as u64 * 10 + 10,
            expected: "aa".into(),
            reached: Some(reached.into()),
            problem: None,
            rerun_failed: false,
        };
        let spot = SpotCheck {
            of: 40,
            checked: vec![seg(1, "aa"), seg(3, "bb"), seg(7, "cc")],
            steps: 30,
            share_of_job: 0.075,
            mismatches: 2,
            wall_time_s: 0.1,
        };
        assert_eq!(
            describe(&spot),
            "3 of 40 segments, 7.5 % of the job, 2 mismatches (segments 1,3,7); first bad: \
             segment 3, steps 30..40: reached bb, committed aa"
        );
    }
}
