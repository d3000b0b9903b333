//! Running an uplift pipeline: load, take the treatment (and KPI, truth, key) columns out of
//! the features, search every learner × base model by cross-validated Qini with the configured
//! optimiser, refit the best trial of each on all training rows, score it once on the test rows
//! with bootstrap intervals, average the best into an uplift ensemble, and optimise the policy.

use super::{Ran, Searched, search_study};
use crate::artifact::{Fitted, Scored};
use crate::cv::{complement, derive_seed, folds};
use crate::data;
use crate::observe::Observer;
use crate::options::RunOptions;
use crate::search::{Found, Outcome, params_json, recompute};
use crate::study::StudyHeader;

mod objective;

use crate::plan::Pipeline;
use crate::prep::{Prepared, TargetEncoding};
use crate::uplift::config::{Budget, PolicyPlan, Propensity, UpliftMetric, UpliftPlan};
use crate::uplift::learners::{self, Effects, FittedLearner, UpliftData};
use crate::uplift::metrics as um;
use crate::uplift::model::{PolicyRule, UpliftModel, UpliftScores};
use crate::uplift::policy::{self, Logged};
use objective::{Fold, Uplift};
use promoml_core::{ColumnData, Dataset, Error, FitContext, Frame, Model, Params, Result, Rng, Task};
use promoml_report::{
    ArmKpis, ArmMetrics, Calibration, DataSummary, Failure, Interval, LeaderboardEntry, PolicyRow, PolicySection,
    Report, SCHEMA_VERSION, Scores, Timing, Trial, UpliftSection,
};
use rand::{Rng as _, SeedableRng};
use rayon::prelude::*;
use std::collections::BTreeMap;
use std::time::Instant;

/// Columns taken out of a frame before preparation.
struct Reserved {
    arm: Vec<usize>,
    kpis: BTreeMap<String, Vec<f64>>,
    truth: BTreeMap<String, Vec<f64>>,
    key: Option<Vec<String>>,
}

/// One row-subset of the problem, ready for learners.
struct Part {
    ds: Dataset,
    arm: Vec<usize>,
    propensity: Vec<Vec<f64>>,
}

impl Part {
    fn view(&self, arms: usize) -> UpliftData<'_> {
        UpliftData { data: &self.ds, arm: &self.arm, arms, propensity: &self.propensity }
    }
}

fn numeric_column(frame: &Frame, name: &str, role: &str) -> Result<Vec<f64>> {
    let c = frame.require(name, role)?;
    match &c.data {
        ColumnData::Numeric(_) | ColumnData::Boolean(_) => Ok((0..c.data.len()).map(|i| c.data.value_f64(i)).collect()),
        other => Err(Error::data(format!(
            "{role} `{name}` is {:?}, not numeric: an uplift outcome must be a number (0/1 or true/false for binary outcomes)",
            other.column_type()
        ))),
    }
}

/// Arms of the plan in index order (control first), resolving an empty list from the data.
fn resolve_arms(u: &UpliftPlan, train: &Frame) -> Result<Vec<String>> {
    let col = train.column(&u.column).ok_or_else(|| {
        let hint = promoml_core::did_you_mean(&u.column, train.names())
            .map(|s| format!("; did you mean `{s}`?"))
            .unwrap_or_default();
        Error::config(
            "data.treatment.column",
            format!("treatment column `{}` is not in the training data{hint}", u.column),
        )
    })?;
    let mut values: Vec<String> = Vec::new();
    for i in 0..col.data.len() {
        match col.data.value_string(i) {
            Some(v) => values.push(v),
            None => {
                return Err(Error::data(format!(
                    "treatment column `{}` is missing in training row {}; every row needs its arm",
                    u.column,
                    i + 1
                )));
            }
        }
    }
    values.sort();
    values.dedup();
    if !values.contains(&u.control) {
        return Err(Error::config(
            "data.treatment.control",
            format!(
                "control value \"{}\" does not occur in treatment column `{}` of the training rows (values: {})",
                u.control,
                u.column,
                values.join(", ")
            ),
        ));
    }
    let arms: Vec<String> =
        if u.arms.is_empty() { values.iter().filter(|v| **v != u.control).cloned().collect() } else { u.arms.clone() };
    if arms.is_empty() {
        return Err(Error::data(format!("treatment column `{}` holds only the control value", u.column)));
    }
    for a in &arms {
        if !values.contains(a) {
            return Err(Error::config(
                "data.treatment.arms",
                format!(
                    "arm \"{a}\" has no rows in the training data (values of `{}`: {})",
                    u.column,
                    values.join(", ")
                ),
            ));
        }
    }
    let mut all = vec![u.control.clone()];
    all.extend(arms);
    Ok(all)
}

/// Keep the rows of modelled arms, take the reserved columns out, and return the frame with
/// each row's arm index.
/// `id` is the `data.id` column of `frame`'s rows (taken out at load), which `policy.key` may name.
fn reserve(
    frame: &Frame,
    id: Option<&promoml_core::Column>,
    u: &UpliftPlan,
    target: &str,
    arms: &[String],
    what: &str,
) -> Result<(Frame, Reserved)> {
    let col = frame.require(&u.column, "treatment")?;
    let mut keep = Vec::new();
    let mut arm = Vec::new();
    for i in 0..frame.n_rows() {
        let v = col.data.value_string(i).ok_or_else(|| {
            Error::data(format!("treatment column `{}` is missing in {what} row {}", u.column, i + 1))
        })?;
        if let Some(a) = arms.iter().position(|x| *x == v) {
            keep.push(i);
            arm.push(a);
        }
    }
    for (a, name) in arms.iter().enumerate() {
        if !arm.contains(&a) {
            return Err(Error::data(format!("arm \"{name}\" of `{}` has no {what} rows", u.column)));
        }
    }
    let mut f = frame.take(&keep);
    f.remove(&u.column);
    let mut kpis = BTreeMap::new();
    for (name, c) in &u.kpis {
        kpis.insert(name.clone(), numeric_column(&f, c, &format!("KPI column ({name})"))?);
    }
    let mut truth = BTreeMap::new();
    let mut key = None;
    if let Some(p) = &u.policy {
        for (a, c) in &p.true_outcome {
            if !arms.contains(a) {
                return Err(Error::config(
                    format!("policy.true_outcome.{a}"),
                    format!("\"{a}\" is not a modelled arm (arms: {})", arms.join(", ")),
                ));
            }
            truth.insert(a.clone(), numeric_column(&f, c, "true outcome column")?);
        }
        if let Some(k) = &p.key {
            let data = match id.filter(|c| c.name == *k) {
                Some(c) => c.data.take(&keep),
                None => f.require(k, "policy key")?.data.clone(),
            };
            key = Some((0..data.len()).map(|i| data.value_string(i).unwrap_or_default()).collect());
        }
    }
    for c in u.reserved_columns() {
        if c != target {
            f.remove(&c);
        }
    }
    Ok((f, Reserved { arm, kpis, truth, key }))
}

fn propensities(
    u: &UpliftPlan,
    arms: &[String],
    train: &Part,
    others: &[&Dataset],
    base: &FitContext,
) -> Result<Vec<Vec<Vec<f64>>>> {
    let k = arms.len();
    let constant = |p: Vec<f64>| -> Vec<Vec<Vec<f64>>> {
        std::iter::once(train.ds.n_rows())
            .chain(others.iter().map(|d| d.n_rows()))
            .map(|n| vec![p.clone(); n])
            .collect()
    };
    match &u.propensity {
        Propensity::Frequency => {
            let n = train.arm.len() as f64;
            Ok(constant((0..k).map(|a| train.arm.iter().filter(|&&x| x == a).count() as f64 / n).collect()))
        }
        Propensity::Given(g) => {
            let mut p = Vec::new();
            for a in arms {
                p.push(*g.get(a).ok_or_else(|| {
                    Error::config(format!("uplift.propensity.{a}"), format!("no propensity given for arm \"{a}\""))
                })?);
            }
            let s: f64 = p.iter().sum();
            Ok(constant(p.into_iter().map(|v| v / s).collect()))
        }
        Propensity::Model(model) => {
            let mut ds = train.ds.clone();
            ds.y = Some(train.arm.iter().map(|&a| a as f64).collect());
            ds.classes = arms.to_vec();
            let fitted = model.fit(
                &ds,
                &model.space().defaults(),
                &FitContext { seed: derive_seed(base.seed, &[7]), label: "propensity model".into(), ..base.clone() },
            )?;
            let mut out = Vec::new();
            for d in std::iter::once(&train.ds).chain(others.iter().copied()) {
                let plain = Dataset::from_x(d.x.clone(), d.feature_names.clone());
                let pred = fitted.predict(&plain)?;
                pred.check(d.n_rows(), model.kind())?;
                let promoml_core::Predictions::Proba(pr) = pred else {
                    return Err(Error::model(model.kind(), "a propensity model must return class probabilities"));
                };
                out.push(
                    pr.rows()
                        .into_iter()
                        .map(|r| {
                            let v: Vec<f64> = r.iter().map(|p| p.clamp(0.01, 1.0)).collect();
                            let s: f64 = v.iter().sum();
                            v.into_iter().map(|p| p / s).collect()
                        })
                        .collect(),
                );
            }
            Ok(out)
        }
    }
}

/// Scores of effects against outcomes, averaged over the arms (each arm versus control); with a
/// policy `rule` and predicted outcome levels, also `policy_value`: the inverse-propensity
/// weighted value per customer, on these rows, of the assignment the outcomes make under the
/// rule's values, costs and budget (effect levels as predicted, not calibrated).
fn score(
    eff: &Effects,
    y: &[f64],
    part: (&[usize], &[Vec<f64>]),
    u: &UpliftPlan,
    rule: Option<&PolicyRule>,
) -> Result<Scores> {
    let (arm, propensity) = part;
    let mut s = Scores::new();
    let n_arms = eff.tau.len();
    for a in 1..=n_arms {
        let r: Vec<usize> = (0..arm.len()).filter(|&i| arm[i] == 0 || arm[i] == a).collect();
        let ys: Vec<f64> = r.iter().map(|&i| y[i]).collect();
        let ts: Vec<u8> = r.iter().map(|&i| u8::from(arm[i] == a)).collect();
        let us: Vec<f64> = r.iter().map(|&i| eff.tau[a - 1][i]).collect();
        let mut add = |name: &str, v: f64| *s.entry(name.to_string()).or_insert(0.0) += v / n_arms as f64;
        add("qini_auc", um::qini_auc_score(&ys, &us, &ts)?);
        if u.outcome == Task::Binary {
            add("uplift_auc", um::uplift_auc_score(&ys, &us, &ts)?);
        }
        add(&at_k_name(u.k), um::uplift_at_k(&ys, &us, &ts, u.k)?);
    }
    if let (Some(rule), Some(mu)) = (rule, &eff.mu) {
        let (assignment, _) = rule.choose(mu);
        let log = Logged { arm, y, propensity, value: &rule.value, cost: &rule.cost, mu: None };
        let rows: Vec<usize> = (0..arm.len()).collect();
        s.insert("policy_value".into(), policy::evaluate(&log, &assignment.arm, &rows).ipw);
    }
    Ok(s)
}

/// Effects with outcome levels: unchanged when the learner has an outcome model; otherwise (DR
/// and R learners) when candidates are ranked by `policy_value`, a control outcome model of the
/// same base model fitted on `train` gives the control level of the rows of `ds`.
fn with_outcomes(
    eff: Effects,
    base: (&dyn Model, &Params),
    u: &UpliftPlan,
    train: &UpliftData<'_>,
    ds: &Dataset,
    ctx: &FitContext,
) -> Result<Effects> {
    if eff.mu.is_some() || u.metric != UpliftMetric::PolicyValue {
        return Ok(eff);
    }
    let m = learners::fit_control_model(base.0, base.1, u.outcome, train, ctx)?;
    let mu = crate::uplift::model::with_control(learners::predict_control(m.as_ref(), ds)?, &eff);
    Ok(Effects { mu: Some(mu), ..eff })
}

/// The policy rule of `pp` over `arms` (control first) with effect calibration `calibration`
/// (one `(intercept, slope)` per treatment arm).
fn policy_rule(pp: &PolicyPlan, arms: &[String], calibration: Vec<(f64, f64)>) -> PolicyRule {
    PolicyRule {
        value: arms.iter().map(|a| pp.value_of(a)).collect(),
        cost: arms.iter().map(|a| pp.cost_of(a)).collect(),
        budget: pp.budget,
        calibration,
    }
}

fn at_k_name(k: f64) -> String {
    format!("uplift_at_{}", (k * 100.0).round() as u32)
}

fn metric_key(m: UpliftMetric, k: f64) -> String {
    match m {
        UpliftMetric::UpliftAtK => at_k_name(k),
        other => other.name().to_string(),
    }
}

/// Bootstrap resamples of `n` rows (seeded).
fn resamples(n: usize, b: usize, seed: u64) -> Vec<Vec<usize>> {
    let mut rng = Rng::seed_from_u64(seed);
    (0..b).map(|_| (0..n).map(|_| rng.random_range(0..n)).collect()).collect()
}

fn interval(value: f64, boot: &[Vec<usize>], f: &(dyn Fn(&[usize]) -> Option<f64> + Sync)) -> Interval {
    if boot.is_empty() {
        return Interval { value, low: None, high: None };
    }
    let mut v: Vec<f64> = boot.par_iter().filter_map(|r| f(r)).filter(|x| x.is_finite()).collect();
    v.sort_by(f64::total_cmp);
    if v.len() < boot.len() / 2 {
        return Interval { value, low: None, high: None };
    }
    Interval { value, low: Some(um::percentile(&v, 0.025)), high: Some(um::percentile(&v, 0.975)) }
}

/// Run an uplift pipeline (see the module docs); as a `worker`, evaluate trials of a shared
/// study instead of reporting. With `opts.artifact`, also write the final model as a model
/// artifact (checked to reproduce the test effects and assignments bit for bit once reloaded).
/// An uplift problem loaded and prepared: the training and test rows with their arms and
/// propensities, the held-back columns (KPIs, true outcomes, policy key), and the
/// cross-validation folds.
struct Problem {
    loaded: data::Loaded,
    arms: Vec<String>,
    train_frame: Frame,
    test_frame: Frame,
    test_r: Reserved,
    full: Prepared,
    train: Part,
    test: Part,
    /// Training outcomes.
    y: Vec<f64>,
    fold_rows: Vec<Vec<usize>>,
    fold_data: Vec<Fold>,
    load_s: f64,
    prepare_s: f64,
}

/// Load the data, check the arms and the outcome, prepare the features (on the training rows,
/// and again in each fold), estimate propensities, and cut the folds.
fn prepare(p: &Pipeline, u: &UpliftPlan, deadline: Option<Instant>, obs: &dyn Observer) -> Result<Problem> {
    let t0 = Instant::now();
    obs.stage("loading data");
    let loaded = data::load(&p.data, p.task)?;
    let arms = resolve_arms(u, &loaded.train)?;
    let ids = loaded.ids.as_ref();
    let (train_frame, train_r) = reserve(&loaded.train, ids.map(|i| &i.0), u, &p.data.target, &arms, "training")?;
    let (test_frame, test_r) = reserve(&loaded.test, ids.map(|i| &i.1), u, &p.data.target, &arms, "test")?;
    let y_train = numeric_column(&train_frame, &p.data.target, "outcome")?;
    numeric_column(&test_frame, &p.data.target, "outcome")?;
    if u.outcome == Task::Binary
        && let Some(i) = y_train.iter().position(|&v| v != 0.0 && v != 1.0)
    {
        return Err(Error::data(format!(
            "outcome `{}` has value {} in training row {} (after keeping the modelled arms): a binary outcome must be 0/1; set `uplift.outcome = \"continuous\"` for amounts",
            p.data.target,
            y_train[i],
            i + 1
        )));
    }
    let load_s = t0.elapsed().as_secs_f64();

    let t_prep = Instant::now();
    obs.stage("preparing features");
    let target = TargetEncoding { column: p.data.target.clone(), task: Task::Regression, classes: vec![] };
    let (full, train_ds, dropped) = Prepared::fit_until(p, &target, train_frame.clone(), None, deadline)?;
    if dropped > 0 {
        return Err(Error::config(
            "clean",
            format!(
                "cleaners dropped {dropped} training rows; an uplift pipeline keeps every row with its arm (remove row-dropping cleaners such as `filter` or `drop_duplicates`)"
            ),
        ));
    }
    let test_ds = full.transform(test_frame.clone(), "test")?;
    let n = train_ds.n_rows();
    let mut train = Part { ds: train_ds, arm: train_r.arm.clone(), propensity: vec![] };
    let mut test = Part { ds: test_ds, arm: test_r.arm.clone(), propensity: vec![] };
    let mut props = propensities(u, &arms, &train, &[&test.ds], &FitContext { deadline, ..p.fit_context(p.seed) })?;
    test.propensity = props.pop().expect("test propensities");
    train.propensity = props.pop().expect("train propensities");

    let k = p.search.cv_folds;
    let y = train.ds.target("training")?.to_vec();
    let labels: Vec<usize> = (0..n)
        .map(|i| if u.outcome == Task::Binary { 2 * train.arm[i] + y[i] as usize } else { train.arm[i] })
        .collect();
    if n < 2 * k {
        return Err(Error::data(format!("{n} training rows are too few for {k}-fold cross-validation")));
    }
    let fold_rows = folds(n, k, Some(&labels), derive_seed(p.seed, &[1]));
    let fold_data: Vec<Fold> = fold_rows
        .par_iter()
        .map(|val| {
            let tr = complement(n, val);
            let (prep, ds_tr, _) = Prepared::fit_until(p, &target, train_frame.take(&tr), None, deadline)?;
            let ds_va = prep.transform(train_frame.take(val), "validation")?;
            let pick = |rows: &[usize], v: &[usize]| rows.iter().map(|&i| v[i]).collect::<Vec<_>>();
            let pprop = |rows: &[usize]| rows.iter().map(|&i| train.propensity[i].clone()).collect::<Vec<_>>();
            Ok(Fold {
                train: Part { ds: ds_tr, arm: pick(&tr, &train.arm), propensity: pprop(&tr) },
                valid: Part { ds: ds_va, arm: pick(val, &train.arm), propensity: pprop(val) },
            })
        })
        .collect::<Result<_>>()?;
    let prepare_s = t_prep.elapsed().as_secs_f64();

    Ok(Problem {
        loaded,
        arms,
        train_frame,
        test_frame,
        test_r,
        full,
        train,
        test,
        y,
        fold_rows,
        fold_data,
        load_s,
        prepare_s,
    })
}

/// A refitted learner (or the average of the best ones): its leaderboard entry, its effects on
/// the test rows and in each fold, and what an artifact needs.
struct Done {
    entry: LeaderboardEntry,
    cv_score: f64,
    effects: Effects,
    /// `effects` with outcome levels, as the leaderboard scores them (see [`with_outcomes`]).
    scored: Effects,
    fold_effects: Vec<Effects>,
    base: Option<(usize, Params)>,
    /// Indices into `fitted` of the learners whose effects these are.
    members: Vec<usize>,
}

/// What [`refit`] gives: every refitted learner (and the ensemble, when asked), best first by
/// cross-validation, and the fitted learners (taken by the artifact).
type Refitted = (Vec<Done>, Vec<Option<(String, FittedLearner)>>);

/// Refit each pair's best trial on all training rows and score it on the test rows; with
/// `uplift.ensemble = K`, add the average of the top K. Sorted best first by cross-validation.
fn refit(
    p: &Pipeline,
    u: &UpliftPlan,
    obj: &Uplift<'_>,
    bests: Vec<(usize, Found<Effects>)>,
    (pb, trials, deadline): (&Problem, &[Trial], Option<Instant>),
    failures: &mut Vec<Failure>,
) -> Result<Refitted> {
    let (train, test, fold_data) = (&pb.train, &pb.test, &pb.fold_data);
    let n_arms = pb.arms.len() - 1;
    let y_test = test.ds.target("test")?.to_vec();
    let mut done: Vec<Done> = Vec::new();
    let mut fitted_all: Vec<Option<(String, FittedLearner)>> = Vec::new();
    for (pi, mut s) in bests {
        let pair = &obj.pairs[pi];
        let cand = &p.candidates[pair.ci];
        let ctx = FitContext {
            seed: derive_seed(p.seed, &[4, pair.ci as u64, pair.learner as u64]),
            deadline,
            ..p.fit_context(p.seed)
        };
        let t = Instant::now();
        let fitted = learners::fit(pair.learner, cand.model.as_ref(), &s.params, u.outcome, &train.view(n_arms), &ctx)
            .and_then(|f| recompute(obj, pi, &mut s).map(|()| f));
        let fitted = match fitted {
            Ok(f) => f,
            Err(e) => {
                failures.push(Failure { model: pair.name.clone(), error: format!("refit: {e}") });
                continue;
            }
        };
        let fit_s = t.elapsed().as_secs_f64();
        let effects = fitted.effects(&test.ds)?;
        // Scored with outcome levels (the control model the final policy fits, when the
        // learner has none).
        let scored = with_outcomes(
            effects.clone(),
            (cand.model.as_ref(), &s.params),
            u,
            &train.view(n_arms),
            &test.ds,
            &p.fit_context(derive_seed(p.seed, &[6])),
        )?;
        let test_scores = score(&scored, &y_test, (&test.arm, &test.propensity), u, obj.rule.as_ref())?;
        fitted_all.push(Some((cand.model.kind().to_string(), fitted)));
        done.push(Done {
            entry: LeaderboardEntry {
                name: pair.name.clone(),
                kind: format!("uplift.{}({})", pair.learner.name(), cand.model.kind()),
                params: params_json(&s.params),
                cv: s.cv,
                cv_std: s.cv_std,
                test: test_scores,
                fit_s,
                n_trials: trials.iter().filter(|t| t.model == pair.name).count(),
                threshold: None,
            },
            cv_score: s.score,
            effects,
            scored,
            fold_effects: s.outputs.take().expect("recomputed"),
            base: Some((pair.ci, s.params)),
            members: vec![fitted_all.len() - 1],
        });
    }
    if done.is_empty() {
        let why: Vec<String> = failures.iter().map(|f| format!("{}: {}", f.model, f.error)).collect();
        return Err(Error::data(format!("no uplift learner could be fitted:\n  {}", why.join("\n  "))));
    }
    done.sort_by(|a, b| b.cv_score.total_cmp(&a.cv_score));
    let key = metric_key(u.metric, u.k);
    if u.ensemble >= 2 && done.len() >= 2 {
        let top: Vec<&Done> = done.iter().take(u.ensemble).collect();
        let mut fold_scores = Vec::new();
        let mut cv_all: Vec<Scores> = Vec::new();
        let mut fold_effects = Vec::new();
        for (f, fold) in fold_data.iter().enumerate() {
            let e = Effects::average(&top.iter().map(|d| &d.fold_effects[f]).collect::<Vec<_>>());
            let y = fold.valid.ds.target("validation")?;
            let s = score(&e, y, (&fold.valid.arm, &fold.valid.propensity), u, obj.rule.as_ref())?;
            fold_scores.push(s[&key]);
            cv_all.push(s);
            fold_effects.push(e);
        }
        let mean = fold_scores.iter().sum::<f64>() / fold_scores.len() as f64;
        let sd = (fold_scores.iter().map(|s| (s - mean).powi(2)).sum::<f64>() / fold_scores.len() as f64).sqrt();
        let mut cv = Scores::new();
        for m in cv_all[0].keys() {
            cv.insert(m.clone(), cv_all.iter().map(|s| s[m]).sum::<f64>() / cv_all.len() as f64);
        }
        let effects = Effects::average(&top.iter().map(|d| &d.effects).collect::<Vec<_>>());
        let members: Vec<String> = top.iter().map(|d| d.entry.name.clone()).collect();
        let scored = Effects::average(&top.iter().map(|d| &d.scored).collect::<Vec<_>>());
        let test_scores = score(&scored, &y_test, (&test.arm, &test.propensity), u, obj.rule.as_ref())?;
        let entry = LeaderboardEntry {
            name: format!("uplift-ensemble(top {})", top.len()),
            kind: "uplift.average".into(),
            params: [("members".to_string(), serde_json::json!(members))].into(),
            cv,
            cv_std: sd,
            test: test_scores,
            fit_s: top.iter().map(|d| d.entry.fit_s).sum(),
            n_trials: 0,
            threshold: None,
        };
        let base = top[0].base.clone();
        let members = top.iter().flat_map(|d| d.members.clone()).collect();
        done.push(Done { entry, cv_score: mean, effects, scored, fold_effects, base, members });
        done.sort_by(|a, b| b.cv_score.total_cmp(&a.cv_score));
    }
    Ok((done, fitted_all))
}

/// Per-arm test metrics of effects `eff` (each arm against control), with bootstrap intervals,
/// and the Qini, uplift and perfect Qini curves.
fn arm_metrics(p: &Pipeline, u: &UpliftPlan, pb: &Problem, y_test: &[f64], eff: &Effects) -> Result<Vec<ArmMetrics>> {
    let (test, test_rows, n_arms) = (&pb.test, (0..pb.test.ds.n_rows()).collect::<Vec<usize>>(), pb.arms.len() - 1);
    let arms = &pb.arms;
    let mut arm_metrics = Vec::new();
    #[allow(clippy::needless_range_loop)]
    for a in 1..=n_arms {
        let rows: Vec<usize> = test_rows.iter().copied().filter(|&i| test.arm[i] == 0 || test.arm[i] == a).collect();
        let ys: Vec<f64> = rows.iter().map(|&i| y_test[i]).collect();
        let ts: Vec<u8> = rows.iter().map(|&i| u8::from(test.arm[i] == a)).collect();
        let us: Vec<f64> = rows.iter().map(|&i| eff.tau[a - 1][i]).collect();
        // Resample this arm's rows (index into `rows`), as a whole-test resample restricted to them.
        let arm_boot = resamples(rows.len(), u.bootstrap, derive_seed(p.seed, &[5, a as u64]));
        let pick = |r: &[usize]| {
            (
                r.iter().map(|&j| ys[j]).collect::<Vec<_>>(),
                r.iter().map(|&j| us[j]).collect::<Vec<_>>(),
                r.iter().map(|&j| ts[j]).collect::<Vec<_>>(),
            )
        };
        let qini = um::qini_auc_score(&ys, &us, &ts)?;
        let qini_i = interval(qini, &arm_boot, &|r| {
            let (y, s, t) = pick(r);
            um::qini_auc_score(&y, &s, &t).ok()
        });
        let uauc = if u.outcome == Task::Binary {
            let v = um::uplift_auc_score(&ys, &us, &ts)?;
            Some(interval(v, &arm_boot, &|r| {
                let (y, s, t) = pick(r);
                um::uplift_auc_score(&y, &s, &t).ok()
            }))
        } else {
            None
        };
        let at_k = um::uplift_at_k(&ys, &us, &ts, u.k)?;
        let at_k_i = interval(at_k, &arm_boot, &|r| {
            let (y, s, t) = pick(r);
            um::uplift_at_k(&y, &s, &t, u.k).ok()
        });
        let ate = um::ate(&ys, &ts)?;
        let ate_i = interval(ate, &arm_boot, &|r| {
            let (y, _, t) = pick(r);
            um::ate(&y, &t).ok()
        });
        let (qx, qv) = um::qini_curve(&ys, &us, &ts)?;
        let (ux, uv) = um::uplift_curve(&ys, &us, &ts)?;
        let perfect: Vec<f64> = ys.iter().zip(&ts).map(|(&y, &t)| if t == 1 { y } else { -y }).collect();
        let (px, pv) = um::qini_curve(&ys, &perfect, &ts)?;
        arm_metrics.push(ArmMetrics {
            arm: arms[a].clone(),
            test_rows: rows.len(),
            qini_auc: qini_i,
            uplift_auc: uauc,
            uplift_at_k: at_k_i,
            ate_observed: ate_i,
            ate_predicted: eff.tau[a - 1].iter().sum::<f64>() / test_rows.len() as f64,
            qini_curve: um::thin(&qx, &qv, u.curve_points),
            uplift_curve: um::thin(&ux, &uv, u.curve_points),
            perfect_qini_curve: um::thin(&px, &pv, u.curve_points),
        });
    }
    Ok(arm_metrics)
}

pub(crate) fn run(p: &Pipeline, obs: &dyn Observer, opts: &RunOptions, worker: bool) -> Result<Ran> {
    let artifact = opts.artifact.as_ref();
    let u = p.uplift.as_ref().ok_or_else(|| Error::config("pipeline.task", "an uplift task needs its uplift plan"))?;
    let t0 = Instant::now();
    let deadline = p.search.time_budget.and_then(|b| t0.checked_add(b));
    let pb = prepare(p, u, deadline, obs)?;
    let (load_s, prepare_s) = (pb.load_s, pb.prepare_s);
    let n_arms = pb.arms.len() - 1;

    let t_search = Instant::now();
    // The rule `policy_value` scores assignments by: effect levels as predicted.
    let cv_rule = u.policy.as_ref().map(|pp| policy_rule(pp, &pb.arms, vec![(0.0, 1.0); n_arms]));
    let obj = Uplift::new(p, u, &pb.fold_data, n_arms, cv_rule);
    // Time kept after the search for the bootstrap, the reports and the artifact.
    let writing_s = p.search.time_budget.map_or(0.0, |b| crate::budget::writing_reserve(b).as_secs_f64());
    let header = StudyHeader::for_run(p, &[&pb.loaded.train, &pb.loaded.test])?;
    let outcome = match search_study(p, &obj, opts, &header, worker, (deadline, writing_s, 0), obs)? {
        Searched::Led(o) => o,
        Searched::Worked(w) => return Ok(Ran::Worked(w)),
    };
    let Outcome { bests, mut failures, trials } = outcome;
    let search_s = t_search.elapsed().as_secs_f64();

    let t_refit = Instant::now();
    obs.stage("refitting the best learners on all training rows and scoring on test rows");
    let (done, mut fitted_all) = refit(p, u, &obj, bests, (&pb, &trials, deadline), &mut failures)?;
    let refit_s = t_refit.elapsed().as_secs_f64();

    obs.stage("bootstrap intervals, KPIs and policy");
    let key = metric_key(u.metric, u.k);
    let final_done = &done[0];
    let eff = &final_done.effects;
    let y_test = pb.test.ds.target("test")?.to_vec();
    let arm_metrics = arm_metrics(p, u, &pb, &y_test, eff)?;
    let Problem { loaded, arms, train_frame, test_frame, test_r, full, train, test, y, fold_rows, .. } = pb;
    let n = train.ds.n_rows();
    let test_rows: Vec<usize> = (0..test.ds.n_rows()).collect();
    let boot = resamples(test_rows.len(), u.bootstrap, derive_seed(p.seed, &[5]));

    // The outcome under every arm: the learner's outcome model, or a control model plus effects.
    let mut control_model = None;
    let mu: Vec<Vec<f64>> = match &eff.mu {
        Some(m) => m.clone(),
        None => {
            let (ci, params) = final_done.base.clone().expect("every learner has a base model");
            let ctx = p.fit_context(derive_seed(p.seed, &[6]));
            let m = learners::fit_control_model(
                p.candidates[ci].model.as_ref(),
                &params,
                u.outcome,
                &train.view(n_arms),
                &ctx,
            )?;
            let mu0 = learners::predict_control(m.as_ref(), &test.ds)?;
            control_model = Some((p.candidates[ci].model.kind().to_string(), m));
            crate::uplift::model::with_control(mu0, eff)
        }
    };
    let kpis = arm_kpis(&arms, &test.arm, &y_test, &test_r.kpis, &mu);
    // Calibration of effect levels for the policy (rankings, and so every uplift metric, are
    // unchanged): per arm, regress the observed effect on the predicted one over ten bins of
    // the out-of-fold predictions on the training rows; `tau' = intercept + slope * tau`.
    let calibration: Vec<(f64, f64)> = match &u.policy {
        Some(pp) if pp.calibrate => (1..=n_arms)
            .map(|a| {
                let mut oof = vec![f64::NAN; n];
                for (f, rows) in fold_rows.iter().enumerate() {
                    for (j, &i) in rows.iter().enumerate() {
                        oof[i] = final_done.fold_effects[f].tau[a - 1][j];
                    }
                }
                let r: Vec<usize> = (0..n).filter(|&i| train.arm[i] == 0 || train.arm[i] == a).collect();
                calibrate(&r, &oof, &y, &train.arm, a)
            })
            .collect::<Result<_>>()?,
        _ => vec![(0.0, 1.0); n_arms],
    };
    let rule = u.policy.as_ref().map(|pp| policy_rule(pp, &arms, calibration.clone()));

    let mut files = Vec::new();
    let mut assigned = None;
    let policy_section = match (&u.policy, &rule) {
        (Some(pp), Some(rule)) => {
            let (mut sec, arm, gain) = policy_section(
                p,
                pp,
                rule,
                &arms,
                &test,
                &y_test,
                &mu,
                &test_r,
                &boot,
                &final_done.entry.name,
                &mut files,
            )?;
            assigned = Some((arm, gain));
            sec.effect_calibration = arms[1..]
                .iter()
                .cloned()
                .zip(calibration.iter().map(|&(intercept, slope)| Calibration { intercept, slope }))
                .collect();
            Some(sec)
        }
        _ => None,
    };

    let mut propensity = BTreeMap::new();
    for (a, name) in arms.iter().enumerate() {
        propensity.insert(name.clone(), train.propensity.iter().map(|p| p[a]).sum::<f64>() / n as f64);
    }
    let section = UpliftSection {
        treatment: u.column.clone(),
        control: u.control.clone(),
        arms: arms[1..].to_vec(),
        outcome: p.data.target.clone(),
        outcome_kind: if u.outcome == Task::Binary { "binary" } else { "continuous" }.into(),
        propensity,
        propensity_source: match u.propensity {
            Propensity::Frequency => "frequency",
            Propensity::Given(_) => "given",
            Propensity::Model(_) => "model",
        }
        .into(),
        final_model: final_done.entry.name.clone(),
        k: u.k,
        bootstrap: u.bootstrap,
        metrics: arm_metrics,
        kpis,
    };
    let leaderboard: Vec<LeaderboardEntry> = done.iter().map(|d| d.entry.clone()).collect();
    let mut report = Report {
        schema_version: SCHEMA_VERSION,
        promoml_version: env!("CARGO_PKG_VERSION").to_string(),
        pipeline: p.name.clone(),
        task: p.task.name().to_string(),
        seed: p.seed,
        metric: key,
        higher_is_better: true,
        final_model: final_done.entry.name.clone(),
        test: final_done.entry.test.clone(),
        data: DataSummary {
            source: loaded.description.clone(),
            train_rows: n,
            test_rows: test_rows.len(),
            dropped_train_rows: 0,
            columns: loaded.columns,
            missing_cells: train_frame.columns().iter().map(|c| c.data.missing_count()).sum(),
            features: full.feature_names().len(),
            classes: arms
                .iter()
                .enumerate()
                .map(|(a, name)| (name.clone(), train.arm.iter().filter(|&&x| x == a).count()))
                .collect(),
            bad_values_as_missing: loaded.bad_as_missing.clone(),
            identifier_columns: loaded.identifiers.clone(),
            suspected_leaks: Vec::new(),
        },
        leaderboard,
        trials,
        failures,
        timing: Timing { total_s: 0.0, load_s, prepare_s, search_s, refit_s, importance_s: 0.0 },
        ..Report::default()
    };
    report.uplift = Some(section);
    if let Some(ps) = policy_section {
        report.policy = Some(ps);
    }
    report.files = files;
    if let Some(req) = artifact {
        let model = UpliftModel {
            name: final_done.entry.name.clone(),
            arms: arms.clone(),
            members: final_done.members.iter().map(|&i| fitted_all[i].take().expect("each learner once")).collect(),
            control: control_model.filter(|_| rule.is_some()),
            policy: rule,
        };
        let expected = Scored::Uplift(UpliftScores { tau: final_done.effects.tau.clone(), policy: assigned });
        crate::artifact::write_for_run(req, p, full, &train_frame, &test_frame, Fitted::Uplift(model), &expected)?;
    }
    report.timing.total_s = t0.elapsed().as_secs_f64();
    Ok(Ran::Report(Box::new(report)))
}

/// Linear calibration of predicted effects of arm `a` on rows `r` (arm `a` and control):
/// rows sorted by out-of-fold prediction in ten equal bins; weighted least squares of each
/// bin's observed effect on its mean prediction, slope clamped to [0, 1.5]; the intercept makes
/// the calibrated mean equal the observed effect of all rows.
fn calibrate(r: &[usize], oof: &[f64], y: &[f64], arm: &[usize], a: usize) -> Result<(f64, f64)> {
    let mut rows = r.to_vec();
    rows.sort_by(|&i, &j| oof[i].total_cmp(&oof[j]));
    let bins = 10.min(rows.len() / 2).max(1);
    let mut points = Vec::new();
    for b in 0..bins {
        let part = &rows[b * rows.len() / bins..(b + 1) * rows.len() / bins];
        let ys: Vec<f64> = part.iter().map(|&i| y[i]).collect();
        let ts: Vec<u8> = part.iter().map(|&i| u8::from(arm[i] == a)).collect();
        if let Ok(effect) = um::ate(&ys, &ts) {
            let pred = part.iter().map(|&i| oof[i]).sum::<f64>() / part.len() as f64;
            points.push((pred, effect, part.len() as f64));
        }
    }
    let w: f64 = points.iter().map(|p| p.2).sum();
    let mx = points.iter().map(|p| p.0 * p.2).sum::<f64>() / w;
    let my = points.iter().map(|p| p.1 * p.2).sum::<f64>() / w;
    let sxx: f64 = points.iter().map(|p| p.2 * (p.0 - mx).powi(2)).sum();
    let sxy: f64 = points.iter().map(|p| p.2 * (p.0 - mx) * (p.1 - my)).sum();
    let slope = if sxx > 0.0 { (sxy / sxx).clamp(0.0, 1.5) } else { 0.0 };
    let ys: Vec<f64> = r.iter().map(|&i| y[i]).collect();
    let ts: Vec<u8> = r.iter().map(|&i| u8::from(arm[i] == a)).collect();
    let observed = um::ate(&ys, &ts)?;
    let mean_pred = r.iter().map(|&i| oof[i]).sum::<f64>() / r.len() as f64;
    Ok((observed - slope * mean_pred, slope))
}

fn mean_of(v: impl Iterator<Item = f64>) -> Option<f64> {
    let (s, c) = v.fold((0.0, 0usize), |(s, c), x| (s + x, c + 1));
    (c > 0).then(|| s / c as f64)
}

fn arm_kpis(
    arms: &[String],
    arm: &[usize],
    y: &[f64],
    kpis: &BTreeMap<String, Vec<f64>>,
    mu: &[Vec<f64>],
) -> Vec<ArmKpis> {
    (0..arms.len())
        .map(|a| {
            let rows: Vec<usize> = (0..arm.len()).filter(|&i| arm[i] == a).collect();
            let col = |name: &str| kpis.get(name);
            let rate =
                |name: &str| col(name).and_then(|c| mean_of(rows.iter().map(|&i| f64::from(u8::from(c[i] > 0.0)))));
            let order_value = col("order_value");
            let buyers: Vec<usize> = match (col("conversion"), order_value) {
                (Some(c), _) => rows.iter().copied().filter(|&i| c[i] > 0.0).collect(),
                (None, Some(v)) => rows.iter().copied().filter(|&i| v[i] > 0.0).collect(),
                _ => vec![],
            };
            ArmKpis {
                arm: arms[a].clone(),
                customers: rows.len(),
                outcome_mean: mean_of(rows.iter().map(|&i| y[i])).unwrap_or(f64::NAN),
                predicted_outcome_mean: mean_of(rows.iter().map(|&i| mu[a][i])),
                participation_rate: rate("participation"),
                conversion_rate: rate("conversion"),
                average_order_value: order_value.and_then(|v| mean_of(buyers.iter().map(|&i| v[i]))),
                revenue_per_customer: order_value.and_then(|v| mean_of(rows.iter().map(|&i| v[i]))),
            }
        })
        .collect()
}

#[allow(clippy::too_many_arguments)]
fn policy_section(
    p: &Pipeline,
    pp: &PolicyPlan,
    rule: &PolicyRule,
    arms: &[String],
    test: &Part,
    y: &[f64],
    mu: &[Vec<f64>],
    reserved: &Reserved,
    boot: &[Vec<usize>],
    model_name: &str,
    files: &mut Vec<(String, String)>,
) -> Result<(PolicySection, Vec<usize>, Vec<f64>)> {
    for name in pp.value.keys().chain(pp.cost.keys()) {
        if !arms.contains(name) {
            return Err(Error::config(
                "policy",
                format!("\"{name}\" is not a modelled arm (arms: {})", arms.join(", ")),
            ));
        }
    }
    let n = y.len();
    let (value, cost) = (&rule.value, &rule.cost);
    // Outcomes with calibrated effect levels: what the policy optimises and the DR estimates use.
    let mu = &rule.calibrated(mu);
    let (assignment, chosen_gain) = rule.choose(mu);
    let log = Logged { arm: &test.arm, y, propensity: &test.propensity, value, cost, mu: Some(mu) };
    let all_rows: Vec<usize> = (0..n).collect();
    let mut rng = Rng::seed_from_u64(derive_seed(p.seed, &[8]));
    let mut named: Vec<(String, Vec<usize>)> = vec![(format!("model ({model_name})"), assignment.arm.clone())];
    named.push(("treat none".into(), vec![0; n]));
    for (a, name) in arms.iter().enumerate().skip(1) {
        named.push((format!("treat all: {name}"), vec![a; n]));
    }
    named.push(("random".into(), (0..n).map(|_| rng.random_range(0..arms.len())).collect()));
    let none = vec![0usize; n];
    let truth: Option<Vec<Vec<f64>>> = (!reserved.truth.is_empty())
        .then(|| arms.iter().map(|a| reserved.truth.get(a).cloned()).collect::<Option<Vec<_>>>())
        .flatten();
    if !reserved.truth.is_empty() && truth.is_none() {
        return Err(Error::config("policy.true_outcome", "give a true outcome column for every arm, control included"));
    }
    let true_value = |pol: &[usize]| {
        truth.as_ref().map(|t| (0..n).map(|i| value[pol[i]] * t[pol[i]][i] - cost[pol[i]]).sum::<f64>() / n as f64)
    };
    let mut rows_out = Vec::new();
    for (name, pol) in &named {
        let est = policy::evaluate(&log, pol, &all_rows);
        let ipw = interval(est.ipw, boot, &|r| Some(policy::evaluate(&log, pol, r).ipw));
        let dr = est.dr.map(|v| interval(v, boot, &|r| policy::evaluate(&log, pol, r).dr));
        let base = policy::evaluate(&log, &none, &all_rows).ipw;
        let incremental = interval(est.ipw - base, boot, &|r| {
            Some(policy::evaluate(&log, pol, r).ipw - policy::evaluate(&log, &none, r).ipw)
        });
        let mut shares = BTreeMap::new();
        for (a, an) in arms.iter().enumerate() {
            shares.insert(an.clone(), pol.iter().filter(|&&x| x == a).count() as f64 / n as f64);
        }
        rows_out.push(PolicyRow {
            policy: name.clone(),
            ipw,
            dr,
            incremental_ipw: incremental,
            treated_share: pol.iter().filter(|&&a| a > 0).count() as f64 / n as f64,
            cost_per_customer: pol.iter().map(|&a| cost[a]).sum::<f64>() / n as f64,
            arm_shares: shares,
            true_value: true_value(pol),
        });
    }
    // The best of the named policies `among` by IPW value (the first on ties).
    let best_of = |among: &dyn Fn(&str) -> bool| {
        named
            .iter()
            .enumerate()
            .filter(|(_, (nm, _))| among(nm))
            .map(|(j, _)| (j, rows_out[j].ipw.value))
            .fold((0, f64::NEG_INFINITY), |b, x| if x.1 > b.1 { x } else { b })
            .0
    };
    let model_pol = &named[0].1;
    // The model policy's gain over another policy, with its bootstrap interval (IPW, and DR
    // when the outcome models allow it).
    let gain_over = |other: &[usize]| {
        let diff = |r: &[usize], dr: bool| {
            let a = policy::evaluate(&log, model_pol, r);
            let b = policy::evaluate(&log, other, r);
            if dr { a.dr.zip(b.dr).map(|(x, y)| x - y) } else { Some(a.ipw - b.ipw) }
        };
        let ipw = interval(diff(&all_rows, false).expect("ipw"), boot, &|r| diff(r, false));
        (ipw, diff(&all_rows, true).map(|v| interval(v, boot, &|r| diff(r, true))))
    };
    // The best single arm ("treat all" with one arm), and the best baseline: treating nobody
    // may be worth more than mailing everyone.
    let best_idx = best_of(&|nm| nm.starts_with("treat all"));
    let (gain_ipw, gain_dr) = gain_over(&named[best_idx].1);
    let baseline_idx = best_of(&|nm| nm == "treat none" || nm.starts_with("treat all"));
    let (baseline_gain_ipw, baseline_gain_dr) = gain_over(&named[baseline_idx].1);
    let (oracle, recovered) = match &truth {
        Some(t) => {
            let oracle_pol = rule.choose(t).0.arm;
            let ov = true_value(&oracle_pol).expect("truth");
            let nv = true_value(&none).expect("truth");
            let mv = true_value(model_pol).expect("truth");
            ((Some(ov)), ((ov - nv).abs() > 1e-12).then(|| (mv - nv) / (ov - nv)))
        }
        None => (None, None),
    };
    let assignments_file = pp.write_assignments.then(|| {
        // Columns named as `promoml predict` names them: the key column as the input names it,
        // `uplift_<arm>` per treatment arm.
        let quoted = crate::codec::quote;
        let mut csv = quoted(pp.key.as_deref().unwrap_or("test_row"));
        csv.push_str(",arm,expected_gain");
        for a in &arms[1..] {
            csv.push_str(&format!(",{}", quoted(&format!("uplift_{a}"))));
        }
        csv.push('\n');
        for i in 0..n {
            let id = match &reserved.key {
                Some(k) => quoted(&k[i]),
                None => i.to_string(),
            };
            let a = model_pol[i];
            csv.push_str(&format!("{id},{},{}", quoted(&arms[a]), chosen_gain[i]));
            for t in 1..arms.len() {
                csv.push_str(&format!(",{}", mu[t][i] - mu[0][i]));
            }
            csv.push('\n');
        }
        files.push(("assignments.csv".to_string(), csv));
        "assignments.csv".to_string()
    });
    let budget = match pp.budget {
        Budget::None => "none".to_string(),
        Budget::TreatedShare(s) => format!("max_treated_share = {s}"),
        Budget::TotalCost(c) => format!("max_total_cost = {c}"),
    };
    let section = PolicySection {
        model: model_name.to_string(),
        budget,
        lambda: assignment.lambda,
        effect_calibration: BTreeMap::new(),
        value_per_outcome: arms.iter().zip(value).map(|(a, v)| (a.clone(), *v)).collect(),
        cost: arms.iter().zip(cost).map(|(a, c)| (a.clone(), *c)).collect(),
        customers: n,
        policies: rows_out,
        best_single_arm: arms[named[best_idx].1[0]].clone(),
        gain_vs_best_single_arm_ipw: gain_ipw,
        gain_vs_best_single_arm_dr: gain_dr,
        best_baseline: Some(named[baseline_idx].0.clone()),
        gain_vs_best_baseline_ipw: Some(baseline_gain_ipw),
        gain_vs_best_baseline_dr: baseline_gain_dr,
        oracle_true_value: oracle,
        oracle_share_recovered: recovered,
        assignments_file,
    };
    Ok((section, assignment.arm, chosen_gain))
}
