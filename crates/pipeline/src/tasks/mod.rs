//! The three kinds of task, each in its module: what it loads and prepares, the objective its
//! trials score in the one search loop ([`crate::search`], or [`crate::search_shared`] for a
//! study shared by processes), and how it finishes (refit, ensemble, report section, artifact).
//!
//! * [`supervised`]: binary, multiclass and regression.
//! * [`uplift`]: the effect of each treatment arm, and the policy.
//! * [`anomaly`]: detectors fitted without labels.
//!
//! Here: how a task's study is stored ([`search_study`]): in memory, in `OUT/study.db` with the
//! trial log as its export (and `--resume`), or shared through a database with workers.

pub mod anomaly;
pub mod supervised;
pub mod uplift;

use crate::observe::Observer;
use crate::options::{RunOptions, SharedOptions, WorkSummary};
use crate::plan::Pipeline;
use crate::search::{self, Objective, Outcome};
use crate::study::open_store;
use crate::study::shared::{Budget, SharedStore, join_study, unix_now};
use crate::study::sqlite::SqliteStorage;
use crate::study::{JsonlStorage, MemoryStorage, StudyHeader, StudyStorage, TeeStorage};
use promoml_core::{Error, Result};
use promoml_report::Report;
use std::time::Instant;

/// Whether a run led its study (and reported) or worked for another's.
pub(crate) enum Ran {
    Report(Box<Report>),
    Worked(WorkSummary),
}

/// What a task's search gave: the whole study's outcome (a run, the leader of a shared study),
/// or what a worker did.
pub(crate) enum Searched<T> {
    Led(Outcome<T>),
    Worked(WorkSummary),
}

/// Search `obj` in the study `opts` asks for: shared through `opts.shared` (as the leader, or a
/// `worker`), else local (see [`local_storage`]). `(deadline, reserve_s, layer2_models)`: the
/// run's deadline, seconds kept free after the search, and second-layer stacking models, as in
/// [`search::Context`]. The leader of a shared study exports it to the local trial log and
/// marks it finished.
pub(crate) fn search_study<O: Objective>(
    p: &Pipeline,
    obj: &O,
    opts: &RunOptions,
    header: &StudyHeader,
    worker: bool,
    (deadline, reserve_s, layer2_models): (Option<Instant>, f64, usize),
    obs: &dyn Observer,
) -> Result<Searched<O::Output>> {
    let Some(so) = &opts.shared else {
        let mut storage = local_storage(opts, header)?;
        let ctx = search::Context { deadline, storage: storage.as_mut(), observer: obs, reserve_s, layer2_models };
        return Ok(Searched::Led(search::search(p, obj, ctx)?));
    };
    let budget = Budget {
        trials: (0..obj.candidates()).map(|c| (obj.name(c).to_string(), obj.trials(c))).collect(),
        deadline_unix: deadline.map(|d| unix_now() + d.saturating_duration_since(Instant::now()).as_secs_f64()),
        reserve_s,
        layer2_models,
        folds: obj.folds(),
    };
    let (store, study) = open_shared(p, so, header, &budget, opts.resume, worker)?;
    let sh = crate::search_shared::SharedRun {
        url: so.url.clone(),
        store,
        study,
        worker: crate::search_shared::worker_name(),
        leader: !worker,
        heartbeat: so.heartbeat,
        grace: so.grace,
    };
    let outcome = crate::search_shared::search_shared(p, obj, obs, sh)?;
    if worker {
        return Ok(Searched::Worked(WorkSummary { study, trials: outcome.trials }));
    }
    // The study is complete: export it beside the report, and close it.
    let mut store = open_store(&so.url)?;
    let mut export = local_storage(&RunOptions { resume: false, ..opts.clone() }, header)?;
    let mut stored = store.trials(study)?;
    stored.sort_by_key(|t| ((0..obj.candidates()).position(|c| obj.name(c) == t.model), t.number));
    for r in stored.into_iter().filter_map(|t| t.record) {
        export.append(&r)?;
    }
    store.set_study_state(study, "finished")?;
    Ok(Searched::Led(outcome))
}

/// The local study of a run: `OUT/study.db` (resumed from when asked) with the trial log as its
/// export, a legacy trial log alone, or memory.
fn local_storage(opts: &RunOptions, header: &StudyHeader) -> Result<Box<dyn StudyStorage>> {
    Ok(match (&opts.study_db, &opts.trial_log, opts.resume) {
        (Some(db), log, resume) => {
            let primary = if resume && db.exists() {
                SqliteStorage::resume(db, header)?
            } else if resume && log.as_ref().is_some_and(|l| l.exists()) {
                // A log written before study databases: continue it alone.
                let log = log.as_ref().expect("checked");
                return Ok(Box::new(JsonlStorage::resume(log, header)?));
            } else if resume {
                return Err(Error::data(format!("--resume: no study database at {}", db.display())));
            } else {
                SqliteStorage::create(db, header)?
            };
            match log {
                Some(log) => {
                    Box::new(TeeStorage::new(Box::new(primary), Box::new(JsonlStorage::create(log, header)?))?)
                }
                None => Box::new(primary),
            }
        }
        (None, Some(path), true) if path.exists() => Box::new(JsonlStorage::resume(path, header)?),
        (None, Some(path), _) => Box::new(JsonlStorage::create(path, header)?),
        (None, None, true) => return Err(Error::data("--resume needs a trial log to continue from")),
        (None, None, false) => Box::new(MemoryStorage::default()),
    })
}

/// Open the shared study of a leader (a new one, or with `--resume` the newest running or
/// finished study with the same fingerprint) or a worker (the running one it must match).
fn open_shared(
    p: &Pipeline,
    so: &SharedOptions,
    header: &StudyHeader,
    budget: &Budget,
    resume: bool,
    worker: bool,
) -> Result<(Box<dyn SharedStore>, i64)> {
    let mut store = open_store(&so.url)?;
    let study = if worker {
        let s = join_study(store.as_mut(), header, so.wait)?;
        tracing::info!("joined study {} of pipeline `{}` ({} trial(s) so far)", s.id, s.pipeline, s.n_trials);
        s.id
    } else if resume {
        let fp = crate::study::shared::fingerprint(header);
        let found = store.studies()?.into_iter().find(|s| s.fingerprint == fp).ok_or_else(|| {
            Error::data(format!(
                "--resume: the storage {} holds no study of pipeline `{}` with this data and these settings",
                crate::study::shared::redact(&so.url),
                p.name
            ))
        })?;
        store.reopen_study(found.id, budget)?;
        found.id
    } else {
        store.create_study(header, budget)?
    };
    Ok((store, study))
}
