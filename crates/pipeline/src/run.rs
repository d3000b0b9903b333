//! Running a validated pipeline: the entry points [`run`], [`run_with`] and [`work`] hand the
//! pipeline to its task in [`crate::tasks`].

use crate::observe::Observer;
pub use crate::options::{RunOptions, SharedOptions, WorkSummary};
use crate::plan::Pipeline;
use crate::tasks::{self, Ran};
use promoml_core::{Result, Task};
use promoml_report::Report;

/// Run a pipeline end to end and return its report.
pub fn run(p: &Pipeline, obs: &dyn Observer) -> Result<Report> {
    run_with(p, obs, &RunOptions::default())
}

/// Run a pipeline with [`RunOptions`].
pub fn run_with(p: &Pipeline, obs: &dyn Observer, opts: &RunOptions) -> Result<Report> {
    match dispatch(p, obs, opts, false)? {
        Ran::Report(r) => Ok(*r),
        Ran::Worked(_) => unreachable!("a leader reports"),
    }
}

/// Join the running study of `p` in the database `shared.url` as a worker: prepare the same
/// folds, evaluate trials until the study's budget is spent, and return what this process did.
pub fn work(p: &Pipeline, obs: &dyn Observer, shared: &SharedOptions) -> Result<WorkSummary> {
    let opts = RunOptions { shared: Some(shared.clone()), ..RunOptions::default() };
    match dispatch(p, obs, &opts, true)? {
        Ran::Worked(w) => Ok(w),
        Ran::Report(_) => unreachable!("a worker does not report"),
    }
}

/// The task of `p` runs it.
fn dispatch(p: &Pipeline, obs: &dyn Observer, opts: &RunOptions, worker: bool) -> Result<Ran> {
    match p.task {
        Task::Uplift => tasks::uplift::run(p, obs, opts, worker),
        Task::Anomaly => tasks::anomaly::run(p, obs, opts, worker),
        _ => tasks::supervised::run(p, obs, opts, worker),
    }
}
