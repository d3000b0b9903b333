//! `task = "anomaly"`: every `[[models]]` entry names a registered anomaly detector. Each is
//! fitted on the prepared training rows with the label column removed, scores the test rows,
//! and becomes a leaderboard entry named after its kind. A label column (`data.target`, optional)
//! only scores the detectors (ROC-AUC, PR-AUC, precision at the contamination share); nothing is
//! fitted on it. With no `[data.split]` (or `kind = "none"`) every row is fitted on and scored,
//! the unsupervised protocol of the ODDS/PyOD benchmarks.
//!
//! The final detector (the leaderboard's first, the one the artifact saves) is never chosen by
//! the labels of the rows it scores: with labelled training rows, by K-fold cross-validation on
//! them (each detector fitted without labels on K-1 folds, its ROC-AUC measured on the held-out
//! fold's labels); without (no label column, or a single class), by the label-free rule: the
//! first detector listed in `[[models]]`. A detector's seed follows its name, not its place.
//!
//! Also here: [`steps_section`], the report section of `anomaly.*` cleaners and feature steps in
//! any task.

use super::{Ran, Searched, search_study};
use crate::cv::{complement, derive_seed, folds, name_seed};
use crate::data::{self, class_labels};
use crate::observe::Observer;
use crate::options::RunOptions;
use crate::plan::{Pipeline, SplitRule};
use crate::prep::{Prepared, TargetEncoding};
use crate::search::Objective;
use crate::study::StudyHeader;
use promoml_core::metrics::{average_precision, precision_at_k, roc_auc};
use promoml_core::{ColumnData, Dataset, Error, FitContext, ParamValue, Params, Result, SearchSpace, Task};
use promoml_report::{AnomalySection, DetectorSummary, Quantiles, Selection};
use promoml_report::{DataSummary, Failure, LeaderboardEntry, Report, SCHEMA_VERSION, Scores, Timing};
use rayon::prelude::*;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use crate::anomaly::DetectorCandidate;

/// The report section of `anomaly.*` steps in a non-anomaly run (`None` when there are none).
pub fn steps_section(prepared: &Prepared) -> Option<AnomalySection> {
    let steps = prepared.step_summaries();
    (!steps.is_empty()).then(|| AnomalySection { steps, ..AnomalySection::default() })
}

/// Quantiles of scores, for the report.
fn quantiles(scores: &[f64]) -> Quantiles {
    let mut s = scores.to_vec();
    s.sort_by(f64::total_cmp);
    let q = |p: f64| s[((s.len() - 1) as f64 * p).round() as usize];
    Quantiles { min: q(0.0), p50: q(0.5), p90: q(0.9), p99: q(0.99), max: q(1.0) }
}

/// 0/1 labels of the label column (1 = abnormal: `data.positive`, else the last class in sorted
/// order, i.e. `1` of a 0/1 column).
fn labels(col: &ColumnData, p: &Pipeline, what: &str) -> Result<Vec<f64>> {
    let target = &p.data.target;
    let classes = class_labels(col, p.data.positive.as_deref(), Task::Binary, target)
        .map_err(|e| Error::data(format!("label column `{target}` in the {what} rows: {e}")))?;
    (0..col.len())
        .map(|i| {
            let v = col.value_string(i).ok_or_else(|| {
                Error::data(format!("label `{target}` is missing in {what} row {} (labels score detectors)", i + 1))
            })?;
            Ok(if v == classes[1] { 1.0 } else { 0.0 })
        })
        .collect()
}

/// Seed tag of a detector's fit on all training rows (with the name's seed after it).
const FIT_SEED: u64 = 6;
/// Seed tag of a detector's cross-validation fits (name's seed and fold after it).
const CV_SEED: u64 = 7;

/// The training labels that choose the final detector by cross-validation, or why there are
/// none usable (then the label-free rule applies). Missing labels are an error, as in the test
/// rows.
fn training_labels(col: Option<&ColumnData>, p: &Pipeline, k: usize) -> Result<std::result::Result<Vec<f64>, String>> {
    let label = &p.data.target;
    let Some(col) = col else {
        return Ok(Err(format!("the training rows have no label column `{label}`")));
    };
    let classes: BTreeSet<String> = (0..col.len()).filter_map(|i| col.value_string(i)).collect();
    if classes.len() < 2 {
        return Ok(Err(format!("the training labels of `{label}` have {} class(es)", classes.len())));
    }
    let y = labels(col, p, "training")?;
    let abnormal = y.iter().filter(|&&v| v == 1.0).count();
    let normal = y.len() - abnormal;
    if abnormal < k || normal < k {
        return Ok(Err(format!(
            "{abnormal} abnormal and {normal} normal training rows are too few for {k}-fold cross-validation"
        )));
    }
    Ok(Ok(y))
}

/// One cross-validation fold of an anomaly task: preparation fitted on the other folds' rows.
struct CvFold {
    /// Prepared rows of the other folds (label removed).
    train: Dataset,
    /// Prepared held-out rows.
    valid: Dataset,
    /// 0/1 labels of the held-out rows.
    y: Vec<f64>,
}

/// The detectors of an anomaly task as candidates of the search: one trial each (their
/// parameters are fixed), each fold fitted without labels on the other folds' rows and scored on
/// the held-out fold's labels (ROC-AUC ranks, PR-AUC is reported).
struct Detectors<'a> {
    p: &'a Pipeline,
    detectors: &'a [DetectorCandidate],
    spaces: Vec<SearchSpace>,
    cv: &'a [CvFold],
}

impl<'a> Detectors<'a> {
    fn new(p: &'a Pipeline, detectors: &'a [DetectorCandidate], cv: &'a [CvFold]) -> Detectors<'a> {
        Detectors { p, detectors, spaces: detectors.iter().map(|d| d.detector.space()).collect(), cv }
    }
}

impl Objective for Detectors<'_> {
    type Output = ();

    fn candidates(&self) -> usize {
        self.detectors.len()
    }
    fn name(&self, ci: usize) -> &str {
        &self.detectors[ci].name
    }
    fn trials(&self, _ci: usize) -> usize {
        1
    }
    fn space(&self, ci: usize) -> &SearchSpace {
        &self.spaces[ci]
    }
    fn defaults(&self, ci: usize) -> Params {
        self.detectors[ci].params.clone()
    }
    fn cost(&self, _ci: usize, _params: &Params) -> f64 {
        // Detectors have no cost model: alike, so the declaration order decides the first round.
        self.cv.first().map_or(1.0, |f| (f.train.n_rows() * f.train.n_features().max(1)) as f64)
    }
    fn folds(&self) -> usize {
        self.cv.len()
    }
    fn ranking(&self) -> (&str, bool) {
        ("roc_auc", true)
    }
    fn fit_fold(
        &self,
        ci: usize,
        _number: usize,
        f: usize,
        params: &Params,
        deadline: Option<Instant>,
    ) -> Result<(Scores, ())> {
        let (p, cand, fold) = (self.p, &self.detectors[ci], &self.cv[f]);
        let seed = derive_seed(p.seed, &[CV_SEED, name_seed(&cand.name), f as u64]);
        let ctx = FitContext { seed, deadline, ..p.fit_context(p.seed) };
        let scores = cand.detector.fit(&fold.train.x, params, &ctx)?.score(&fold.valid.x)?;
        if let Some(r) = scores.iter().position(|s| !s.is_finite()) {
            return Err(Error::data(format!("fold {}: score of held-out row {} is not finite", f + 1, r + 1)));
        }
        let roc = roc_auc(&fold.y, &scores)?;
        let pr = average_precision(&fold.y, &scores)?;
        Ok((Scores::from([("roc_auc".to_string(), roc), ("pr_auc".to_string(), pr)]), ()))
    }
}

/// A detector refitted on all training rows and its scores.
struct FinalFit {
    fitted: Box<dyn promoml_core::FittedDetector>,
    fit_s: f64,
    score_s: f64,
    train_scores: Vec<f64>,
    test_scores: Vec<f64>,
    contamination: Option<f64>,
    threshold: Option<f64>,
    flagged: Option<usize>,
}

/// Fit `cand` on every prepared training row (without labels), score the training and test
/// rows, and draw its threshold from the training scores. The error says why it failed, for the
/// report's failures.
fn fit_final(
    p: &Pipeline,
    cand: &DetectorCandidate,
    (train_ds, test_ds): (&Dataset, &Dataset),
) -> std::result::Result<FinalFit, String> {
    let ctx = FitContext { seed: derive_seed(p.seed, &[FIT_SEED, name_seed(&cand.name)]), ..p.fit_context(p.seed) };
    let t = Instant::now();
    let fitted = cand.detector.fit(&train_ds.x, &cand.params, &ctx).map_err(|e| e.to_string())?;
    let fit_s = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let scored = fitted.score(&train_ds.x).and_then(|tr| Ok((tr, fitted.score(&test_ds.x)?)));
    let (train_scores, test_scores) = scored.map_err(|e| format!("scoring: {e}"))?;
    let score_s = t.elapsed().as_secs_f64();
    if let Some(k) = test_scores.iter().position(|s| !s.is_finite()) {
        return Err(format!("score of test row {} is not finite", k + 1));
    }
    // Threshold: the training scores' (1 - contamination) quantile, as PyOD draws it.
    let contamination = match cand.params.get("contamination") {
        Some(ParamValue::Float(c)) => Some(*c),
        _ => None,
    };
    let mut sorted = train_scores.clone();
    sorted.sort_by(f64::total_cmp);
    let threshold = contamination.map(|c| {
        let pos = ((1.0 - c) * (sorted.len() - 1) as f64).clamp(0.0, (sorted.len() - 1) as f64);
        let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
        sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
    });
    let flagged = threshold.map(|t| test_scores.iter().filter(|&&s| s > t).count());
    Ok(FinalFit { fitted, fit_s, score_s, train_scores, test_scores, contamination, threshold, flagged })
}

/// Run an anomaly pipeline; with `artifact`, also write the final detector (the leaderboard's
/// first) as a model artifact, checked to reproduce the test scores bit for bit once reloaded.
///
/// With `search.time_budget_s`, a detector (after the first) that would start once the budget
/// is spent is not fitted and is listed as a failure.
/// An anomaly problem loaded and prepared, the label taken out of the frames.
struct Problem {
    loaded: data::Loaded,
    /// 0/1 labels of the test rows, when there is a label column.
    y_test: Option<Vec<f64>>,
    /// 0/1 labels of the training rows, or why they cannot choose the final detector.
    y_train: std::result::Result<Vec<f64>, String>,
    /// Training rows per label value.
    class_counts: BTreeMap<String, usize>,
    prepared: Prepared,
    train_ds: Dataset,
    test_ds: Dataset,
    dropped: usize,
    /// Cross-validation folds, when the training labels can choose the final detector.
    cv: Option<Vec<CvFold>>,
    load_s: f64,
    prepare_s: f64,
}

/// Load the data, take the label out, fit the preparation on the training rows, and cut
/// label-stratified folds (each with its own preparation) when training labels can choose
/// the final detector.
fn prepare(p: &Pipeline, deadline: Option<Instant>, obs: &dyn Observer) -> Result<Problem> {
    let t0 = Instant::now();
    obs.stage("loading data");
    let mut loaded = data::load(&p.data, p.task)?;
    let load_s = t0.elapsed().as_secs_f64();

    let t_prep = Instant::now();
    obs.stage("preparing features (label removed)");
    let label = &p.data.target;
    let k = p.search.cv_folds;
    let (y_test, y_train, class_counts) = if label.is_empty() {
        (None, Err("the pipeline names no label column (`data.target`)".to_string()), BTreeMap::new())
    } else {
        let train_col = loaded.train.remove(label).map(|c| c.data);
        let test_col = loaded.test.remove(label).ok_or_else(|| Error::data(format!("no label column `{label}`")))?;
        let y = labels(&test_col.data, p, "test")?;
        let mut counts = BTreeMap::new();
        if let Some(c) = &train_col {
            for i in 0..c.len() {
                *counts.entry(c.value_string(i).unwrap_or_else(|| "(missing)".into())).or_insert(0) += 1;
            }
        }
        (Some(y), training_labels(train_col.as_ref(), p, k)?, counts)
    };
    // The label is gone from the frames; the encoding's column names nothing they contain.
    let target = TargetEncoding { column: label.clone(), task: Task::Anomaly, classes: vec![] };
    let n_train = loaded.train.n_rows();
    let (prepared, train_ds, dropped) =
        Prepared::fit_until(p, &target, loaded.train.clone(), loaded.sequences.clone(), deadline)?;
    let test_ds = prepared.transform(loaded.test.clone(), "test")?;
    // Cross-validation folds of the training rows (stratified by label, preparation refitted
    // in each), when training labels can choose the final detector.
    let cv: Option<Vec<CvFold>> = match &y_train {
        Ok(y) => {
            let rows =
                folds(n_train, k, Some(&y.iter().map(|&v| v as usize).collect::<Vec<_>>()), derive_seed(p.seed, &[1]));
            let cv = rows
                .par_iter()
                .map(|val| {
                    let tr = complement(n_train, val);
                    let (prep, train, _) =
                        Prepared::fit_until(p, &target, loaded.train.take(&tr), loaded.sequences.clone(), deadline)?;
                    let valid = prep.transform(loaded.train.take(val), "validation")?;
                    Ok(CvFold { train, valid, y: val.iter().map(|&i| y[i]).collect() })
                })
                .collect::<Result<_>>()?;
            Some(cv)
        }
        Err(why) => {
            tracing::info!("anomaly: the final detector is the first listed (label-free rule): {why}");
            None
        }
    };
    let prepare_s = t_prep.elapsed().as_secs_f64();

    Ok(Problem { loaded, y_test, y_train, class_counts, prepared, train_ds, test_ds, dropped, cv, load_s, prepare_s })
}

pub(crate) fn run(p: &Pipeline, obs: &dyn Observer, opts: &RunOptions, worker: bool) -> Result<Ran> {
    let artifact = opts.artifact.as_ref();
    let plan = p.anomaly.as_ref().ok_or_else(|| Error::config("pipeline.task", "an anomaly task without detectors"))?;
    let t0 = Instant::now();
    let deadline = p.search.time_budget.and_then(|b| t0.checked_add(b));
    let Problem { loaded, y_test, y_train, class_counts, prepared, train_ds, test_ds, dropped, cv, load_s, prepare_s } =
        prepare(p, deadline, obs)?;
    let (label, k, n_train) = (&p.data.target, p.search.cv_folds, loaded.train.n_rows());

    let t_fit = Instant::now();
    // Cross-validation of every detector through the search loop (one trial each).
    let mut trials = Vec::new();
    let mut cv_scores: BTreeMap<String, std::result::Result<(Scores, f64), String>> = BTreeMap::new();
    if let Some(folds) = &cv {
        obs.stage("cross-validating the detectors on the training labels");
        let obj = Detectors::new(p, &plan.detectors, folds);
        let header = StudyHeader::for_run(p, &[&loaded.train, &loaded.test])?;
        let outcome = match search_study(p, &obj, opts, &header, worker, (deadline, 0.0, 0), obs)? {
            Searched::Led(o) => o,
            Searched::Worked(w) => return Ok(Ran::Worked(w)),
        };
        for (ci, found) in outcome.bests {
            cv_scores.insert(plan.detectors[ci].name.clone(), Ok((found.cv, found.cv_std)));
        }
        for f in outcome.failures {
            cv_scores.insert(f.model, Err(f.error));
        }
        trials = outcome.trials;
    }
    let mut leaderboard: Vec<(f64, LeaderboardEntry)> = Vec::new();
    let mut failures = Vec::new();
    let mut detectors_section = Vec::new();
    // (name, kind, fitted detector, threshold, test scores) of every detector that scored.
    let mut fitted_all = Vec::new();
    for cand in &plan.detectors {
        if !fitted_all.is_empty() && deadline.is_some_and(|d| Instant::now() >= d) {
            let budget = p.search.time_budget.map_or(0.0, |b| b.as_secs_f64());
            failures.push(Failure {
                model: cand.name.clone(),
                error: format!("not fitted: the time budget (search.time_budget_s = {budget}) was spent"),
            });
            continue;
        }
        obs.stage(&format!("fitting {}", cand.name));
        let (cv_scores, cv_std) = match cv_scores.remove(&cand.name) {
            Some(Ok(s)) => s,
            Some(Err(e)) => {
                failures.push(Failure { model: cand.name.clone(), error: format!("cross-validation: {e}") });
                continue;
            }
            None => (Scores::new(), 0.0),
        };
        let f = match fit_final(p, cand, (&train_ds, &test_ds)) {
            Ok(f) => f,
            Err(error) => {
                failures.push(Failure { model: cand.name.clone(), error });
                continue;
            }
        };
        let FinalFit { fitted, fit_s, score_s, train_scores, test_scores, contamination, threshold, flagged } = f;
        let mut test = Scores::new();
        if let Some(y) = &y_test {
            test.insert("roc_auc".into(), roc_auc(y, &test_scores)?);
            test.insert("pr_auc".into(), average_precision(y, &test_scores)?);
            let share = contamination.unwrap_or_else(|| y.iter().sum::<f64>() / y.len() as f64);
            let k = ((share * y.len() as f64).round() as usize).clamp(1, y.len());
            test.insert("precision_at_contamination".into(), precision_at_k(y, &test_scores, k)?);
        }
        detectors_section.push(DetectorSummary {
            name: cand.name.clone(),
            kind: cand.detector.kind().to_string(),
            contamination,
            threshold,
            flagged_test_rows: flagged,
            score_s,
            train_scores: quantiles(&train_scores),
            test_scores: quantiles(&test_scores),
        });
        let params = crate::search::params_json(&cand.params);
        // Ranked by cross-validated ROC-AUC on training labels; without them every detector
        // ranks alike and declaration order decides. Never by the test labels.
        let rank = cv_scores.get("roc_auc").copied().unwrap_or(0.0);
        fitted_all.push((cand.name.clone(), cand.detector.kind().to_string(), fitted, threshold, test_scores));
        leaderboard.push((
            rank,
            LeaderboardEntry {
                name: cand.name.clone(),
                kind: cand.detector.kind().to_string(),
                params,
                cv: cv_scores,
                cv_std,
                test,
                fit_s,
                n_trials: 1,
                threshold: None,
            },
        ));
    }
    if leaderboard.is_empty() {
        let why: Vec<String> = failures.iter().map(|f| format!("{}: {}", f.model, f.error)).collect();
        return Err(Error::data(format!("no detector could be fitted:\n  {}", why.join("\n  "))));
    }
    // Best cross-validated ROC-AUC first (stable: ties, and every detector without training
    // labels, keep declaration order).
    leaderboard.sort_by(|a, b| b.0.total_cmp(&a.0));
    let leaderboard: Vec<LeaderboardEntry> = leaderboard.into_iter().map(|(_, e)| e).collect();
    let search_s = t_fit.elapsed().as_secs_f64();
    let all_rows = matches!(
        &p.data.source,
        crate::plan::DataSource::File { split: SplitRule::All, .. }
            | crate::plan::DataSource::Synthetic { split: SplitRule::All, .. }
    );
    let protocol = if all_rows {
        "unsupervised: detectors fitted on every row without the label, scored on the same rows"
    } else {
        "detectors fitted on the training rows without the label, scored on the test rows"
    };
    let selection = match &y_train {
        Ok(_) => Selection {
            rule: "cross-validation".into(),
            metric: Some("roc_auc".into()),
            folds: Some(k),
            detail: "each detector fitted without labels on the other folds of the training rows, scored on the held-out fold against its labels".into(),
        },
        Err(why) => Selection { rule: "first listed".into(), metric: None, folds: None, detail: why.clone() },
    };
    let section = AnomalySection {
        protocol: Some(protocol.to_string()),
        label: (!label.is_empty()).then(|| label.clone()),
        selection: Some(selection),
        detectors: detectors_section,
        steps: prepared.step_summaries(),
    };
    let final_entry = &leaderboard[0];
    let n_features = prepared.feature_names().len();
    if let Some(req) = artifact {
        let at = fitted_all.iter().position(|f| f.0 == final_entry.name).expect("the final detector was fitted");
        let (name, kind, detector, threshold, scores) = fitted_all.swap_remove(at);
        let expected = crate::artifact::Scored::anomaly(scores, threshold);
        let model = crate::artifact::AnomalyModel { name, kind, detector, threshold };
        let model = crate::artifact::Fitted::Anomaly(model);
        crate::artifact::write_for_run(req, p, prepared, &loaded.train, &loaded.test, model, &expected)?;
    }
    Ok(Ran::Report(Box::new(Report {
        schema_version: SCHEMA_VERSION,
        promoml_version: env!("CARGO_PKG_VERSION").to_string(),
        pipeline: p.name.clone(),
        task: p.task.name().to_string(),
        seed: p.seed,
        metric: "roc_auc".into(),
        higher_is_better: true,
        final_model: final_entry.name.clone(),
        test: final_entry.test.clone(),
        data: DataSummary {
            source: loaded.description.clone(),
            train_rows: n_train,
            test_rows: loaded.test.n_rows(),
            dropped_train_rows: dropped,
            columns: loaded.columns,
            missing_cells: loaded.train.columns().iter().map(|c| c.data.missing_count()).sum(),
            features: n_features,
            classes: class_counts,
            bad_values_as_missing: loaded.bad_as_missing.clone(),
            identifier_columns: loaded.identifiers.clone(),
            suspected_leaks: Vec::new(),
        },
        leaderboard,
        failures,
        timing: Timing {
            total_s: t0.elapsed().as_secs_f64(),
            load_s,
            prepare_s,
            search_s,
            refit_s: 0.0,
            importance_s: 0.0,
        },
        anomaly: Some(section),
        trials,
        ..Report::default()
    })))
}
