//! The hyper-parameter search loop: for every candidate, ask the optimiser for parameters,
//! score them with K-fold cross-validation, tell the optimiser, and keep the best trial with its
//! out-of-fold predictions (for ensembles).
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
use crate::plan::{Candidate, Pipeline, Pruner};
use crate::study::{StudyStorage, TrialRecord};
use ndarray::Array2;
use promoml_core::{Dataset, Error, FitContext, Metric, Params, Predictions, Result, Rng};
use promoml_report::{Failure, Scores, Trial};
use rand::SeedableRng;
use rayon::prelude::*;
use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

/// One cross-validation fold, prepared: fitted on its training rows only.
pub struct Fold {
    /// The fold's training rows, cleaned and featurised.
    pub train: Dataset,
    /// Its validation rows, transformed by the fold's preparation.
    pub valid: Dataset,
    /// Indices of the validation rows among the training split's rows.
    pub rows: Vec<usize>,
}

/// The best trial of a candidate.
#[derive(Debug, Clone)]
pub struct Best {
    /// Trial number.
    pub number: usize,
    /// Its parameters.
    pub params: Params,
    /// Mean of every metric over the folds.
    pub cv: Scores,
    /// Standard deviation of the ranking metric over the folds.
    pub cv_std: f64,
    /// Ranking metric per fold.
    pub fold_scores: Vec<f64>,
    /// Mean of the ranking metric.
    pub score: f64,
    /// Mean seconds to fit and predict one fold.
    pub fold_seconds: f64,
    /// Out-of-fold predictions, one row per training row; absent for a replayed trial until
    /// [`out_of_fold`] recomputes them.
    pub oof: Option<Predictions>,
}

/// What the search produced.
pub struct Outcome {
    /// Candidate index and its best trial, for candidates with at least one complete trial.
    pub bests: Vec<(usize, Best)>,
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

/// Running means of the ranking metric (as a loss: lower is better) of completed trials, per
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

pub(crate) struct FoldResult {
    pub(crate) scores: Scores,
    pub(crate) pred: Predictions,
    pub(crate) seconds: f64,
}

pub(crate) struct Evaluated {
    pub(crate) folds: Vec<FoldResult>,
    pub(crate) pruned: bool,
    pub(crate) error: Option<Error>,
    pub(crate) seconds: f64,
}

/// Fit and score one fold.
#[allow(clippy::too_many_arguments)]
fn run_fold(
    p: &Pipeline,
    ci: usize,
    cand: &Candidate,
    number: usize,
    f: usize,
    fold: &Fold,
    params: &Params,
    metrics: &[Metric],
    deadline: Option<Instant>,
) -> Result<FoldResult> {
    let started = Instant::now();
    let ctx = FitContext {
        seed: derive_seed(p.seed, &[3, ci as u64, number as u64, f as u64]),
        deadline,
        label: format!("{} trial {number} fold {}/{}", cand.name, f + 1, p.search.cv_folds),
        ..p.fit_context(p.seed)
    };
    let fitted = cand.model.fit(&fold.train, params, &ctx)?;
    let pred = fitted.predict(&fold.valid)?;
    pred.check(fold.valid.n_rows(), cand.model.kind())?;
    let scores = score_all(metrics, fold.valid.target("validation")?, &pred)?;
    Ok(FoldResult { scores, pred, seconds: started.elapsed().as_secs_f64() })
}

#[allow(clippy::too_many_arguments)]
pub(crate) fn evaluate(
    p: &Pipeline,
    ci: usize,
    cand: &Candidate,
    number: usize,
    params: &Params,
    folds: &[Fold],
    metrics: &[Metric],
    snapshot: &Snapshot,
    deadline: Option<Instant>,
) -> Evaluated {
    let started = Instant::now();
    let metric = p.search.metric;
    let loss = |s: &Scores| if metric.higher_is_better() { -s[metric.name()] } else { s[metric.name()] };
    if !snapshot.can_prune(&p.search.pruner) {
        let res: Result<Vec<FoldResult>> = folds
            .par_iter()
            .enumerate()
            .map(|(f, fold)| run_fold(p, ci, cand, number, f, fold, params, metrics, deadline))
            .collect();
        let seconds = started.elapsed().as_secs_f64();
        return match res {
            Ok(folds) => Evaluated { folds, pruned: false, error: None, seconds },
            Err(e) => Evaluated { folds: vec![], pruned: false, error: Some(e), seconds },
        };
    }
    let mut done = Vec::new();
    let mut sum = 0.0;
    for (f, fold) in folds.iter().enumerate() {
        match run_fold(p, ci, cand, number, f, fold, params, metrics, deadline) {
            Ok(r) => {
                sum += loss(&r.scores);
                done.push(r);
                let running = sum / done.len() as f64;
                if f + 1 < folds.len() && snapshot.prune(&p.search.pruner, f, running) {
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

/// Out-of-fold predictions: each fold's validation predictions put back at their rows.
pub fn assemble_oof(n: usize, folds: &[Fold], preds: &[Predictions]) -> Predictions {
    match &preds[0] {
        Predictions::Proba(first) => {
            let mut out = Array2::zeros((n, first.ncols()));
            for (fold, pred) in folds.iter().zip(preds) {
                if let Predictions::Proba(p) = pred {
                    for (r, &i) in fold.rows.iter().enumerate() {
                        out.row_mut(i).assign(&p.row(r));
                    }
                }
            }
            Predictions::Proba(out)
        }
        Predictions::Values(_) => {
            let mut out = vec![0.0; n];
            for (fold, pred) in folds.iter().zip(preds) {
                if let Predictions::Values(v) = pred {
                    for (r, &i) in fold.rows.iter().enumerate() {
                        out[i] = v[r];
                    }
                }
            }
            Predictions::Values(out)
        }
    }
}

/// Per-candidate search state.
struct State {
    optimizer: Box<dyn promoml_core::Optimizer>,
    rng: Rng,
    next: usize,
    best: Option<Best>,
    last_error: Option<Error>,
    snapshot: Snapshot,
    replay: HashMap<usize, TrialRecord>,
    /// Seconds per unit of [`promoml_core::Model::cost`] on the last batch with fresh trials.
    secs_per_cost: Option<f64>,
}

pub(crate) fn mean_sd(v: &[f64]) -> (f64, f64) {
    let mean = v.iter().sum::<f64>() / v.len() as f64;
    let sd = (v.iter().map(|s| (s - mean).powi(2)).sum::<f64>() / v.len() as f64).sqrt();
    (mean, sd)
}

/// The stored record of an evaluated trial.
pub(crate) fn make_record(
    cand: &Candidate,
    number: usize,
    params: &Params,
    ev: &Evaluated,
    metric: Metric,
    metrics: &[Metric],
) -> TrialRecord {
    let fold_scores: Vec<f64> = ev.folds.iter().map(|f| f.scores[metric.name()]).collect();
    let mut cv = Scores::new();
    if ev.error.is_none() {
        for m in metrics {
            let v = ev.folds.iter().map(|f| f.scores[m.name()]).sum::<f64>() / ev.folds.len() as f64;
            cv.insert(m.name().to_string(), v);
        }
    }
    TrialRecord {
        trial: Trial {
            model: cand.name.clone(),
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

/// Search every candidate of `p` on `folds` (built from `n` training rows).
pub fn search(p: &Pipeline, folds: &[Fold], n: usize, ctx: Context<'_>) -> Result<Outcome> {
    let metric = p.search.metric;
    let metrics = Metric::for_task(p.task);
    let better = |a: f64, b: f64| if metric.higher_is_better() { a > b } else { a < b };
    let as_loss = |v: f64| if metric.higher_is_better() { -v } else { v };

    let mut replay: Vec<HashMap<usize, TrialRecord>> = vec![HashMap::new(); p.candidates.len()];
    for r in ctx.storage.trials()? {
        if let Some(ci) = p.candidates.iter().position(|c| c.name == r.trial.model) {
            replay[ci].insert(r.trial.number, r);
        }
    }
    let mut states: Vec<State> = p
        .candidates
        .iter()
        .enumerate()
        .map(|(ci, _)| State {
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
    ctx.observer.search_started(p.candidates.iter().map(|c| c.trials).sum());
    let mut trials = Vec::new();
    let mut out_of_time = false;
    // Seconds to keep free after the search: refitting each candidate's best on all rows
    // (a fold's time scaled to the full training split) plus the ensemble.
    let k = folds.len().max(2) as f64;
    let reserve = |states: &[State]| -> f64 {
        let per_fold: Vec<f64> = states.iter().filter_map(|s| s.best.as_ref()).map(|b| b.fold_seconds).collect();
        let refits: f64 = per_fold.iter().map(|s| s * k / (k - 1.0) * 1.2).sum();
        let slowest = per_fold.iter().copied().fold(0.0, f64::max);
        // Layer 2: folds run two at a time, then a refit; priced at the slowest candidate.
        let layer2 = ctx.layer2_models.min(per_fold.len()) as f64 * slowest * 1.2 * ((k / 2.0).ceil() + 1.5);
        refits + layer2 + ctx.reserve_s
    };
    // Each candidate's estimated cost of a default fit on a fold's training rows.
    let (fold_rows, fold_features) = folds.first().map_or((n, 1), |f| (f.train.n_rows(), f.train.n_features()));
    let costs: Vec<f64> =
        p.candidates.iter().map(|c| c.model.cost(fold_rows, fold_features, &c.space.defaults())).collect();
    let mut round = 0;
    while !out_of_time && !promoml_core::interrupt::requested() {
        let mut progressed = false;
        let order = round_order(
            &costs,
            &states.iter().map(|s| s.best.as_ref().map(|b| b.score)).collect::<Vec<_>>(),
            round,
            metric.higher_is_better(),
        );
        round += 1;
        for ci in order {
            let cand = &p.candidates[ci];
            if promoml_core::interrupt::requested() {
                break;
            }
            if states[ci].next >= cand.trials {
                continue;
            }
            // The first round evaluates only each model's defaults, so that under a time
            // budget every model is scored before any is tuned.
            let width = if states[ci].next == 0 { 1 } else { p.search.parallel_trials };
            let batch_len = width.min(cand.trials - states[ci].next);
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
                    (t, if t == 0 { cand.space.defaults() } else { st.optimizer.ask(&cand.space, &mut st.rng) })
                })
                .collect();
            for (t, params) in &batch {
                if let Some(r) = st.replay.get(t)
                    && r.trial.params != params_json(params)
                {
                    return Err(Error::data(format!(
                        "the trial log does not match this pipeline: trial {t} of `{}` has parameters {} in the log, but the search asks {}; run without --resume to start a new study",
                        cand.name,
                        serde_json::to_string(&r.trial.params).unwrap_or_default(),
                        serde_json::to_string(&params_json(params)).unwrap_or_default()
                    )));
                }
            }
            // Replayed trials cost nothing; fresh ones need time: their estimated cost at the
            // measured rate, with a margin (a loaded machine makes the next batch slower).
            let cost: f64 = batch
                .iter()
                .filter(|(t, _)| !st.replay.contains_key(t))
                .map(|(_, params)| cand.model.cost(fold_rows, fold_features, params))
                .sum();
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
                    st.next = cand.trials;
                    continue;
                }
            }
            progressed = true;
            st.next += batch_len;
            let snapshot = st.snapshot.clone();
            let replayed: Vec<bool> = batch.iter().map(|(t, _)| st.replay.contains_key(t)).collect();
            let started = Instant::now();
            let evaluated: Vec<Option<Evaluated>> = batch
                .par_iter()
                .zip(&replayed)
                .map(|((t, params), &replayed)| {
                    (!replayed).then(|| evaluate(p, ci, cand, *t, params, folds, &metrics, &snapshot, fit_deadline))
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
                    Some(ev) => {
                        let record = make_record(cand, t, &params, &ev, metric, &metrics);
                        ctx.storage.append(&record)?;
                        let fresh = if ev.error.is_none() && !ev.pruned {
                            let preds: Vec<Predictions> = ev.folds.iter().map(|f| f.pred.clone()).collect();
                            let secs = ev.folds.iter().map(|f| f.seconds).sum::<f64>() / ev.folds.len() as f64;
                            Some((assemble_oof(n, folds, &preds), secs))
                        } else {
                            None
                        };
                        if let Some(e) = ev.error {
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
                            let (oof, fold_seconds) = match fresh {
                                Some((oof, secs)) => (Some(oof), secs),
                                // A replayed trial: its out-of-fold predictions are recomputed
                                // by `out_of_fold` if an ensemble needs them.
                                None => (None, trial.seconds / folds.len() as f64),
                            };
                            st.best = Some(Best {
                                number: t,
                                params: params.clone(),
                                cv: record.cv.clone(),
                                cv_std: mean_sd(&trial.fold_scores).1,
                                fold_scores: trial.fold_scores.clone(),
                                score: v,
                                fold_seconds,
                                oof,
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
                model: p.candidates[ci].name.clone(),
                error: st.last_error.map(|e| e.to_string()).unwrap_or_else(|| {
                    format!("no trial of `{}` finished within the time budget", p.candidates[ci].name)
                }),
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

/// Make sure `best` has out-of-fold predictions, refitting its folds with the trial's own seeds
/// (so a replayed trial gets exactly the predictions of the run that logged it).
pub fn out_of_fold(p: &Pipeline, ci: usize, best: &mut Best, folds: &[Fold], n: usize) -> Result<()> {
    if best.oof.is_some() {
        return Ok(());
    }
    let metrics = Metric::for_task(p.task);
    let cand = &p.candidates[ci];
    let res: Vec<FoldResult> = folds
        .par_iter()
        .enumerate()
        .map(|(f, fold)| run_fold(p, ci, cand, best.number, f, fold, &best.params, &metrics, None))
        .collect::<Result<_>>()?;
    let preds: Vec<Predictions> = res.into_iter().map(|r| r.pred).collect();
    best.oof = Some(assemble_oof(n, folds, &preds));
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
