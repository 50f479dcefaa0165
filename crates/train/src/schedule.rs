//! The learning rate at each step (warmup, then constant, cosine or linear decay), as a
//! factor of the optimizer's `lr`. A pure function of (schedule, step, total) computed with
//! IEEE additions, multiplications and divisions only — no platform `cos` — so every machine
//! that re-runs a segment of a job (a verifier, a dispute) uses the same rate to the bit.

use std::f64::consts::FRAC_PI_2;

use crate::spec::{Decay, ScheduleSpec};

/// The factor of `lr` for the step that takes the run from `step` to `step + 1`, of `total`.
/// Exactly 1.0 without a schedule (so a run without one is bit-identical to before).
pub fn lr_factor(schedule: Option<&ScheduleSpec>, step: u64, total: u64) -> f64 {
    let Some(s) = schedule else {
        return 1.0;
    };
    if step < s.warmup_steps {
        return (step + 1) as f64 / s.warmup_steps as f64;
    }
    // Progress through the decay: 0 at its first step, 1 at the run's last.
    let span = total.saturating_sub(s.warmup_steps).saturating_sub(1);
    let progress = if span == 0 {
        0.0
    } else {
        ((step - s.warmup_steps) as f64 / span as f64).min(1.0)
    };
    let min = s.min_lr_ratio;
    match s.decay {
        Decay::Constant => 1.0,
        Decay::Linear => 1.0 - (1.0 - min) * progress,
        // ½(1 + cos πp) = cos²(πp/2).
        Decay::Cosine => {
            let c = cos_quarter(progress * FRAC_PI_2);
            min + (1.0 - min) * c * c
        }
    }
}

/// cos x for x in [0, π/2], by its Taylor series to 17 terms (the last term below 1e-30 there):
/// the same bits on every platform, unlike a libm's `cos`.
fn cos_quarter(x: f64) -> f64 {
    let x2 = x * x;
    let mut term = 1.0;
    let mut sum = 1.0;
    for k in 1..=17u32 {
        let (a, b) = (f64::from(2 * k - 1), f64::from(2 * k));
        term = -term * x2 / (a * b);
        sum += term;
    }
    sum
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sched(warmup: u64, decay: Decay, min: f64) -> ScheduleSpec {
        ScheduleSpec {
            warmup_steps: warmup,
            decay,
            min_lr_ratio: min,
        }
    }

    #[test]
    fn no_schedule_is_exactly_one() {
        for step in [0, 1, 99] {
            assert_eq!(lr_factor(None, step, 100).to_bits(), 1f64.to_bits());
        }
        let constant = sched(0, Decay::Constant, 0.0);
        assert_eq!(lr_factor(Some(&constant), 50, 100), 1.0);
    }

    #[test]
    fn warmup_rises_linearly_to_the_full_rate() {
        let s = sched(4, Decay::Constant, 0.0);
        let f: Vec<f64> = (0..6).map(|i| lr_factor(Some(&s), i, 10)).collect();
        assert_eq!(f, [0.25, 0.5, 0.75, 1.0, 1.0, 1.0]);
    }

    #[test]
    fn cosine_falls_from_the_full_rate_to_the_floor() {
        let s = sched(10, Decay::Cosine, 0.1);
        let total = 110;
        assert_eq!(lr_factor(Some(&s), 10, total), 1.0);
        assert!((lr_factor(Some(&s), 109, total) - 0.1).abs() < 1e-15);
        // Half-way: half-way between the two.
        let mid = lr_factor(Some(&s), 10 + 99 / 2, total);
        assert!(
            (mid - (0.1 + 0.9 * 0.5 * (1.0 + (std::f64::consts::PI * 49.0 / 99.0).cos()))).abs()
                < 1e-14
        );
        // Never rising after the warmup, never below the floor.
        let f: Vec<f64> = (10..total).map(|i| lr_factor(Some(&s), i, total)).collect();
        assert!(f.windows(2).all(|w| w[1] <= w[0]), "{f:?}");
        assert!(f.iter().all(|&x| (0.1 - 1e-15..=1.0).contains(&x)));
    }

    #[test]
    fn the_series_matches_cos_over_the_quarter_turn() {
        for i in 0..=1000 {
            let x = FRAC_PI_2 * i as f64 / 1000.0;
            assert!((cos_quarter(x) - x.cos()).abs() < 4e-16, "{x}");
        }
    }

    #[test]
    fn linear_decay_and_degenerate_runs() {
        let s = sched(0, Decay::Linear, 0.0);
        assert_eq!(lr_factor(Some(&s), 0, 5), 1.0);
        assert_eq!(lr_factor(Some(&s), 4, 5), 0.0);
        assert_eq!(lr_factor(Some(&s), 2, 5), 0.5);
        // A run no longer than its warmup, a run of one step: no division by zero.
        let w = sched(10, Decay::Cosine, 0.0);
        assert_eq!(lr_factor(Some(&w), 3, 4), 0.4);
        assert_eq!(lr_factor(Some(&s), 0, 1), 1.0);
        assert!(lr_factor(Some(&w), 10, 11).is_finite());
    }
}
