//! The one hyper-parameter search loop of every task: for every candidate, ask the optimiser for
//! parameters, score them with K-fold cross-validation, tell the optimiser, and keep the best
//! trial with what its folds left (out-of-fold predictions for ensembles, effects for uplift).
//! What a trial fits and scores is the task's [`Objective`] (see [`crate::tasks`]); the loop
//! owns the rest. [`crate::search_shared`] is the same loop for a study shared by processes.
//!
//! * **Rounds.** Candidates take turns, one batch of trials each, so that a time budget is shared
//!   among them instead of spent on the first. The first round scores every candidate's defaults,
//!   cheapest first; later rounds serve the best-scoring candidates first.
//! * **Parallel and deterministic.** A batch holds `parallel_trials` trials asked before any of
//!   them is told; the batch size is a setting, never the number of cores, so the same seed gives
//!   the same trials on any machine. Trials of a batch (and folds of a trial that cannot be
//!   pruned) run in parallel.
//! * **Pruning.** With the median pruner, a trial's folds run in order and the trial stops after
//!   a fold when its running mean is worse than the median running mean of the candidate's
//!   completed trials at the same fold (as Optuna's `MedianPruner`), judged against the trials
//!   completed before its batch began.
//! * **Budget.** No new batch starts when its expected time plus the expected refit of every
//!   candidate would pass the run's deadline.
//! * **Storage and resume.** Every finished trial goes to a [`StudyStorage`]; trials found there
//!   are replayed (their parameters must match what the optimiser asks) instead of refitted.

use crate::budget::before;
use crate::cv::derive_seed;
use crate::plan::{Pipeline, Pruner};
use crate::study::{StudyStorage, TrialRecord};
use promoml_core::{Error, FitContext, Metric, Params, Predictions, Result, Rng, SearchSpace};
use promoml_report::{Failure, Scores, Trial};
use rand::SeedableRng;
use rayon::prelude::*;
use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

/// A task's side of the search loop: its candidates, and how one fold of a trial is fitted and
/// scored. The loop asks, schedules, prunes, stores and keeps the best; the objective fits.
pub trait Objective: Sync {
    /// What a fitted fold leaves for after the search: its validation predictions (supervised),
    /// its effects (uplift), nothing (anomaly).
    type Output: Send + Sync + Clone;
    /// How many candidates there are.
    fn candidates(&self) -> usize;
    /// Candidate `ci`'s name: how its trials are reported and stored.
    fn name(&self, ci: usize) -> &str;
    /// How many trials candidate `ci` gets.
    fn trials(&self, ci: usize) -> usize;
    /// The space its trials after the first are asked from.
    fn space(&self, ci: usize) -> &SearchSpace;
    /// Its first trial's parameters: the space's defaults unless the task fixes them.
    fn defaults(&self, ci: usize) -> Params {
        self.space(ci).defaults()
    }
    /// Estimated cost of fitting one fold with `params`, in the units of
    /// [`promoml_core::Model::cost`] (the loop measures seconds per unit as trials finish).
    fn cost(&self, ci: usize, params: &Params) -> f64;
    /// How many cross-validation folds a trial fits.
    fn folds(&self) -> usize;
    /// The score that ranks trials (a key of the scores [`Objective::fit_fold`] returns) and
    /// whether higher is better.
    fn ranking(&self) -> (&str, bool);
    /// Fit candidate `ci` with `params` on fold `fold` of trial `number` (its seed follows from
    /// the three), and score it on the fold's held-out rows.
    fn fit_fold(
        &self,
        ci: usize,
        number: usize,
        fold: usize,
        params: &Params,
        deadline: Option<Instant>,
    ) -> Result<(Scores, Self::Output)>;
}

/// The best trial of a candidate.
#[derive(Debug, Clone)]
pub struct Found<T> {
    /// Trial number.
    pub number: usize,
    /// Its parameters.
    pub params: Params,
    /// Mean of every score over the folds.
    pub cv: Scores,
    /// Standard deviation of the ranking score over the folds.
    pub cv_std: f64,
    /// Ranking score per fold.
    pub fold_scores: Vec<f64>,
    /// Mean of the ranking score.
    pub score: f64,
    /// Mean seconds to fit and score one fold.
    pub fold_seconds: f64,
    /// What each fold left, in fold order; absent for a trial replayed from storage (or run by
    /// another process) until [`recompute`] refits its folds.
    pub outputs: Option<Vec<T>>,
}

/// What the search produced.
pub struct Outcome<T> {
    /// Candidate index and its best trial, for candidates with at least one complete trial.
    pub bests: Vec<(usize, Found<T>)>,
    /// Candidates without a complete trial.
    pub failures: Vec<Failure>,
    /// Every trial, in the order they finished.
    pub trials: Vec<Trial>,
}

/// Mutable search inputs that are not part of the pipeline.
pub struct Context<'a> {
    /// The run's deadline (start + time budget), if any.
    pub deadline: Option<Instant>,
    /// Where trials are stored (and replayed from on resume).
    pub storage: &'a mut dyn StudyStorage,
    /// Progress.
    pub observer: &'a dyn crate::observe::Observer,
    /// Extra seconds to keep free after the search (ensemble fitting), on top of refits.
    pub reserve_s: f64,
    /// Candidates refitted again in a second stacking layer (0 without one): each costs a CV
    /// and a refit more.
    pub layer2_models: usize,
}

/// Parameters as JSON values (how trials are reported and stored).
pub fn params_json(p: &Params) -> BTreeMap<String, serde_json::Value> {
    p.iter().map(|(k, v)| (k.clone(), serde_json::to_value(v).unwrap_or(serde_json::Value::Null))).collect()
}

/// Every metric of `metrics` on `pred`.
pub fn score_all(metrics: &[Metric], y: &[f64], pred: &Predictions) -> Result<Scores> {
    metrics.iter().map(|m| Ok((m.name().to_string(), m.score(y, pred)?))).collect()
}

/// The fit context of fold `f` (of `k`) of trial `number` of candidate `ci`, called `name` in
/// logs: its seed follows from the three, so a replayed or handed-over trial fits alike.
pub(crate) fn fold_context(
    p: &Pipeline,
    name: &str,
    (ci, number, f, k): (usize, usize, usize, usize),
    deadline: Option<Instant>,
) -> FitContext {
    FitContext {
        seed: derive_seed(p.seed, &[3, ci as u64, number as u64, f as u64]),
        deadline,
        label: format!("{name} trial {number} fold {}/{k}", f + 1),
        ..p.fit_context(p.seed)
    }
}

/// A score as a loss (lower is better).
pub(crate) fn as_loss(v: f64, higher_is_better: bool) -> f64 {
    if higher_is_better { -v } else { v }
}

/// Whether score `a` beats score `b`.
pub(crate) fn better(a: f64, b: f64, higher_is_better: bool) -> bool {
    if higher_is_better { a > b } else { a < b }
}

/// Running means of the ranking score (as a loss: lower is better) of completed trials, per
/// fold step: what the median pruner compares against.
#[derive(Debug, Clone, Default)]
pub(crate) struct Snapshot {
    steps: Vec<Vec<f64>>,
    completed: usize,
}

impl Snapshot {
    pub(crate) fn add(&mut self, losses: &[f64]) {
        let mut sum = 0.0;
        for (j, l) in losses.iter().enumerate() {
            sum += l;
            if self.steps.len() <= j {
                self.steps.push(Vec::new());
            }
            self.steps[j].push(sum / (j + 1) as f64);
        }
        self.completed += 1;
    }

    fn median(&self, step: usize) -> Option<f64> {
        let mut v = self.steps.get(step)?.clone();
        if v.is_empty() {
            return None;
        }
        v.sort_by(f64::total_cmp);
        let m = v.len() / 2;
        Some(if v.len() % 2 == 1 { v[m] } else { 0.5 * (v[m - 1] + v[m]) })
    }

    /// Whether a trial whose running loss after fold `step` is `loss` should stop.
    fn prune(&self, pruner: &Pruner, step: usize, loss: f64) -> bool {
        match pruner {
            Pruner::None => false,
            Pruner::Median { startup_trials, warmup_folds } => {
                self.completed >= *startup_trials
                    && step + 1 >= *warmup_folds
                    && self.median(step).is_some_and(|m| loss > m)
            }
        }
    }

    fn can_prune(&self, pruner: &Pruner) -> bool {
        match pruner {
            Pruner::None => false,
            Pruner::Median { startup_trials, .. } => self.completed >= *startup_trials,
        }
    }
}

/// One fitted and scored fold.
pub(crate) struct FoldResult<T> {
    pub(crate) scores: Scores,
    pub(crate) output: T,
    pub(crate) seconds: f64,
}

/// One evaluated trial: its folds (fewer than all when pruned), or the error that stopped it.
pub(crate) struct Evaluated<T> {
    pub(crate) folds: Vec<FoldResult<T>>,
    pub(crate) pruned: bool,
    pub(crate) error: Option<Error>,
    pub(crate) seconds: f64,
}

impl<T> Evaluated<T> {
    /// What a complete trial's folds left, and their mean seconds (`None` when pruned or failed).
    pub(crate) fn into_outputs(self) -> Option<(Vec<T>, f64)> {
        if self.error.is_some() || self.pruned || self.folds.is_empty() {
            return None;
        }
        let secs = self.folds.iter().map(|f| f.seconds).sum::<f64>() / self.folds.len() as f64;
        Some((self.folds.into_iter().map(|f| f.output).collect(), secs))
    }
}

fn fit_fold_timed<O: Objective>(
    obj: &O,
    ci: usize,
    number: usize,
    f: usize,
    params: &Params,
    deadline: Option<Instant>,
) -> Result<FoldResult<O::Output>> {
    let started = Instant::now();
    let (scores, output) = obj.fit_fold(ci, number, f, params, deadline)?;
    let key = obj.ranking().0;
    if !scores.contains_key(key) {
        return Err(Error::data(format!("`{}` fold {}: no `{key}` score", obj.name(ci), f + 1)));
    }
    Ok(FoldResult { scores, output, seconds: started.elapsed().as_secs_f64() })
}

/// Fit and score every fold of trial `number` of candidate `ci`: in parallel, or in order with
/// the median pruner once it can prune (stopping after a fold whose running loss is worse than
/// the median of `snapshot`).
pub(crate) fn evaluate<O: Objective>(
    obj: &O,
    pruner: &Pruner,
    ci: usize,
    number: usize,
    params: &Params,
    snapshot: &Snapshot,
    deadline: Option<Instant>,
) -> Evaluated<O::Output> {
    let started = Instant::now();
    let (key, higher) = obj.ranking();
    let k = obj.folds();
    if !snapshot.can_prune(pruner) {
        let res: Result<Vec<FoldResult<O::Output>>> =
            (0..k).into_par_iter().map(|f| fit_fold_timed(obj, ci, number, f, params, deadline)).collect();
        let seconds = started.elapsed().as_secs_f64();
        return match res {
            Ok(folds) => Evaluated { folds, pruned: false, error: None, seconds },
            Err(e) => Evaluated { folds: vec![], pruned: false, error: Some(e), seconds },
        };
    }
    let mut done = Vec::new();
    let mut sum = 0.0;
    for f in 0..k {
        match fit_fold_timed(obj, ci, number, f, params, deadline) {
            Ok(r) => {
                sum += as_loss(r.scores[key], higher);
                done.push(r);
                let running = sum / done.len() as f64;
                if f + 1 < k && snapshot.prune(pruner, f, running) {
                    return Evaluated {
                        folds: done,
                        pruned: true,
                        error: None,
                        seconds: started.elapsed().as_secs_f64(),
                    };
                }
            }
            Err(e) => {
                return Evaluated {
                    folds: vec![],
                    pruned: false,
                    error: Some(e),
                    seconds: started.elapsed().as_secs_f64(),
                };
            }
        }
    }
    Evaluated { folds: done, pruned: false, error: None, seconds: started.elapsed().as_secs_f64() }
}

pub(crate) fn mean_sd(v: &[f64]) -> (f64, f64) {
    let mean = v.iter().sum::<f64>() / v.len() as f64;
    let sd = (v.iter().map(|s| (s - mean).powi(2)).sum::<f64>() / v.len() as f64).sqrt();
    (mean, sd)
}

/// The stored record of an evaluated trial: ranking score per fold, and the mean of every
/// score over the folds of a complete trial.
pub(crate) fn make_record<T>(name: &str, number: usize, params: &Params, ev: &Evaluated<T>, key: &str) -> TrialRecord {
    let fold_scores: Vec<f64> = ev.folds.iter().map(|f| f.scores[key]).collect();
    let mut cv = Scores::new();
    if ev.error.is_none()
        && let Some(first) = ev.folds.first()
    {
        for m in first.scores.keys() {
            let v = ev.folds.iter().map(|f| f.scores.get(m).copied().unwrap_or(f64::NAN)).sum::<f64>()
                / ev.folds.len() as f64;
            cv.insert(m.clone(), v);
        }
    }
    TrialRecord {
        trial: Trial {
            model: name.to_string(),
            number,
            params: params_json(params),
            fold_scores: fold_scores.clone(),
            score: ev.error.is_none().then(|| mean_sd(&fold_scores).0),
            seconds: ev.seconds,
            error: ev.error.as_ref().map(ToString::to_string),
            pruned: ev.pruned,
        },
        cv,
    }
}

/// Per-candidate search state.
struct State<T> {
    optimizer: Box<dyn promoml_core::Optimizer>,
    rng: Rng,
    next: usize,
    best: Option<Found<T>>,
    last_error: Option<Error>,
    snapshot: Snapshot,
    replay: HashMap<usize, TrialRecord>,
    /// Seconds per unit of [`promoml_core::Model::cost`] on the last batch with fresh trials.
    secs_per_cost: Option<f64>,
}

/// Search every candidate of `obj` with the settings of `p.search` (optimiser, pruner,
/// parallel trials) and the seed `p.seed`.
pub fn search<O: Objective>(p: &Pipeline, obj: &O, ctx: Context<'_>) -> Result<Outcome<O::Output>> {
    let higher = obj.ranking().1;
    let key = obj.ranking().0.to_string();
    let nc = obj.candidates();
    let better = |a: f64, b: f64| better(a, b, higher);
    let as_loss = |v: f64| as_loss(v, higher);

    let mut replay: Vec<HashMap<usize, TrialRecord>> = vec![HashMap::new(); nc];
    for r in ctx.storage.trials()? {
        if let Some(ci) = (0..nc).position(|c| obj.name(c) == r.trial.model) {
            replay[ci].insert(r.trial.number, r);
        }
    }
    let mut states: Vec<State<O::Output>> = (0..nc)
        .map(|ci| State {
            optimizer: p.search.optimizer.build(p.search.startup_trials),
            rng: Rng::seed_from_u64(derive_seed(p.seed, &[2, ci as u64])),
            next: 0,
            best: None,
            last_error: None,
            snapshot: Snapshot::default(),
            replay: std::mem::take(&mut replay[ci]),
            secs_per_cost: None,
        })
        .collect();
    ctx.observer.search_started((0..nc).map(|c| obj.trials(c)).sum());
    let mut trials = Vec::new();
    let mut out_of_time = false;
    // Seconds to keep free after the search: refitting each candidate's best on all rows
    // (a fold's time scaled to the full training split) plus the ensemble.
    let k = obj.folds().max(2) as f64;
    let reserve = |states: &[State<O::Output>]| -> f64 {
        let per_fold: Vec<f64> = states.iter().filter_map(|s| s.best.as_ref()).map(|b| b.fold_seconds).collect();
        let refits: f64 = per_fold.iter().map(|s| s * k / (k - 1.0) * 1.2).sum();
        let slowest = per_fold.iter().copied().fold(0.0, f64::max);
        // Layer 2: folds run two at a time, then a refit; priced at the slowest candidate.
        let layer2 = ctx.layer2_models.min(per_fold.len()) as f64 * slowest * 1.2 * ((k / 2.0).ceil() + 1.5);
        refits + layer2 + ctx.reserve_s
    };
    // Each candidate's estimated cost of a default fit on a fold's training rows.
    let costs: Vec<f64> = (0..nc).map(|c| obj.cost(c, &obj.defaults(c))).collect();
    let mut round = 0;
    while !out_of_time && !promoml_core::interrupt::requested() {
        let mut progressed = false;
        let order = round_order(
            &costs,
            &states.iter().map(|s| s.best.as_ref().map(|b| b.score)).collect::<Vec<_>>(),
            round,
            higher,
        );
        round += 1;
        for ci in order {
            let (name, n_trials) = (obj.name(ci), obj.trials(ci));
            if promoml_core::interrupt::requested() {
                break;
            }
            if states[ci].next >= n_trials {
                continue;
            }
            // The first round evaluates only each model's defaults, so that under a time
            // budget every model is scored before any is tuned.
            let width = if states[ci].next == 0 { 1 } else { p.search.parallel_trials };
            let batch_len = width.min(n_trials - states[ci].next);
            let fit_deadline = ctx.deadline.map(|d| before(d, 1.2 * reserve(&states)));
            let reserve_now = reserve(&states);
            // Seconds per unit of `Model::cost`: the candidate's own, measured on its last
            // batch, or before its first trial the median of the others'.
            let rate = states[ci].secs_per_cost.or_else(|| {
                let mut r: Vec<f64> = states.iter().filter_map(|s| s.secs_per_cost).collect();
                r.sort_by(f64::total_cmp);
                r.get(r.len() / 2).copied()
            });
            let st = &mut states[ci];
            let batch: Vec<(usize, Params)> = (0..batch_len)
                .map(|i| {
                    let t = st.next + i;
                    (t, if t == 0 { obj.defaults(ci) } else { st.optimizer.ask(obj.space(ci), &mut st.rng) })
                })
                .collect();
            for (t, params) in &batch {
                if let Some(r) = st.replay.get(t)
                    && r.trial.params != params_json(params)
                {
                    return Err(Error::data(format!(
                        "the trial log does not match this pipeline: trial {t} of `{}` has parameters {} in the log, but the search asks {}; run without --resume to start a new study",
                        name,
                        serde_json::to_string(&r.trial.params).unwrap_or_default(),
                        serde_json::to_string(&params_json(params)).unwrap_or_default()
                    )));
                }
            }
            // Replayed trials cost nothing; fresh ones need time: their estimated cost at the
            // measured rate, with a margin (a loaded machine makes the next batch slower).
            let cost: f64 =
                batch.iter().filter(|(t, _)| !st.replay.contains_key(t)).map(|(_, params)| obj.cost(ci, params)).sum();
            if cost > 0.0
                && let (Some(d), Some(fd)) = (ctx.deadline, fit_deadline)
            {
                let now = Instant::now();
                if now >= fd {
                    out_of_time = true;
                    break;
                }
                let expected = 1.3 * rate.unwrap_or(0.0) * cost;
                let needed = Duration::try_from_secs_f64(expected + 1.2 * reserve_now).unwrap_or(Duration::MAX);
                if now.checked_add(needed).is_none_or(|end| end > d) {
                    // Too slow to fit; a cheaper model may still have time for a batch. (The
                    // batch is dropped whole: batches keep their bounds, so that a resumed
                    // study asks the same parameters.)
                    st.next = n_trials;
                    continue;
                }
            }
            progressed = true;
            st.next += batch_len;
            let snapshot = st.snapshot.clone();
            let replayed: Vec<bool> = batch.iter().map(|(t, _)| st.replay.contains_key(t)).collect();
            let started = Instant::now();
            let evaluated: Vec<Option<Evaluated<O::Output>>> = batch
                .par_iter()
                .zip(&replayed)
                .map(|((t, params), &replayed)| {
                    (!replayed).then(|| evaluate(obj, &p.search.pruner, ci, *t, params, &snapshot, fit_deadline))
                })
                .collect();
            if cost > 0.0 && evaluated.iter().any(Option::is_some) {
                st.secs_per_cost = Some(started.elapsed().as_secs_f64() / cost);
            }
            for ((t, params), ev) in batch.into_iter().zip(evaluated) {
                // A trial the user's interrupt cut short is not logged: a resumed run fits it.
                if ev.as_ref().is_some_and(|ev| matches!(ev.error, Some(Error::Interrupted(_)))) {
                    continue;
                }
                // (record, out-of-fold predictions and mean fold seconds of a fresh trial)
                let (record, fresh) = match ev {
                    None => (st.replay.remove(&t).expect("replayed trial is in the log"), None),
                    Some(mut ev) => {
                        let record = make_record(name, t, &params, &ev, &key);
                        ctx.storage.append(&record)?;
                        let error = ev.error.take();
                        let fresh = if error.is_none() { ev.into_outputs() } else { None };
                        if let Some(e) = error {
                            st.last_error = Some(e);
                        }
                        (record, fresh)
                    }
                };
                let trial = &record.trial;
                match (trial.score, trial.pruned, &trial.error) {
                    (Some(v), false, None) => {
                        st.optimizer.tell(&params, Some(as_loss(v)));
                        st.snapshot.add(&trial.fold_scores.iter().map(|&s| as_loss(s)).collect::<Vec<_>>());
                        if st.best.as_ref().is_none_or(|b| better(v, b.score)) {
                            let (outputs, fold_seconds) = match fresh {
                                Some((outputs, secs)) => (Some(outputs), secs),
                                // A replayed trial: its fold outputs are recomputed by
                                // `recompute` if the task needs them.
                                None => (None, trial.seconds / obj.folds().max(1) as f64),
                            };
                            st.best = Some(Found {
                                number: t,
                                params: params.clone(),
                                cv: record.cv.clone(),
                                cv_std: mean_sd(&trial.fold_scores).1,
                                fold_scores: trial.fold_scores.clone(),
                                score: v,
                                fold_seconds,
                                outputs,
                            });
                        }
                    }
                    (Some(v), true, _) => st.optimizer.tell(&params, Some(as_loss(v))),
                    _ => {
                        if let Some(e) = &trial.error
                            && st.last_error.is_none()
                        {
                            st.last_error = Some(Error::data(e.clone()));
                        }
                        st.optimizer.tell(&params, None)
                    }
                }
                ctx.observer.trial_done(trial);
                trials.push(record.trial);
            }
        }
        if !progressed {
            break;
        }
    }
    if promoml_core::interrupt::requested() {
        return Err(Error::Interrupted(format!(
            "during the search: {} trial(s) finished and logged, the trials in flight were dropped",
            trials.len()
        )));
    }
    let mut bests = Vec::new();
    let mut failures = Vec::new();
    for (ci, st) in states.into_iter().enumerate() {
        match st.best {
            Some(b) => bests.push((ci, b)),
            None => failures.push(Failure {
                model: obj.name(ci).to_string(),
                error: st
                    .last_error
                    .map(|e| e.to_string())
                    .unwrap_or_else(|| format!("no trial of `{}` finished within the time budget", obj.name(ci))),
            }),
        }
    }
    Ok(Outcome { bests, failures, trials })
}

/// The order in which candidates get their batch in search round `round`. The first round
/// scores every candidate's defaults cheapest first (by [`promoml_core::Model::cost`]), so that
/// under a time budget a slow model cannot starve the cheap ones; later rounds go to the
/// candidates with the best score so far first (candidates without one last, cheapest first),
/// where tuning is likeliest to pay. Ties keep declaration order. Each candidate's trials
/// depend only on its own seed, so without a budget the order changes no result.
fn round_order(costs: &[f64], best: &[Option<f64>], round: usize, higher_is_better: bool) -> Vec<usize> {
    let mut order: Vec<usize> = (0..costs.len()).collect();
    if round == 0 {
        order.sort_by(|&a, &b| costs[a].total_cmp(&costs[b]));
    } else {
        let key = |i: usize| best[i].map(|v| if higher_is_better { -v } else { v });
        order.sort_by(|&a, &b| match (key(a), key(b)) {
            (Some(x), Some(y)) => x.total_cmp(&y),
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (None, None) => costs[a].total_cmp(&costs[b]),
        });
    }
    order
}

/// Make sure `found` has its fold outputs, refitting its folds with the trial's own seeds (so a
/// replayed trial gets exactly the outputs of the run that logged it).
pub fn recompute<O: Objective>(obj: &O, ci: usize, found: &mut Found<O::Output>) -> Result<()> {
    if found.outputs.is_some() {
        return Ok(());
    }
    let res: Vec<FoldResult<O::Output>> = (0..obj.folds())
        .into_par_iter()
        .map(|f| fit_fold_timed(obj, ci, found.number, f, &found.params, None))
        .collect::<Result<_>>()?;
    found.outputs = Some(res.into_iter().map(|r| r.output).collect());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounds_start_cheapest_first_then_go_to_the_best_scores() {
        let costs = [5.0, 1.0, 3.0, 1.0];
        // Ties keep declaration order.
        assert_eq!(round_order(&costs, &[None; 4], 0, true), vec![1, 3, 2, 0]);
        let best = [Some(0.8), None, Some(0.9), Some(0.7)];
        assert_eq!(round_order(&costs, &best, 1, true), vec![2, 0, 3, 1]);
        // A loss: lower first.
        assert_eq!(round_order(&costs, &best, 2, false), vec![3, 0, 2, 1]);
    }
}
