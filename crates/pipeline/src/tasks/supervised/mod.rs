//! Binary, multiclass and regression tasks: load, prepare, search every candidate with K-fold
//! CV, refit the best trial of each on all training rows, ensemble, score once on the test rows,
//! and report.

use super::{Ran, Searched};
use crate::budget::writing_reserve;
use crate::cv::{complement, derive_seed, folds};
use crate::data::{self, class_labels};
use crate::ensemble;
use crate::ensemble::with_predictions;
use crate::observe::Observer;
use crate::options::RunOptions;
use crate::plan::{EnsembleKind, Pipeline};
use crate::prep::{Prepared, TargetEncoding};
use crate::search::{self, params_json, score_all};

pub mod objective;

use crate::study::StudyHeader;
use objective::{Best, Fold, Supervised, assemble_oof, out_of_fold};
use promoml_core::{Dataset, Error, FitContext, Metric, Predictions, Result};
use promoml_report::{
    DataSummary, EnsembleMember, EnsembleSummary, Failure, LeaderboardEntry, Report, SCHEMA_VERSION, Scores, Timing,
    Trial,
};
use rayon::prelude::*;
use std::collections::BTreeMap;
use std::time::Instant;

/// Run a supervised pipeline; as a `worker`, evaluate trials of a shared study instead of
/// reporting.
/// A supervised problem loaded and prepared: the data, the preparation fitted on all training
/// rows with the training and test rows it gives, and the cross-validation folds (each with its
/// own preparation fitted on its training rows).
struct Problem {
    loaded: data::Loaded,
    full: Prepared,
    train_ds: Dataset,
    test_ds: Dataset,
    /// Training rows the cleaners dropped.
    dropped: usize,
    leaks: Vec<promoml_report::SuspectedLeak>,
    /// Class index of every training row (classification).
    labels: Option<Vec<usize>>,
    class_counts: BTreeMap<String, usize>,
    fold_data: Vec<Fold>,
    load_s: f64,
    prepare_s: f64,
}

/// Load the data, encode the target, fit the preparation on the training rows (warning about
/// features that look like leaks), check the classes against the folds, and cut the folds.
fn prepare(p: &Pipeline, deadline: Option<Instant>, obs: &dyn Observer) -> Result<Problem> {
    let t0 = Instant::now();
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
    let (full, train_ds, dropped) =
        Prepared::fit_until(p, &target, loaded.train.clone(), loaded.sequences.clone(), deadline)?;
    let test_ds = full.transform(loaded.test.clone(), "test")?;
    let leaks = if p.task == promoml_core::Task::Binary { data::suspected_leaks(&train_ds, 0.95) } else { vec![] };
    for l in &leaks {
        tracing::warn!(
            "possible leak: feature `{}` alone separates the target `{}` on the training rows (AUC {:.3}); if it is recorded after the outcome, add its column to `data.drop`",
            l.feature,
            p.data.target,
            l.auc
        );
    }

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
    let fold_data: Vec<Fold> = fold_rows
        .par_iter()
        .map(|val| {
            let tr = complement(n, val);
            let (prep, ds_tr, _) =
                Prepared::fit_until(p, &target, loaded.train.take(&tr), loaded.sequences.clone(), deadline)?;
            let ds_va = prep.transform(loaded.train.take(val), "validation")?;
            Ok(Fold { train: ds_tr, valid: ds_va, rows: val.clone() })
        })
        .collect::<Result<_>>()?;
    let prepare_s = t_prep.elapsed().as_secs_f64();

    Ok(Problem { loaded, full, train_ds, test_ds, dropped, leaks, labels, class_counts, fold_data, load_s, prepare_s })
}

/// Permutation importance and the SHAP summary of the final model `(model, name)` on the test
/// rows, each within its own budget and never past the run's deadline.
fn explain_final(
    p: &Pipeline,
    obs: &dyn Observer,
    (final_model, name): (&crate::artifact::FinalModel, &str),
    (train_ds, test_ds, y_test): (&Dataset, &Dataset, &[f64]),
    loaded: &data::Loaded,
    deadline: Option<Instant>,
) -> (Option<promoml_report::PermutationImportance>, Option<promoml_report::ShapSummary>) {
    let t_importance = Instant::now();
    let metric = p.search.metric;
    let feature_importance = if p.importance_repeats > 0 {
        obs.stage("permutation feature importance of the final model on the test rows");
        let predict = |ds: &Dataset| final_model.predict(ds);
        let seed = derive_seed(p.seed, &[8]);
        match crate::importance::permutation_importance(
            name,
            &predict,
            test_ds,
            y_test,
            metric,
            p.importance_repeats,
            seed,
            Some(importance_deadline(p, deadline, t_importance)),
            final_model.reads(),
        ) {
            Ok(fi) if fi.features.is_empty() => {
                tracing::warn!(
                    "no permutation importance for {}: the time budget ran out before the first shuffle",
                    name
                );
                None
            }
            Ok(fi) => Some(fi),
            Err(e) => {
                tracing::warn!("no permutation importance for {}: {e}", name);
                None
            }
        }
    } else {
        None
    };
    let shap = if matches!(p.task, promoml_core::Task::Binary | promoml_core::Task::Regression) {
        obs.stage("SHAP summary of the final model on the test rows");
        let columns: Vec<String> =
            loaded.train.names().into_iter().filter(|n| *n != p.data.target).map(str::to_string).collect();
        // Bounded like permutation importance: its own budget, never past the run's deadline.
        let until = importance_deadline(p, deadline, Instant::now()).min(Instant::now() + SHAP_BUDGET);
        let binary = p.task == promoml_core::Task::Binary;
        crate::explain::shap_summary(final_model, test_ds, train_ds, &columns, binary, until)
    } else {
        None
    };
    (feature_importance, shap)
}

pub(crate) fn run(p: &Pipeline, obs: &dyn Observer, opts: &RunOptions, worker: bool) -> Result<Ran> {
    let t0 = Instant::now();
    let deadline = p.search.time_budget.and_then(|b| t0.checked_add(b));
    let Problem { loaded, full, train_ds, test_ds, dropped, leaks, labels, class_counts, fold_data, load_s, prepare_s } =
        prepare(p, deadline, obs)?;
    let n = loaded.train.n_rows();

    let t_search = Instant::now();
    let metric = p.search.metric;
    let metrics = Metric::for_task(p.task);
    let header = StudyHeader::for_run(p, &[&loaded.train, &loaded.test])?;
    // The ensemble's own fitting is quick next to refits; keep a little time for it.
    let reserve_s =
        if p.ensemble.is_some() { 1.0 + 0.02 * p.search.time_budget.map_or(0.0, |b| b.as_secs_f64()) } else { 0.0 };
    let layer2_models = match p.ensemble.as_ref().map(|e| &e.kind) {
        Some(EnsembleKind::Stacking { layers: 2, layer2_models, .. }) => *layer2_models,
        _ => 0,
    };
    let obj = Supervised::new(p, &fold_data);
    let outcome = match super::search_study(p, &obj, opts, &header, worker, (deadline, reserve_s, layer2_models), obs)?
    {
        Searched::Led(o) => o,
        Searched::Worked(w) => return Ok(Ran::Worked(w)),
    };
    let search::Outcome { bests, mut failures, trials } = outcome;
    let search_s = t_search.elapsed().as_secs_f64();

    let t_refit = Instant::now();
    obs.stage("refitting candidates on all training rows and scoring on test rows");
    let y_test = test_ds.target("test")?.to_vec();
    let mut leaderboard = Vec::new();
    // Candidates that refitted, with their best trial and test predictions.
    let mut refitted: Vec<(usize, Best, Predictions)> = Vec::new();
    let mut fitted_models: Vec<(usize, Box<dyn promoml_core::FittedModel>)> = Vec::new();
    for (ci, best) in bests {
        let cand = &p.candidates[ci];
        let ctx = FitContext {
            seed: derive_seed(p.seed, &[4, ci as u64]),
            deadline,
            label: format!("{} refit on all training rows", cand.name),
            ..p.fit_context(p.seed)
        };
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
        let test = score_all(&metrics, &y_test, &pred)?;
        leaderboard.push((
            best.score,
            LeaderboardEntry {
                name: cand.name.clone(),
                kind: cand.model.kind().to_string(),
                params: params_json(&best.params),
                cv: best.cv.clone(),
                cv_std: best.cv_std,
                test,
                fit_s,
                n_trials: trials.iter().filter(|t: &&Trial| t.model == cand.name).count(),
                threshold: None,
            },
        ));
        refitted.push((ci, best, pred));
        fitted_models.push((ci, fitted));
    }
    let mut ensemble_summary = None;
    let mut ensemble_fit = None;
    if let Some(plan) = &p.ensemble
        && refitted.len() >= 2
    {
        obs.stage("fitting the ensemble on out-of-fold predictions");
        match fit_ensemble(p, plan, &metrics, &fold_data, (&train_ds, &test_ds), &mut refitted, &y_test) {
            Ok((entry, score, summary, fit)) => {
                leaderboard.push((score, entry));
                ensemble_summary = Some(summary);
                ensemble_fit = Some(fit);
            }
            Err(e) => failures.push(Failure { model: plan.name.clone(), error: e.to_string() }),
        }
    }
    // Binary tasks: each candidate's decision threshold, chosen on its out-of-fold predictions
    // of the training rows; its test accuracy and f1 are computed at it.
    if p.task == promoml_core::Task::Binary {
        let y_oof = oof_targets(&fold_data, n)?;
        for (ci, best, pred) in refitted.iter_mut() {
            let name = p.candidates[*ci].name.clone();
            let threshold = decide_threshold(p, &y_oof, || out_of_fold(p, *ci, best, &fold_data, n));
            if let Some(t) = threshold
                && let Some((_, e)) = leaderboard.iter_mut().find(|(_, e)| e.name == name)
            {
                rescore_at(&mut e.test, &metrics, &y_test, pred, t)?;
                e.threshold = Some(t);
            }
        }
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
    // The final model as one predictor (what the artifact saves and permutation importance
    // shuffles features for).
    let kind_of = |ci: usize| p.candidates[ci].model.kind().to_string();
    let mut take = |ci: usize| fitted_models.iter().position(|m| m.0 == ci).map(|i| fitted_models.swap_remove(i).1);
    let (final_model, final_pred) = match ensemble_fit.filter(|_| final_entry.kind.starts_with("ensemble.")) {
        Some(f) => {
            let layer1 =
                f.members.iter().map(|&ci| (p.candidates[ci].name.clone(), kind_of(ci), take(ci).expect("refitted")));
            let layer1 = layer1.collect();
            let layer2 =
                f.layer2.into_iter().map(|(ci, m)| (format!("{} (layer 2)", p.candidates[ci].name), kind_of(ci), m));
            let name = final_entry.name.clone();
            let model =
                crate::artifact::FinalModel::Ensemble { name, layer1, layer2: layer2.collect(), combiner: f.combiner };
            (model, f.pred)
        }
        None => {
            let (ci, _, pred) = refitted.iter().find(|r| p.candidates[r.0].name == final_entry.name).expect("final");
            let model = crate::artifact::FinalModel::Single {
                name: final_entry.name.clone(),
                kind: kind_of(*ci),
                model: take(*ci).expect("refitted"),
            };
            (model, pred.clone())
        }
    };
    // ROC, precision-recall and calibration points of the final model's test scores (binary).
    // Positive class = index 1.
    let curves = Some(&final_pred).filter(|_| p.task == promoml_core::Task::Binary).and_then(|pred| {
        let labels: Vec<bool> = y_test.iter().map(|&y| y == 1.0).collect();
        promoml_report::Curves::from_scores(&final_entry.name, &labels, &pred.scores())
            .map_err(|e| tracing::warn!("no test curves for {}: {e}", final_entry.name))
            .ok()
    });
    let t_importance = Instant::now();
    let (feature_importance, shap) =
        explain_final(p, obs, (&final_model, &final_entry.name), (&train_ds, &test_ds, &y_test), &loaded, deadline);
    let importance_s = t_importance.elapsed().as_secs_f64();
    let decision_threshold = final_entry.threshold.map(|value| promoml_report::DecisionThreshold {
        value,
        rule: match p.search.threshold {
            crate::plan::Threshold::MaxF1 => "max_f1".into(),
            crate::plan::Threshold::Fixed(_) => "fixed".into(),
        },
        positive_rate: labels.as_ref().map_or(0.0, |l| l.iter().filter(|&&c| c == 1).count() as f64 / n as f64),
    });
    let report = Report {
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
            bad_values_as_missing: loaded.bad_as_missing.clone(),
            identifier_columns: loaded.identifiers.clone(),
            suspected_leaks: leaks,
        },
        leaderboard,
        trials,
        failures,
        timing: Timing { total_s: t0.elapsed().as_secs_f64(), load_s, prepare_s, search_s, refit_s, importance_s },
        ensemble: ensemble_summary,
        curves,
        feature_importance,
        shap,
        anomaly: crate::tasks::anomaly::steps_section(&full),
        decision_threshold,
        // Optional sections (curves, importance, ...) are filled by their own stages.
        ..Report::default()
    };
    if let Some(req) = &opts.artifact {
        let (model, expected) =
            (crate::artifact::Fitted::Model(final_model), crate::artifact::Scored::Model(final_pred));
        crate::artifact::write_for_run(req, p, full, &loaded.train, &loaded.test, model, &expected)?;
    }
    Ok(Ran::Report(Box::new(report)))
}

/// Longest the report's SHAP summary explains further chunks of test rows.
const SHAP_BUDGET: std::time::Duration = std::time::Duration::from_secs(10);

/// When permutation importance started at `now` must stop: after `report.importance_budget_s`,
/// and with a run deadline no later than that deadline less the [`writing_reserve`], so that
/// the time budget bounds the whole run.
fn importance_deadline(p: &Pipeline, run_deadline: Option<Instant>, now: Instant) -> Instant {
    let own = now.checked_add(p.importance_budget).unwrap_or(now + std::time::Duration::from_secs(86_400 * 365));
    match (run_deadline, p.search.time_budget) {
        (Some(d), Some(b)) => own.min(d.checked_sub(writing_reserve(b)).unwrap_or(now)),
        _ => own,
    }
}

/// Fit the ensemble of the best refitted candidates: out-of-fold predictions of each member,
/// nested cross-validation of the combiner, then the combiner on all out-of-fold rows applied
/// to the members' test predictions. Returns the leaderboard entry, its CV score and a summary.
fn fit_ensemble(
    p: &Pipeline,
    plan: &crate::plan::EnsemblePlan,
    metrics: &[Metric],
    fold_data: &[Fold],
    (train_ds, test_ds): (&Dataset, &Dataset),
    refitted: &mut [(usize, Best, Predictions)],
    y_test: &[f64],
) -> Result<(LeaderboardEntry, f64, EnsembleSummary, EnsembleFit)> {
    let started = Instant::now();
    let n = train_ds.n_rows();
    let metric = p.search.metric;
    let mut order: Vec<usize> = (0..refitted.len()).collect();
    order.sort_by(|&a, &b| {
        let (x, y) = (refitted[a].1.score, refitted[b].1.score);
        if metric.higher_is_better() { y.total_cmp(&x) } else { x.total_cmp(&y) }
    });
    order.truncate(plan.max_members);
    let mut oofs = Vec::new();
    for &i in &order {
        let (ci, best, _) = &mut refitted[i];
        oofs.push(out_of_fold(p, *ci, best, fold_data, n)?);
    }
    let y = oof_targets(fold_data, n)?;
    let mut names: Vec<String> = order.iter().map(|&i| p.candidates[refitted[i].0].name.clone()).collect();
    let layer1_oof: Vec<&Predictions> = oofs.iter().collect();
    let layer1_test: Vec<&Predictions> = order.iter().map(|&i| &refitted[i].2).collect();
    let mut layer2: Vec<(Predictions, Predictions, Box<dyn promoml_core::FittedModel>)> = Vec::new();
    let mut layer2_cis: Vec<usize> = Vec::new();
    let (oof, test_preds): (Vec<&Predictions>, Vec<&Predictions>) = match plan.kind {
        EnsembleKind::Stacking { layers: 2, layer2_models, .. } => {
            let top: Vec<(usize, &Best)> =
                order.iter().take(layer2_models).map(|&i| (refitted[i].0, &refitted[i].1)).collect();
            layer2 = second_layer(p, &top, fold_data, train_ds, test_ds, &names, &layer1_oof, &layer1_test)?;
            names = top.iter().map(|(ci, _)| format!("{} (layer 2)", p.candidates[*ci].name)).collect();
            layer2_cis = top.iter().map(|(ci, _)| *ci).collect();
            (layer2.iter().map(|l| &l.0).collect(), layer2.iter().map(|l| &l.1).collect())
        }
        _ => (layer1_oof, layer1_test),
    };
    let fold_rows: Vec<Vec<usize>> = fold_data.iter().map(|f| f.rows.clone()).collect();
    let per_fold = ensemble::nested_cv(plan, p.task, metric, metrics, &oof, &y, &fold_rows)?;
    let mut cv = Scores::new();
    for m in metrics {
        cv.insert(m.name().to_string(), per_fold.iter().map(|s| s[m.name()]).sum::<f64>() / per_fold.len() as f64);
    }
    let fold_scores: Vec<f64> = per_fold.iter().map(|s| s[metric.name()]).collect();
    let score = cv[metric.name()];
    let cv_std = (fold_scores.iter().map(|v| (v - score).powi(2)).sum::<f64>() / fold_scores.len() as f64).sqrt();
    let all: Vec<usize> = (0..n).collect();
    let comb = ensemble::fit(&plan.kind, p.task, metric, &oof, &y, &all)?;
    let pred = comb.combine(&test_preds);
    pred.check(y_test.len(), &plan.name)?;
    let mut test = score_all(metrics, y_test, &pred)?;
    // The combiner's out-of-fold predictions choose its decision threshold (binary tasks).
    let threshold = decide_threshold(p, &y, || Ok(comb.combine(&oof)));
    if let Some(t) = threshold {
        rescore_at(&mut test, metrics, y_test, &pred, t)?;
    }
    let members: Vec<EnsembleMember> =
        names.iter().zip(&comb.weights).map(|(name, &w)| EnsembleMember { name: name.clone(), weight: w }).collect();
    let (kind, layers) = match plan.kind {
        EnsembleKind::Stacking { layers, .. } => ("stacking", layers),
        EnsembleKind::Greedy { .. } => ("greedy", 1),
    };
    let mut params: BTreeMap<String, serde_json::Value> =
        members.iter().map(|m| (m.name.clone(), serde_json::json!(m.weight))).collect();
    if !comb.intercepts.is_empty() {
        params.insert("(intercepts)".into(), serde_json::json!(comb.intercepts));
    }
    let entry = LeaderboardEntry {
        name: plan.name.clone(),
        kind: format!("ensemble.{kind}"),
        params,
        cv,
        cv_std,
        test,
        fit_s: started.elapsed().as_secs_f64(),
        n_trials: 0,
        threshold,
    };
    let summary = EnsembleSummary {
        name: plan.name.clone(),
        kind: kind.into(),
        members,
        intercepts: comb.intercepts.clone(),
        layers,
    };
    let members = order.iter().map(|&i| refitted[i].0).collect();
    let layer2 = layer2_cis.into_iter().zip(layer2.drain(..).map(|l| l.2)).collect();
    Ok((entry, score, summary, EnsembleFit { members, layer2, combiner: comb, pred }))
}

/// The training target of every row, as the folds' validation parts hold it (the order of
/// out-of-fold predictions).
fn oof_targets(fold_data: &[Fold], n: usize) -> Result<Vec<f64>> {
    let mut y = vec![0.0; n];
    for f in fold_data {
        for (r, &i) in f.rows.iter().enumerate() {
            y[i] = f.valid.target("validation")?[r];
        }
    }
    Ok(y)
}

/// A binary model's decision threshold (`search.threshold`): fixed, or the maximum-F1 one on its
/// out-of-fold predictions (from `oof`). `None` for other tasks, or when the predictions cannot
/// be had (warned).
fn decide_threshold(p: &Pipeline, y_oof: &[f64], oof: impl FnOnce() -> Result<Predictions>) -> Option<f64> {
    if p.task != promoml_core::Task::Binary {
        return None;
    }
    match p.search.threshold {
        crate::plan::Threshold::Fixed(t) => Some(t),
        crate::plan::Threshold::MaxF1 => match oof() {
            Ok(o) => promoml_core::metrics::max_f1_threshold(y_oof, &o.scores()),
            Err(e) => {
                tracing::warn!("no decision threshold chosen (accuracy and f1 at 0.5): {e}");
                None
            }
        },
    }
}

/// Recompute the threshold metrics (`accuracy`, `f1`) of `test` at `threshold`.
fn rescore_at(test: &mut Scores, metrics: &[Metric], y: &[f64], pred: &Predictions, threshold: f64) -> Result<()> {
    for m in metrics.iter().filter(|m| matches!(m, Metric::Accuracy | Metric::F1)) {
        test.insert(m.name().to_string(), m.score_at(y, pred, threshold)?);
    }
    Ok(())
}

/// What the artifact needs of a fitted ensemble.
struct EnsembleFit {
    /// Layer-1 members (candidate indices), in combiner (or layer-2 feature) order.
    members: Vec<usize>,
    /// Layer-2 models refitted on all training rows (2-layer stacks).
    layer2: Vec<(usize, Box<dyn promoml_core::FittedModel>)>,
    combiner: ensemble::Combiner,
    /// Test predictions.
    pred: Predictions,
}

/// A layer-2 model: its out-of-fold predictions, its test predictions and the refitted model.
type LayerTwoModel = (Predictions, Predictions, Box<dyn promoml_core::FittedModel>);

/// Layer 2 of a stack: each of the `top` candidates, with its best parameters, refitted on the
/// original features plus the layer-1 out-of-fold predictions, with the same folds. Returns per
/// model its out-of-fold and its test predictions. Needs cleaners that keep every training row
/// (so that out-of-fold rows line up with each fold's training rows).
#[allow(clippy::too_many_arguments)]
fn second_layer(
    p: &Pipeline,
    top: &[(usize, &Best)],
    fold_data: &[Fold],
    train_ds: &Dataset,
    test_ds: &Dataset,
    names: &[String],
    oof: &[&Predictions],
    test: &[&Predictions],
) -> Result<Vec<LayerTwoModel>> {
    let n = train_ds.n_rows();
    let dropped = fold_data.iter().any(|f| f.train.n_rows() + f.rows.len() != n);
    if dropped || oof.iter().any(|o| o.len() != n) {
        return Err(Error::config(
            "ensemble.layers",
            "2-layer stacking needs cleaners that keep every training row (a cleaner dropped rows); use layers = 1",
        ));
    }
    let folds: Vec<Fold> = fold_data
        .iter()
        .map(|f| {
            let tr = complement(n, &f.rows);
            Fold {
                train: with_predictions(&f.train, names, oof, Some(&tr)),
                valid: with_predictions(&f.valid, names, oof, Some(&f.rows)),
                rows: f.rows.clone(),
            }
        })
        .collect();
    let full = with_predictions(train_ds, names, oof, None);
    let test_x = with_predictions(test_ds, names, test, None);
    top.iter()
        .map(|&(ci, best)| {
            let cand = &p.candidates[ci];
            let preds: Vec<Predictions> = folds
                .par_iter()
                .enumerate()
                .map(|(f, fold)| {
                    let ctx =
                        FitContext { seed: derive_seed(p.seed, &[5, ci as u64, f as u64]), ..p.fit_context(p.seed) };
                    let pred = cand.model.fit(&fold.train, &best.params, &ctx)?.predict(&fold.valid)?;
                    pred.check(fold.valid.n_rows(), cand.model.kind())?;
                    Ok(pred)
                })
                .collect::<Result<_>>()?;
            let ctx = FitContext { seed: derive_seed(p.seed, &[6, ci as u64]), ..p.fit_context(p.seed) };
            let fitted = cand.model.fit(&full, &best.params, &ctx)?;
            let test_pred = fitted.predict(&test_x)?;
            test_pred.check(test_x.n_rows(), cand.model.kind())?;
            Ok((assemble_oof(n, &folds, &preds), test_pred, fitted))
        })
        .collect()
}
