//! The search loop of a study shared by several processes ([`crate::study::shared`]): the `run`
//! leader and every `promoml worker` run this loop on the same prepared folds.
//!
//! Each process runs `search.parallel_trials` claimers. Each turn of a claimer claims one trial
//! in a transaction: a waiting trial (its worker died) first, else a
//! new trial of the candidate with the fewest trials so far (the single-process loop's rounds),
//! while the study's budget allows: trials per candidate, and the leader's deadline less the
//! time its refits need. The new trial's parameters come from a sampler that sees every trial
//! of the study, whoever ran it: finished trials with their scores, running ones with the worst
//! score so far (constant liar, as Optuna's TPE with `constant_liar`). The trial's seed is derived
//! from its number, so a takeover re-runs it exactly. The median pruner compares against every
//! finished trial of the study.
//!
//! A worker stops when nothing is left to claim. The leader also waits for the trials others
//! still run (taking over those whose worker stopped beating), then builds the outcome from the
//! study: each candidate's best trial, with its out-of-fold predictions when the leader ran it
//! itself (otherwise [`crate::search::recompute`] refits its folds if the task needs them).
//!
//! Like [`crate::search::search`], it serves any task through its [`Objective`].

use crate::cv::derive_seed;
use crate::plan::Pipeline;
use crate::search::{Evaluated, Found, Objective, Outcome, Snapshot, as_loss, better, evaluate, make_record, mean_sd};
use crate::study::open_store;
use crate::study::shared::{ClaimView, Decision, SharedStore, SharedTrial, TrialState};
use promoml_core::{Error, ParamValue, Params, Result, Rng};
use promoml_report::{Failure, Trial};
use rand::SeedableRng;
use std::collections::{BTreeMap, HashMap};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// A process's place in a shared study.
pub struct SharedRun {
    /// The store's URL (the heartbeat thread opens its own connection).
    pub url: String,
    /// The open store.
    pub store: Box<dyn SharedStore>,
    /// The study's id.
    pub study: i64,
    /// This process's name in the store (`host:pid:nonce`).
    pub worker: String,
    /// The leader waits for every trial and builds the outcome; a worker stops when nothing is
    /// left to claim.
    pub leader: bool,
    /// How often running trials beat.
    pub heartbeat: Duration,
    /// A running trial whose last beat is older than this is handed to another worker.
    pub grace: Duration,
}

/// A name for this process in a shared study: host, pid and a nonce.
pub fn worker_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into());
    let nonce =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
    format!("{host}:{}:{nonce:08x}", std::process::id())
}

fn to_params(json: &BTreeMap<String, serde_json::Value>) -> Result<Params> {
    json.iter()
        .map(|(k, v)| {
            serde_json::from_value::<ParamValue>(v.clone())
                .map(|v| (k.clone(), v))
                .map_err(|e| Error::data(format!("study storage: parameter `{k}` = {v}: {e}")))
        })
        .collect()
}

/// What a claim decided, with what the evaluation needs from the claim's view.
struct Claimed {
    trial: SharedTrial,
    snapshot: Snapshot,
    /// Seconds left for fits (the deadline less the refits' reserve), if there is a deadline.
    fit_left_s: Option<f64>,
}

/// The claim decision: see the module docs.
/// What the evaluation of a claimed trial needs: the pruner's snapshot and the seconds left for fits.
type ClaimExtra = (Snapshot, Option<f64>);

fn decide<O: Objective>(p: &Pipeline, obj: &O, view: &ClaimView<'_>) -> Result<(Decision, Option<ClaimExtra>)> {
    let higher = obj.ranking().1;
    let as_loss = |v: f64| as_loss(v, higher);
    let better = |a: f64, b: f64| better(a, b, higher);
    let nc = obj.candidates();
    let ci_of = |m: &str| (0..nc).position(|c| obj.name(c) == m);
    let mut per: Vec<Vec<&SharedTrial>> = vec![Vec::new(); nc];
    for t in view.trials {
        if let Some(ci) = ci_of(&t.model) {
            per[ci].push(t);
        }
    }
    for v in &mut per {
        v.sort_by_key(|t| t.number);
    }
    let k = view.budget.folds.max(2) as f64;
    // Seconds to keep free for the leader's refits, as the single-process loop reckons them.
    let mut best_fold_s = Vec::new();
    for v in &per {
        let mut best: Option<(f64, f64)> = None;
        for t in v {
            if let Some(r) = t.record.as_ref().filter(|r| TrialState::of(r) == TrialState::Complete)
                && let Some(s) = r.trial.score
                && best.is_none_or(|(b, _)| better(s, b))
            {
                best = Some((s, r.trial.seconds / r.trial.fold_scores.len().max(1) as f64));
            }
        }
        if let Some((_, secs)) = best {
            best_fold_s.push(secs);
        }
    }
    let slowest = best_fold_s.iter().copied().fold(0.0, f64::max);
    let reserve = best_fold_s.iter().map(|s| s * k / (k - 1.0) * 1.2).sum::<f64>()
        + view.budget.layer2_models.min(best_fold_s.len()) as f64 * slowest * 1.2 * ((k / 2.0).ceil() + 1.5)
        + view.budget.reserve_s;
    let fit_left = view.budget.deadline_unix.map(|d| d - view.now - 1.2 * reserve);
    let snapshot_of = |ci: usize| {
        let mut s = Snapshot::default();
        for t in &per[ci] {
            if let Some(r) = t.record.as_ref().filter(|r| TrialState::of(r) == TrialState::Complete) {
                s.add(&r.trial.fold_scores.iter().map(|&v| as_loss(v)).collect::<Vec<_>>());
            }
        }
        s
    };
    // A trial whose worker died first: same parameters, same seed.
    if let Some((ci, t)) = per
        .iter()
        .enumerate()
        .flat_map(|(ci, v)| v.iter().map(move |t| (ci, *t)))
        .find(|(_, t)| t.state == TrialState::Waiting)
    {
        return Ok((
            Decision::TakeOver { model: t.model.clone(), number: t.number },
            Some((snapshot_of(ci), fit_left)),
        ));
    }
    if fit_left.is_some_and(|s| s <= 0.0) {
        return Ok((Decision::Nothing, None));
    }
    let mut order: Vec<usize> = (0..nc).collect();
    order.sort_by_key(|&ci| (per[ci].len(), ci));
    for ci in order {
        let name = obj.name(ci);
        let cap = view.budget.trials.get(name).copied().unwrap_or(obj.trials(ci));
        let number = per[ci].len();
        if number >= cap {
            continue;
        }
        if let Some(d) = view.budget.deadline_unix {
            let last = per[ci].iter().rev().find_map(|t| t.record.as_ref().map(|r| r.trial.seconds)).unwrap_or(0.0);
            if view.now + 1.3 * last + 1.2 * reserve > d {
                continue;
            }
        }
        let params = if number == 0 {
            obj.defaults(ci)
        } else {
            let mut opt = p.search.optimizer.build(p.search.startup_trials);
            let losses: Vec<f64> = per[ci]
                .iter()
                .filter_map(|t| t.record.as_ref().filter(|r| r.trial.error.is_none()).and_then(|r| r.trial.score))
                .map(as_loss)
                .collect();
            let liar = losses.iter().copied().fold(None, |a: Option<f64>, l| Some(a.map_or(l, |a| a.max(l))));
            for t in &per[ci] {
                let params = to_params(&t.params)?;
                match (&t.record, t.state) {
                    (Some(r), _) if r.trial.error.is_none() => opt.tell(&params, r.trial.score.map(as_loss)),
                    (Some(_), _) => opt.tell(&params, None),
                    (None, _) => {
                        if let Some(l) = liar {
                            opt.tell(&params, Some(l));
                        }
                    }
                }
            }
            let mut rng = Rng::seed_from_u64(derive_seed(p.seed, &[2, ci as u64, number as u64]));
            opt.ask(obj.space(ci), &mut rng)
        };
        return Ok((
            Decision::New { model: name.to_string(), number, params: crate::search::params_json(&params) },
            Some((snapshot_of(ci), fit_left)),
        ));
    }
    Ok((Decision::Nothing, None))
}

fn claim<O: Objective>(
    p: &Pipeline,
    obj: &O,
    store: &mut dyn SharedStore,
    study: i64,
    me: &str,
    grace: Duration,
) -> Result<Option<Claimed>> {
    let mut extra = None;
    let trial = store.claim(study, me, grace.as_secs_f64(), &mut |view| {
        let (d, e) = decide(p, obj, view)?;
        extra = e;
        Ok(d)
    })?;
    Ok(trial.map(|trial| {
        let (snapshot, fit_left_s) = extra.unwrap_or_default();
        Claimed { trial, snapshot, fit_left_s }
    }))
}

/// Beats for this process's running trials until dropped.
struct Heartbeat {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Heartbeat {
    fn start(url: &str, study: i64, worker: &str, every: Duration) -> Result<Heartbeat> {
        let mut store = open_store(url)?;
        let (tx, rx) = mpsc::channel::<()>();
        let worker = worker.to_string();
        let thread = std::thread::spawn(move || {
            while let Err(mpsc::RecvTimeoutError::Timeout) = rx.recv_timeout(every) {
                if let Err(e) = store.heartbeat(study, &worker) {
                    tracing::warn!("heartbeat: {e}");
                }
            }
        });
        Ok(Heartbeat { stop: Some(tx), thread: Some(thread) })
    }
}

impl Drop for Heartbeat {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// What the claimers of one process found.
struct Local<T> {
    /// Fold outputs and mean fold seconds of the trials completed here.
    own: HashMap<(usize, usize), (Vec<T>, f64)>,
    /// The trials finished here.
    mine: Vec<Trial>,
}

impl<T> Default for Local<T> {
    fn default() -> Self {
        Local { own: HashMap::new(), mine: Vec::new() }
    }
}

/// One claimer: claim, evaluate, store, until nothing is left to claim (or an interrupt).
#[allow(clippy::too_many_arguments)]
fn claimer<O: Objective>(
    p: &Pipeline,
    obj: &O,
    observer: &dyn crate::observe::Observer,
    store: &mut dyn SharedStore,
    (study, grace): (i64, Duration),
    me: &str,
    found: &std::sync::Mutex<Local<O::Output>>,
) -> Result<()> {
    let key = obj.ranking().0;
    loop {
        if promoml_core::interrupt::requested() {
            return Err(Error::Interrupted("during the shared search".into()));
        }
        let Some(c) = claim(p, obj, store, study, me, grace)? else { return Ok(()) };
        let ci = (0..obj.candidates()).position(|x| obj.name(x) == c.trial.model).expect("claimed a known candidate");
        let name = obj.name(ci);
        let params = to_params(&c.trial.params)?;
        let fit_deadline = c.fit_left_s.map(|s| {
            let now = Instant::now();
            now.checked_add(Duration::try_from_secs_f64(s.clamp(0.0, 1e6)).unwrap_or_default()).unwrap_or(now)
        });
        if c.trial.attempts > 1 {
            tracing::info!("taking over trial {} of `{name}` (attempt {})", c.trial.number, c.trial.attempts);
        }
        let ev: Evaluated<O::Output> =
            evaluate(obj, &p.search.pruner, ci, c.trial.number, &params, &c.snapshot, fit_deadline);
        if matches!(ev.error, Some(Error::Interrupted(_))) {
            return Err(Error::Interrupted("during the shared search".into()));
        }
        let record = make_record(name, c.trial.number, &params, &ev, key);
        if !store.finish(study, me, &record)? {
            tracing::warn!(
                "trial {} of `{}` was handed to another worker while this one ran it (missed heartbeats); its result here is dropped",
                c.trial.number,
                name
            );
            continue;
        }
        let oof = ev.into_outputs();
        observer.trial_done(&record.trial);
        let mut f = found.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(o) = oof {
            f.own.insert((ci, c.trial.number), o);
        }
        f.mine.push(record.trial);
    }
}

/// Run the shared search loop (see the module docs): `search.parallel_trials` claimers in this
/// process (each with its own connection, named `worker/N`), as the single-process loop runs
/// that many trials at once. The leader's outcome covers every trial of the study; a worker's
/// lists the trials it finished itself.
pub fn search_shared<O: Objective>(
    p: &Pipeline,
    obj: &O,
    observer: &dyn crate::observe::Observer,
    mut sh: SharedRun,
) -> Result<Outcome<O::Output>> {
    let _beat = Heartbeat::start(&sh.url, sh.study, &sh.worker, sh.heartbeat)?;
    observer.search_started((0..obj.candidates()).map(|c| obj.trials(c)).sum());
    let found = std::sync::Mutex::new(Local::default());
    let width = p.search.parallel_trials.max(1);
    let results: Vec<Result<()>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..width)
            .map(|i| {
                let (url, worker, found) = (&sh.url, &sh.worker, &found);
                let at = (sh.study, sh.grace);
                s.spawn(move || {
                    let mut store = open_store(url)?;
                    let me = format!("{worker}/{i}");
                    claimer(p, obj, observer, store.as_mut(), at, &me, found)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|_| Err(Error::data("a claimer thread panicked"))))
            .collect()
    });
    let interrupted = results.iter().any(|r| matches!(r, Err(Error::Interrupted(_))));
    if interrupted || promoml_core::interrupt::requested() {
        sh.store.release(sh.study, &sh.worker)?;
        let done = found.lock().map(|f| f.mine.len()).unwrap_or(0);
        return Err(Error::Interrupted(format!(
            "during the shared search: {done} trial(s) finished here and stored; the trials in flight were handed back to the study"
        )));
    }
    if let Some(e) = results.into_iter().find_map(Result::err) {
        sh.store.release(sh.study, &sh.worker)?;
        return Err(e);
    }
    let Local { mut own, mut mine } = found.into_inner().unwrap_or_else(std::sync::PoisonError::into_inner);
    if !sh.leader {
        return Ok(Outcome { bests: Vec::new(), failures: Vec::new(), trials: mine });
    }
    // The leader waits for trials other workers still run, taking over those whose worker
    // stopped beating.
    let found = std::sync::Mutex::new(Local::default());
    let me = format!("{}/0", sh.worker);
    let mut store = open_store(&sh.url)?;
    loop {
        if !sh.store.trials(sh.study)?.iter().any(|t| !t.state.finished()) {
            break;
        }
        claimer(p, obj, observer, store.as_mut(), (sh.study, sh.grace), &me, &found)?;
        std::thread::sleep(sh.heartbeat.min(Duration::from_millis(500)));
    }
    let late = found.into_inner().unwrap_or_else(std::sync::PoisonError::into_inner);
    own.extend(late.own);
    mine.extend(late.mine);
    let stored = sh.store.trials(sh.study)?;
    outcome_of(obj, &stored, own)
}

/// The leader's outcome: every finished trial of the study, each candidate's best.
#[allow(clippy::type_complexity)]
fn outcome_of<O: Objective>(
    obj: &O,
    stored: &[SharedTrial],
    mut own: HashMap<(usize, usize), (Vec<O::Output>, f64)>,
) -> Result<Outcome<O::Output>> {
    let higher = obj.ranking().1;
    let better = |a: f64, b: f64| better(a, b, higher);
    let mut trials = Vec::new();
    let mut bests = Vec::new();
    let mut failures = Vec::new();
    for ci in 0..obj.candidates() {
        let name = obj.name(ci);
        let mut recs: Vec<_> = stored.iter().filter(|t| t.model == name).filter_map(|t| t.record.clone()).collect();
        recs.sort_by_key(|r| r.trial.number);
        let mut best: Option<Found<O::Output>> = None;
        let mut last_error = None;
        for r in &recs {
            let t = &r.trial;
            match (t.score, t.pruned, &t.error) {
                (Some(v), false, None) if best.as_ref().is_none_or(|b| better(v, b.score)) => {
                    let (outputs, fold_seconds) = match own.remove(&(ci, t.number)) {
                        Some((outputs, secs)) => (Some(outputs), secs),
                        None => (None, t.seconds / obj.folds().max(1) as f64),
                    };
                    best = Some(Found {
                        number: t.number,
                        params: to_params(&t.params)?,
                        cv: r.cv.clone(),
                        cv_std: mean_sd(&t.fold_scores).1,
                        fold_scores: t.fold_scores.clone(),
                        score: v,
                        fold_seconds,
                        outputs,
                    });
                }
                (_, _, Some(e)) => last_error = Some(e.clone()),
                _ => {}
            }
            trials.push(t.clone());
        }
        match best {
            Some(b) => bests.push((ci, b)),
            None => failures.push(Failure {
                model: name.to_string(),
                error: last_error.unwrap_or_else(|| format!("no trial of `{name}` finished within the time budget")),
            }),
        }
    }
    Ok(Outcome { bests, failures, trials })
}
