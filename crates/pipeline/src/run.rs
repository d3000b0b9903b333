//! Running a validated pipeline: load, prepare, search every candidate with K-fold CV, refit
//! the best trial of each on all training rows, score it once on the test rows, and report.

use crate::cv::{complement, derive_seed, folds};
use crate::data::{self, class_labels};
use crate::plan::{Candidate, Pipeline};
use crate::prep::{Prepared, TargetEncoding};
use promoml_core::{Dataset, Error, FitContext, Metric, Params, Result, Rng};
use promoml_report::{DataSummary, Failure, LeaderboardEntry, Report, SCHEMA_VERSION, Scores, Timing, Trial};
use rand::SeedableRng;
use rayon::prelude::*;
use std::collections::BTreeMap;
use std::time::Instant;

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

fn to_json(p: &Params) -> BTreeMap<String, serde_json::Value> {
    p.iter().map(|(k, v)| (k.clone(), serde_json::to_value(v).unwrap_or(serde_json::Value::Null))).collect()
}

fn score_all(metrics: &[Metric], y: &[f64], pred: &promoml_core::Predictions) -> Result<Scores> {
    metrics.iter().map(|m| Ok((m.name().to_string(), m.score(y, pred)?))).collect()
}

struct Best {
    params: Params,
    cv: Scores,
    cv_std: f64,
    score: f64,
}

/// Run a pipeline end to end and return its report.
pub fn run(p: &Pipeline, obs: &dyn Observer) -> Result<Report> {
    let t0 = Instant::now();
    let deadline = p.search.time_budget.map(|b| t0 + b);
    obs.stage("loading data");
    let loaded = data::load(&p.data, p.task)?;
    let load_s = t0.elapsed().as_secs_f64();

    let t_prep = Instant::now();
    obs.stage("preparing features");
    let target_col = &loaded.train.require(&p.data.target, "target")?.data;
    let classes = if p.task.is_classification() {
        class_labels(target_col, p.data.positive.as_deref(), p.task, &p.data.target)?
    } else {
        vec![]
    };
    let target = TargetEncoding { column: p.data.target.clone(), task: p.task, classes: classes.clone() };
    let (full, train_ds, dropped) = Prepared::fit_with(p, &target, loaded.train.clone(), loaded.sequences.clone())?;
    let test_ds = full.transform(loaded.test.clone(), "test")?;

    let n = loaded.train.n_rows();
    let k = p.search.cv_folds;
    let labels: Option<Vec<usize>> = p.task.is_classification().then(|| {
        (0..n)
            .map(|i| target_col.value_string(i).and_then(|s| classes.iter().position(|c| *c == s)).unwrap_or(0))
            .collect()
    });
    let mut class_counts = BTreeMap::new();
    if let Some(l) = &labels {
        for (ci, c) in classes.iter().enumerate() {
            let count = l.iter().filter(|&&v| v == ci).count();
            if count < k {
                return Err(Error::data(format!(
                    "class \"{c}\" of `{}` has {count} training rows, fewer than the {k} CV folds",
                    p.data.target
                )));
            }
            class_counts.insert(c.clone(), count);
        }
    }
    if n < 2 * k {
        return Err(Error::data(format!("{n} training rows are too few for {k}-fold cross-validation")));
    }
    let fold_rows = folds(n, k, labels.as_deref(), derive_seed(p.seed, &[1]));
    let fold_data: Vec<(Dataset, Dataset)> = fold_rows
        .par_iter()
        .map(|val| {
            let tr = complement(n, val);
            let (prep, ds_tr, _) = Prepared::fit_with(p, &target, loaded.train.take(&tr), loaded.sequences.clone())?;
            let ds_va = prep.transform(loaded.train.take(val), "validation")?;
            Ok((ds_tr, ds_va))
        })
        .collect::<Result<_>>()?;
    let prepare_s = t_prep.elapsed().as_secs_f64();

    let t_search = Instant::now();
    let metric = p.search.metric;
    let metrics = Metric::for_task(p.task);
    obs.search_started(p.candidates.iter().map(|c| c.trials).sum());
    let mut trials = Vec::new();
    let mut bests: Vec<(usize, Best)> = Vec::new();
    let mut failures = Vec::new();
    for (ci, cand) in p.candidates.iter().enumerate() {
        match search_candidate(p, ci, cand, &fold_data, &metrics, deadline, obs, &mut trials) {
            Ok(best) => bests.push((ci, best)),
            Err(e) => failures.push(Failure { model: cand.name.clone(), error: e.to_string() }),
        }
    }
    let search_s = t_search.elapsed().as_secs_f64();

    let t_refit = Instant::now();
    obs.stage("refitting candidates on all training rows and scoring on test rows");
    let mut leaderboard = Vec::new();
    for (ci, best) in bests {
        let cand = &p.candidates[ci];
        let ctx = FitContext { seed: derive_seed(p.seed, &[4, ci as u64]), deadline: None, ..FitContext::new(p.seed) };
        let t = Instant::now();
        let fitted = match cand.model.fit(&train_ds, &best.params, &ctx) {
            Ok(f) => f,
            Err(e) => {
                failures.push(Failure { model: cand.name.clone(), error: format!("refit: {e}") });
                continue;
            }
        };
        let fit_s = t.elapsed().as_secs_f64();
        let pred = fitted.predict(&test_ds)?;
        pred.check(test_ds.n_rows(), cand.model.kind())?;
        let test = score_all(&metrics, test_ds.target("test")?, &pred)?;
        leaderboard.push((
            best.score,
            LeaderboardEntry {
                name: cand.name.clone(),
                kind: cand.model.kind().to_string(),
                params: to_json(&best.params),
                cv: best.cv,
                cv_std: best.cv_std,
                test,
                fit_s,
                n_trials: trials.iter().filter(|t: &&Trial| t.model == cand.name).count(),
            },
        ));
    }
    if leaderboard.is_empty() {
        let why: Vec<String> = failures.iter().map(|f| format!("{}: {}", f.model, f.error)).collect();
        return Err(Error::data(format!("no candidate model could be fitted:\n  {}", why.join("\n  "))));
    }
    // Stable sort: ties keep declaration order.
    leaderboard.sort_by(|a, b| if metric.higher_is_better() { b.0.total_cmp(&a.0) } else { a.0.total_cmp(&b.0) });
    let leaderboard: Vec<LeaderboardEntry> = leaderboard.into_iter().map(|(_, e)| e).collect();
    let refit_s = t_refit.elapsed().as_secs_f64();
    let final_entry = &leaderboard[0];
    Ok(Report {
        schema_version: SCHEMA_VERSION,
        promoml_version: env!("CARGO_PKG_VERSION").to_string(),
        pipeline: p.name.clone(),
        task: p.task.name().to_string(),
        seed: p.seed,
        metric: metric.name().to_string(),
        higher_is_better: metric.higher_is_better(),
        final_model: final_entry.name.clone(),
        test: final_entry.test.clone(),
        data: DataSummary {
            source: loaded.description.clone(),
            train_rows: n,
            test_rows: loaded.test.n_rows(),
            dropped_train_rows: dropped,
            columns: loaded.columns,
            missing_cells: loaded.train.columns().iter().map(|c| c.data.missing_count()).sum(),
            features: full.feature_names().len(),
            classes: class_counts,
        },
        leaderboard,
        trials,
        failures,
        timing: Timing { total_s: t0.elapsed().as_secs_f64(), load_s, prepare_s, search_s, refit_s },
    })
}

#[allow(clippy::too_many_arguments)]
fn search_candidate(
    p: &Pipeline,
    ci: usize,
    cand: &Candidate,
    fold_data: &[(Dataset, Dataset)],
    metrics: &[Metric],
    deadline: Option<Instant>,
    obs: &dyn Observer,
    trials: &mut Vec<Trial>,
) -> Result<Best> {
    let metric = p.search.metric;
    let mut optimizer = p.search.optimizer.build(p.search.startup_trials);
    let mut rng = Rng::seed_from_u64(derive_seed(p.seed, &[2, ci as u64]));
    let mut best: Option<Best> = None;
    let mut last_error = None;
    for t in 0..cand.trials {
        if deadline.is_some_and(|d| Instant::now() >= d) {
            break;
        }
        let params = if t == 0 { cand.space.defaults() } else { optimizer.ask(&cand.space, &mut rng) };
        let started = Instant::now();
        let per_fold: Result<Vec<Scores>> = fold_data
            .par_iter()
            .enumerate()
            .map(|(f, (tr, va))| {
                let ctx = FitContext {
                    seed: derive_seed(p.seed, &[3, ci as u64, t as u64, f as u64]),
                    deadline,
                    ..FitContext::new(p.seed)
                };
                let fitted = cand.model.fit(tr, &params, &ctx)?;
                let pred = fitted.predict(va)?;
                pred.check(va.n_rows(), cand.model.kind())?;
                score_all(metrics, va.target("validation")?, &pred)
            })
            .collect();
        let seconds = started.elapsed().as_secs_f64();
        let trial = match per_fold {
            Ok(folds) => {
                let fold_scores: Vec<f64> = folds.iter().map(|s| s[metric.name()]).collect();
                let mean = fold_scores.iter().sum::<f64>() / fold_scores.len() as f64;
                let sd =
                    (fold_scores.iter().map(|s| (s - mean).powi(2)).sum::<f64>() / fold_scores.len() as f64).sqrt();
                optimizer.tell(&params, Some(if metric.higher_is_better() { -mean } else { mean }));
                let better = best
                    .as_ref()
                    .is_none_or(|b| if metric.higher_is_better() { mean > b.score } else { mean < b.score });
                if better {
                    let mut cv = Scores::new();
                    for m in metrics {
                        let v: f64 = folds.iter().map(|s| s[m.name()]).sum::<f64>() / folds.len() as f64;
                        cv.insert(m.name().to_string(), v);
                    }
                    best = Some(Best { params: params.clone(), cv, cv_std: sd, score: mean });
                }
                Trial {
                    model: cand.name.clone(),
                    number: t,
                    params: to_json(&params),
                    fold_scores,
                    score: Some(mean),
                    seconds,
                    error: None,
                }
            }
            Err(e) => {
                optimizer.tell(&params, None);
                let msg = e.to_string();
                last_error = Some(e);
                Trial {
                    model: cand.name.clone(),
                    number: t,
                    params: to_json(&params),
                    fold_scores: vec![],
                    score: None,
                    seconds,
                    error: Some(msg),
                }
            }
        };
        obs.trial_done(&trial);
        trials.push(trial);
    }
    best.ok_or_else(|| {
        last_error
            .unwrap_or_else(|| Error::Budget(format!("no trial of `{}` finished within the time budget", cand.name)))
    })
}
