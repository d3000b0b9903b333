//! Running a validated pipeline: the entry points [`run`], [`run_with`] and [`work`] hand the
//! pipeline to its task in [`crate::tasks`].

use crate::observe::Observer;
pub use crate::options::{RunOptions, SharedOptions, WorkSummary};
use crate::plan::Pipeline;
use crate::tasks::supervised::{self, Ran};
use promoml_core::{Error, Result};
use promoml_report::Report;

/// Run a pipeline end to end and return its report.
pub fn run(p: &Pipeline, obs: &dyn Observer) -> Result<Report> {
    run_with(p, obs, &RunOptions::default())
}

/// Run a pipeline with [`RunOptions`].
pub fn run_with(p: &Pipeline, obs: &dyn Observer, opts: &RunOptions) -> Result<Report> {
    if opts.shared.is_some() && matches!(p.task, promoml_core::Task::Uplift | promoml_core::Task::Anomaly) {
        return Err(Error::data(format!(
            "--storage: {} pipelines cannot share a study yet (binary, multiclass and regression can)",
            p.task.name()
        )));
    }
    if p.task == promoml_core::Task::Uplift {
        return crate::tasks::uplift::run(p, obs, opts.artifact.as_ref());
    }
    if p.task == promoml_core::Task::Anomaly {
        return crate::tasks::anomaly::run(p, obs, opts.artifact.as_ref());
    }
    match supervised::run(p, obs, opts, false)? {
        Ran::Report(r) => Ok(*r),
        Ran::Worked(_) => unreachable!("a leader reports"),
    }
}

/// Join the running study of `p` in the database `shared.url` as a worker: prepare the same
/// folds, evaluate trials until the study's budget is spent, and return what this process did.
/// Binary, multiclass and regression pipelines can be shared today.
pub fn work(p: &Pipeline, obs: &dyn Observer, shared: &SharedOptions) -> Result<WorkSummary> {
    if matches!(p.task, promoml_core::Task::Uplift | promoml_core::Task::Anomaly) {
        return Err(Error::data(format!(
            "promoml worker: {} pipelines cannot share a study yet (binary, multiclass and regression can)",
            p.task.name()
        )));
    }
    let opts = RunOptions { shared: Some(shared.clone()), ..RunOptions::default() };
    match supervised::run(p, obs, &opts, true)? {
        Ran::Worked(w) => Ok(w),
        Ran::Report(_) => unreachable!("a worker does not report"),
    }
}
