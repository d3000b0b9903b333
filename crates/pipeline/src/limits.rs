//! Bounds of the pipeline's numeric settings. Validation checks every number against them, so
//! an absurd value (`time_budget_s = 1e20`, `rows = 10000000000000`) is refused with its key and
//! the allowed range instead of panicking or exhausting memory once the run has started.
//!
//! Model hyper-parameters are bounded by each model's own valid ranges (`promoml plugins`).

use std::time::Duration;

/// Longest time budget (`search.time_budget_s`, `report.importance_budget_s`): 30 days.
pub const MAX_SECONDS: f64 = 2_592_000.0;
/// Most rows of a synthetic source (`data.rows`).
pub const MAX_SYNTHETIC_ROWS: usize = promoml_core::synthetic::MAX_ROWS;
/// Most treatment arms of a synthetic source (`data.arms`).
pub const MAX_SYNTHETIC_ARMS: usize = promoml_core::synthetic::MAX_ARMS;
/// Largest divisor of a modulo split (`data.split.modulo`).
pub const MAX_MODULO: usize = 1_000_000;
/// Most trials per model (`search.trials`, `models[i].trials`, `search.startup_trials`,
/// `search.pruner_startup_trials`).
pub const MAX_TRIALS: usize = 1_000_000;
/// Most cross-validation folds (`search.cv_folds`, `search.pruner_warmup_folds`).
pub const MAX_FOLDS: usize = 100;
/// Most trials run together (`search.parallel_trials`).
pub const MAX_PARALLEL_TRIALS: usize = 256;
/// Most shuffles per feature of the permutation importance (`report.importance_repeats`).
pub const MAX_IMPORTANCE_REPEATS: usize = 1_000;
/// Most members or refitted models of an ensemble (`ensemble.max_members`,
/// `ensemble.layer2_models`, `uplift.ensemble`).
pub const MAX_MEMBERS: usize = 1_000;
/// Most selection rounds of a greedy ensemble (`ensemble.size`).
pub const MAX_GREEDY_ROUNDS: usize = 10_000;
/// Largest L2 penalty of the stacking meta-learner (`ensemble.l2`).
pub const MAX_L2: f64 = 1e6;
/// Most bootstrap resamples of an uplift report (`uplift.bootstrap`).
pub const MAX_BOOTSTRAP: usize = 100_000;
/// Most points per uplift curve (`uplift.curve_points`).
pub const MAX_CURVE_POINTS: usize = 100_000;
/// Largest amount of money in a policy (`policy.value_per_outcome`, `policy.cost`,
/// `policy.budget.max_total_cost`), in absolute value.
pub const MAX_AMOUNT: f64 = 1e15;
/// Longest sequence of an event log (`data.events.steps`, and the bins a `start` implies).
pub const MAX_STEPS: usize = 10_000;
/// Most period summaries of an event log (`data.events.periods`).
pub const MAX_PERIODS: usize = 1_000;
/// Longest span in days of an event-log setting (`bin_days`, `period_days`, each of
/// `recent_days`): 100 years.
pub const MAX_DAYS: u32 = 36_525;
/// Most values the behaviour sequences of an event log may hold (entities × steps × channels):
/// 2 GB of `f32`. Checked when the sequences are built, as the entity count is known only then.
pub const MAX_SEQUENCE_VALUES: usize = 500_000_000;
/// Most outer folds of `[evaluation] outer_folds` (each runs the whole pipeline).
pub const MAX_OUTER_FOLDS: usize = 20;
/// Most recent-activity windows of an event log (entries of `data.events.recent_days`).
pub const MAX_WINDOWS: usize = 100;

/// A whole number in `min..=max`; otherwise the message names the value and the range.
pub fn count(v: usize, min: usize, max: usize) -> Result<usize, String> {
    if (min..=max).contains(&v) { Ok(v) } else { Err(format!("{v} is out of range: allowed {min} to {max}")) }
}

/// A real number in `[low, high]` (finite); otherwise the message names the value and the range.
pub fn real(v: f64, low: f64, high: f64) -> Result<f64, String> {
    if v >= low && v <= high { Ok(v) } else { Err(format!("{v} is out of range: allowed {low} to {high}")) }
}

/// A duration of more than 0 and at most [`MAX_SECONDS`] seconds.
pub fn seconds(v: f64) -> Result<Duration, String> {
    let refuse = || format!("{v} is out of range: allowed more than 0 and at most {MAX_SECONDS} seconds (30 days)");
    if !(v > 0.0 && v <= MAX_SECONDS) {
        return Err(refuse());
    }
    Duration::try_from_secs_f64(v).map_err(|_| refuse())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_are_inclusive_and_named() {
        assert_eq!(count(5, 1, 5), Ok(5));
        assert_eq!(count(0, 1, 5).unwrap_err(), "0 is out of range: allowed 1 to 5");
        assert_eq!(real(1e6, 0.0, MAX_L2), Ok(1e6));
        assert!(real(f64::NAN, 0.0, 1.0).unwrap_err().contains("allowed 0 to 1"));
        assert_eq!(seconds(MAX_SECONDS), Ok(Duration::from_secs(2_592_000)));
        for bad in [0.0, -1.0, 1e20, 1.8e19, f64::INFINITY, f64::NAN] {
            let e = seconds(bad).unwrap_err();
            assert!(e.contains("at most 2592000 seconds"), "{e}");
        }
    }
}
