//! Time-budget arithmetic shared by the tasks and the search loop.

use std::time::{Duration, Instant};

/// The moment `secs` seconds (at most 10⁶; a negative margin counts as none) before
/// `deadline`, without the panics of `Instant - Duration`: a moment the clock cannot represent
/// is taken as now, already past.
pub(crate) fn before(deadline: Instant, secs: f64) -> Instant {
    let margin = Duration::try_from_secs_f64(secs.min(1e6)).unwrap_or_default();
    deadline.checked_sub(margin).unwrap_or_else(Instant::now)
}

/// Time kept at the end of a run with a time budget for what follows its last stage (writing
/// the reports, saving the model artifact and checking that it reloads): 1 s plus 2 % of the
/// budget.
pub(crate) fn writing_reserve(budget: std::time::Duration) -> std::time::Duration {
    std::time::Duration::from_secs_f64(1.0 + 0.02 * budget.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deadline_margins_never_panic() {
        let d = Instant::now();
        assert_eq!(before(d, -5.0), d);
        assert_eq!(before(d, 0.0), d);
        for huge in [1e20, f64::INFINITY, f64::NAN] {
            let t = before(d, huge);
            assert!(t <= d && d.duration_since(t) <= Duration::from_secs(1_000_000), "{huge}");
        }
    }
}
