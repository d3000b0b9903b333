//! Progress of a running pipeline, as the CLI shows it.

use promoml_report::Trial;

/// Receives progress while a pipeline runs (the CLI draws bars or logs from it).
pub trait Observer: Sync {
    /// A stage begins.
    fn stage(&self, _message: &str) {}
    /// The search is about to run this many trials in all (an upper bound under a time budget).
    fn search_started(&self, _total_trials: usize) {}
    /// A trial finished.
    fn trial_done(&self, _trial: &Trial) {}
}

/// An observer that ignores everything.
pub struct Silent;
impl Observer for Silent {}
