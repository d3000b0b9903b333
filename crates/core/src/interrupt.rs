//! A process-wide "stop, please" flag, raised when the user interrupts a run (SIGINT or
//! SIGTERM, set by the CLI's signal handler). Long fits see it through
//! [`FitContext::check_deadline`](crate::FitContext::check_deadline) and the search loop stops
//! asking for trials, so that a run ends with its trial log complete and resumable.

use std::sync::atomic::{AtomicBool, Ordering};

static REQUESTED: AtomicBool = AtomicBool::new(false);

/// Ask every running fit and search to stop at its next check.
pub fn request() {
    REQUESTED.store(true, Ordering::SeqCst);
}

/// Whether a stop was asked for.
pub fn requested() -> bool {
    REQUESTED.load(Ordering::SeqCst)
}

/// Clear the flag (tests, or a long-lived process that starts a new run).
pub fn reset() {
    REQUESTED.store(false, Ordering::SeqCst);
}
