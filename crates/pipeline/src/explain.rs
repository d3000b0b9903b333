//! Explanations of an artifact's scores, per row: a base value and each input's contribution
//! in the final model's raw output space (log-odds for a binary classifier, the outcome for a
//! regressor, the effect for an uplift model, the score for an anomaly detector), used by
//! `promoml predict --explain`, `promoml serve` and the report's SHAP summary.
//!
//! How each final model is explained:
//!
//! - **One model with an exact method** ([`FittedModel::explain`]): TreeSHAP for tree
//!   ensembles, `w_j (x_j - b_j)` for linear models.
//! - **An ensemble** whose used members all have an exact method in one space in which the
//!   combiner is linear: the members' explanations combined with the combiner's weights. The
//!   additivity rule: base value `= c + Σ_m w_m base_m` and contribution `= Σ_m w_m φ_m`, with
//!   `c` the regression intercept, for binary stacking (a logistic regression on the members'
//!   logits) `c = b_1 - b_0` over log-odds members, and for greedy selection (a weighted mean of
//!   probabilities) `c = 0` and weights `w_m / Σ w` over probability-space members. Stacking clamps
//!   member probabilities at 1e-6, so a member more certain than that is where the sum can
//!   differ from the logit of the score.
//! - **Anything else** (other models, two-layer stacks, uplift and anomaly models): the seeded
//!   permutation-sampling estimator [`promoml_core::explain::sampling`] on the final model's
//!   raw output, against the artifact's baseline row (per-feature training medians). It is
//!   additive exactly; its values are estimates.
//!
//! Contributions are grouped back to input columns: the one-hot features `col=level` of a
//! column add up to one contribution named `col` (the default; `group = false` keeps them),
//! and a behaviour sequence counts as one input named [`SEQUENCE`].

use crate::fitted::{FinalModel, Fitted};
use promoml_core::explain::{Explanations, SamplingSettings, Space, sampling};
use promoml_core::{Dataset, Error, FittedModel, Predictions, Result};
use serde::Serialize;

/// Name of the behaviour-sequence input in explanations.
pub const SEQUENCE: &str = "sequence";

/// How an explanation was computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    /// The model's exact method (TreeSHAP, linear).
    Exact,
    /// Exact member explanations combined through the ensemble's combiner.
    Ensemble,
    /// The seeded permutation-sampling estimator.
    Sampling,
}

/// One input's contribution to a row's raw output.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Contribution {
    /// Input column (or model feature, when one-hot features are not grouped).
    pub feature: String,
    /// Its contribution, in the explanation's space.
    pub contribution: f64,
}

/// The explanation of one row: `base_value + Σ contributions + rest` is the raw output.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RowExplanation {
    /// The base value (expected raw output, or the raw output at the baseline row).
    pub base_value: f64,
    /// The largest contributions by magnitude, largest first.
    pub contributions: Vec<Contribution>,
    /// The sum of the contributions left out of `contributions` (0 when all are listed).
    pub rest: f64,
}

/// Explanations of every input for a batch of rows, before the top-K cut.
#[derive(Debug, Clone, PartialEq)]
pub struct Explained {
    /// The raw output's space.
    pub space: Space,
    /// How they were computed.
    pub method: Method,
    /// What is explained, e.g. `log-odds of score` or `effect of Womens E-Mail`.
    pub output: String,
    /// Input names, one per column of `values.contributions`.
    pub inputs: Vec<String>,
    /// Base values and contributions (rows × inputs).
    pub values: Explanations,
}

impl Explained {
    /// Row `i` with its `k` largest contributions by magnitude (ties by name).
    pub fn row(&self, i: usize, k: usize) -> RowExplanation {
        let mut all: Vec<Contribution> = self
            .inputs
            .iter()
            .zip(self.values.contributions.row(i))
            .map(|(f, &c)| Contribution { feature: f.clone(), contribution: c })
            .collect();
        all.sort_by(|a, b| {
            b.contribution.abs().total_cmp(&a.contribution.abs()).then_with(|| a.feature.cmp(&b.feature))
        });
        let rest = all.iter().skip(k).fold(0.0, |s, c| s + c.contribution);
        all.truncate(k);
        RowExplanation { base_value: self.values.base[i], contributions: all, rest }
    }
}

/// The inputs explanations are given for: names and the model features each one covers.
#[derive(Debug, Clone, PartialEq)]
pub struct Inputs {
    /// Input names.
    pub names: Vec<String>,
    /// Feature columns of each input.
    pub members: Vec<Vec<usize>>,
}

impl Inputs {
    /// One input per feature, or with `group`, one per source column: a feature named
    /// `col=level` whose `col` is one of `columns` joins the input `col`.
    pub fn new(feature_names: &[String], columns: &[String], group: bool) -> Inputs {
        let mut names: Vec<String> = Vec::new();
        let mut members: Vec<Vec<usize>> = Vec::new();
        for (j, f) in feature_names.iter().enumerate() {
            let source = if group {
                // The longest `col` that is an input column (levels may contain `=`).
                f.match_indices('=').map(|(at, _)| &f[..at]).rfind(|c| columns.iter().any(|x| x == c))
            } else {
                None
            };
            let name = source.unwrap_or(f);
            match names.iter().position(|n| n == name) {
                Some(g) => members[g].push(j),
                None => {
                    names.push(name.to_string());
                    members.push(vec![j]);
                }
            }
        }
        Inputs { names, members }
    }

    /// Per-feature contributions summed into inputs (plus a zero sequence input when asked).
    fn group(&self, e: Explanations, with_sequence: bool) -> Explanations {
        let n = e.base.len();
        let width = self.names.len() + usize::from(with_sequence);
        let mut c = ndarray::Array2::zeros((n, width));
        for (g, cols) in self.members.iter().enumerate() {
            for &j in cols {
                for i in 0..n {
                    c[[i, g]] += e.contributions[[i, j]];
                }
            }
        }
        Explanations { space: e.space, base: e.base, contributions: c }
    }
}

/// Explain the rows of `ds` (prepared by the artifact) for its final model. `baseline` is the
/// artifact's typical row (per-feature training medians), needed by the linear and sampling
/// methods; `binary` says a two-class model explains the positive class's log-odds.
pub(crate) fn explain(
    model: &Fitted,
    ds: &Dataset,
    baseline: Option<&[f64]>,
    inputs: &Inputs,
    binary: bool,
    settings: SamplingSettings,
) -> Result<Explained> {
    let with_seq = ds.sequences.is_some();
    let mut names = inputs.names.clone();
    if with_seq {
        names.push(SEQUENCE.to_string());
    }
    let exact = |e: Explanations, method: Method, output: String| Explained {
        space: e.space,
        method,
        output,
        inputs: names.clone(),
        values: inputs.group(e, with_seq),
    };
    let need_baseline = || {
        baseline.ok_or_else(|| {
            Error::data(
                "this model artifact has no baseline row (it predates explanations): re-run `promoml run` to \
                 explain a model that TreeSHAP does not cover",
            )
        })
    };
    let sampled = |f: &dyn Fn(&Dataset) -> Result<Vec<f64>>, space: Space, output: String| -> Result<Explained> {
        let values = sampling(ds, f, need_baseline()?, &inputs.members, settings, space)?;
        Ok(Explained { space, method: Method::Sampling, output, inputs: names.clone(), values })
    };
    match model {
        Fitted::Model(m) => {
            let output = if binary { "log-odds of score" } else { "prediction" };
            let wanted = |s: Space| if binary { s != Space::Value } else { s == Space::Value };
            if let Some(e) = exact_final(m, ds, baseline, binary) {
                let e = e?;
                if wanted(e.space) {
                    let method = if matches!(m, FinalModel::Single { .. }) { Method::Exact } else { Method::Ensemble };
                    let output = if e.space == Space::Probability { "score".to_string() } else { output.into() };
                    return Ok(exact(e, method, output));
                }
            }
            let first = m.predict(ds)?;
            match &first {
                Predictions::Values(_) => sampled(&|d| Ok(m.predict(d)?.scores()), Space::Value, output.into()),
                Predictions::Proba(a) if a.ncols() == 2 => sampled(
                    &|d| Ok(column(&m.predict(d)?, 1).into_iter().map(logit).collect()),
                    Space::LogOdds,
                    output.into(),
                ),
                Predictions::Proba(a) => {
                    // Multiclass: each row's predicted class, one row at a time.
                    let classes: Vec<usize> = first.scores().iter().map(|&c| c as usize).collect();
                    let _ = a;
                    per_row(ds, &names, |i, one| {
                        let c = classes[i];
                        let f = |d: &Dataset| Ok(column(&m.predict(d)?, c).into_iter().map(logit).collect());
                        sampling(one, &f, need_baseline()?, &inputs.members, settings, Space::LogOdds)
                    })
                    .map(|values| Explained {
                        space: Space::LogOdds,
                        method: Method::Sampling,
                        output: "log-odds of the predicted class".into(),
                        inputs: names.clone(),
                        values,
                    })
                }
            }
        }
        Fitted::Uplift(u) => {
            let tau = u.effects(ds)?.tau;
            if tau.len() == 1 {
                let f = |d: &Dataset| Ok(u.effects(d)?.tau.swap_remove(0));
                return sampled(&f, Space::Value, format!("effect of {}", u.arms[1]));
            }
            // Several arms: each row's largest effect, one row at a time.
            let best: Vec<usize> = (0..ds.n_rows())
                .map(|i| (0..tau.len()).max_by(|&a, &b| tau[a][i].total_cmp(&tau[b][i])).unwrap_or(0))
                .collect();
            let values = per_row(ds, &names, |i, one| {
                let f = |d: &Dataset| Ok(u.effects(d)?.tau.swap_remove(best[i]));
                sampling(one, &f, need_baseline()?, &inputs.members, settings, Space::Value)
            })?;
            Ok(Explained {
                space: Space::Value,
                method: Method::Sampling,
                output: "effect of the arm with the largest effect".into(),
                inputs: names.clone(),
                values,
            })
        }
        Fitted::Anomaly(a) => sampled(&|d| a.detector.score(&d.x), Space::Value, "anomaly score".into()),
    }
}

/// Sampling one row at a time (when the explained output depends on the row), stacked.
fn per_row(
    ds: &Dataset,
    names: &[String],
    mut one: impl FnMut(usize, &Dataset) -> Result<Explanations>,
) -> Result<Explanations> {
    let n = ds.n_rows();
    let mut base = Vec::with_capacity(n);
    let mut c = ndarray::Array2::zeros((n, names.len()));
    let mut space = Space::Value;
    for i in 0..n {
        let e = one(i, &ds.subset(&[i]))?;
        space = e.space;
        base.push(e.base[0]);
        c.row_mut(i).assign(&e.contributions.row(0));
    }
    Ok(Explanations { space, base, contributions: c })
}

fn column(p: &Predictions, c: usize) -> Vec<f64> {
    match p {
        Predictions::Proba(a) => a.column(c).to_vec(),
        Predictions::Values(v) => v.clone(),
    }
}

/// Log-odds of a probability, clamped away from 0 and 1.
fn logit(p: f64) -> f64 {
    let p = p.clamp(1e-15, 1.0 - 1e-15);
    (p / (1.0 - p)).ln()
}

/// An exact explanation of the final model (per feature), when it has one: its model's, or
/// its members' combined through a linear combiner (see the module docs).
fn exact_final(m: &FinalModel, ds: &Dataset, baseline: Option<&[f64]>, binary: bool) -> Option<Result<Explanations>> {
    let base = baseline.unwrap_or(&[]);
    let single = |f: &dyn FittedModel| -> Option<Result<Explanations>> {
        if binary || f.n_classes() == Some(0) { f.explain(ds, base) } else { None }
    };
    match m {
        FinalModel::Single { model, .. } => single(model.as_ref()),
        FinalModel::Ensemble { layer1, layer2, combiner, .. } => {
            if !layer2.is_empty() {
                return None;
            }
            let used: Vec<(f64, Explanations)> = match layer1
                .iter()
                .zip(&combiner.weights)
                .filter(|(_, w)| **w != 0.0)
                .map(|((_, _, f), &w)| single(f.as_ref()).map(|e| e.map(|e| (w, e))))
                .collect::<Option<Result<Vec<_>>>>()?
            {
                Ok(u) => u,
                Err(e) => return Some(Err(e)),
            };
            let space = used.first()?.1.space;
            if used.iter().any(|(_, e)| e.space != space) {
                return None;
            }
            let (offset, scale) = match (space, binary, combiner.is_stacking()) {
                (Space::Value, false, _) => (combiner.intercepts.first().copied().unwrap_or(0.0), 1.0),
                (Space::LogOdds, true, true) => (combiner.intercepts[1] - combiner.intercepts[0], 1.0),
                (Space::Probability, true, false) => (0.0, 1.0 / used.iter().map(|(w, _)| w).sum::<f64>()),
                _ => return None,
            };
            let n = ds.n_rows();
            let mut out = Explanations {
                space,
                base: vec![offset; n],
                contributions: ndarray::Array2::zeros(used[0].1.contributions.raw_dim()),
            };
            for (w, e) in &used {
                let w = w * scale;
                out.base.iter_mut().zip(&e.base).for_each(|(b, v)| *b += w * v);
                out.contributions.scaled_add(w, &e.contributions);
            }
            Some(Ok(out))
        }
    }
}

/// Per-feature medians of `x`'s columns (missing values left out; 0 for a column with none):
/// the baseline row of linear and sampling explanations.
pub(crate) fn feature_medians(x: &ndarray::Array2<f64>) -> Vec<f64> {
    x.columns()
        .into_iter()
        .map(|c| {
            let mut v: Vec<f64> = c.iter().copied().filter(|x| !x.is_nan()).collect();
            if v.is_empty() {
                return 0.0;
            }
            v.sort_by(f64::total_cmp);
            let m = v.len() / 2;
            if v.len() % 2 == 1 { v[m] } else { (v[m - 1] + v[m]) / 2.0 }
        })
        .collect()
}

/// Most test rows the report's SHAP summary explains.
pub const SUMMARY_ROWS: usize = 2000;

/// Most test rows the SHAP summary explains at a time, until [`SUMMARY_ROWS`] or its deadline.
const SUMMARY_CHUNK: usize = 50;

/// Rows of the first chunk, whose time sizes the next ones.
const FIRST_CHUNK: usize = 2;

/// The report's SHAP summary of the final model on the first test rows (up to
/// [`SUMMARY_ROWS`], in chunks until `deadline`), when it explains exactly (tree and linear
/// models, or an ensemble of them): TreeSHAP costs trees × leaves × depth² per row, about a
/// second per row for a forest of deep trees. The first chunk has [`FIRST_CHUNK`] rows; each
/// later one as many as the measured time per row lets finish before `deadline` (at most
/// [`SUMMARY_CHUNK`]). A deadline already past gives no summary. `columns` are the input
/// columns one-hot features are grouped back to, `train` gives the baseline row.
pub(crate) fn shap_summary(
    m: &FinalModel,
    test: &Dataset,
    train: &Dataset,
    columns: &[String],
    binary: bool,
    deadline: std::time::Instant,
) -> Option<promoml_report::ShapSummary> {
    let baseline = feature_medians(&train.x);
    let n = test.n_rows().min(SUMMARY_ROWS);
    let mut parts: Vec<Explanations> = Vec::new();
    let mut done = 0;
    let mut per_row: Option<f64> = None;
    while done < n {
        let started = std::time::Instant::now();
        let Some(left) = deadline.checked_duration_since(started).filter(|d| !d.is_zero()) else { break };
        let size = match per_row {
            None => FIRST_CHUNK,
            Some(s) => (left.as_secs_f64() / s.max(1e-9)).min(SUMMARY_CHUNK as f64) as usize,
        }
        .min(n - done);
        if size == 0 {
            break;
        }
        let rows: Vec<usize> = (done..done + size).collect();
        match exact_final(m, &test.subset(&rows), Some(&baseline), binary)? {
            Ok(e) => parts.push(e),
            Err(err) => {
                tracing::warn!("no SHAP summary for {}: {err}", m.name());
                return None;
            }
        }
        done += size;
        per_row = Some(started.elapsed().as_secs_f64() / size as f64);
    }
    if done == 0 {
        tracing::info!("no SHAP summary for {}: its time ran out before the first row", m.name());
        return None;
    }
    let ds = test.subset(&(0..done).collect::<Vec<_>>());
    let e = Explanations {
        space: parts.first()?.space,
        base: parts.iter().flat_map(|p| p.base.iter().copied()).collect(),
        contributions: ndarray::concatenate(
            ndarray::Axis(0),
            &parts.iter().map(|p| p.contributions.view()).collect::<Vec<_>>(),
        )
        .ok()?,
    };
    if binary == (e.space == Space::Value) {
        return None;
    }
    let method = if matches!(m, FinalModel::Single { .. }) { Method::Exact } else { Method::Ensemble };
    let inputs = Inputs::new(&ds.feature_names, columns, true);
    let base = e.base.iter().sum::<f64>() / e.base.len().max(1) as f64;
    let space = e.space;
    let grouped = inputs.group(e, false);
    let contributions: Vec<Vec<f64>> = grouped.contributions.columns().into_iter().map(|c| c.to_vec()).collect();
    let values: Vec<Option<Vec<f64>>> = inputs
        .members
        .iter()
        .map(|cols| {
            let [j] = cols.as_slice() else { return None };
            let col = ds.x.column(*j);
            let (lo, hi) = col
                .iter()
                .filter(|v| v.is_finite())
                .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| (a.min(v), b.max(v)));
            let span = if hi > lo { hi - lo } else { 1.0 };
            Some(col.iter().map(|v| (v - lo) / span).collect())
        })
        .collect();
    let method = serde_json::to_value(method).ok()?.as_str()?.to_string();
    Some(promoml_report::ShapSummary::from_contributions(
        m.name(),
        &method,
        space.name(),
        base,
        &inputs.names,
        &contributions,
        &values,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::ensemble::Combiner;
    use ndarray::Array2;
    use promoml_core::model_util::sigmoid;

    /// A binary model `p = sigmoid(b + w·x)`, with or without its exact explanation, or
    /// (`interact`) `p = sigmoid(x0 x1)`, which has none.
    struct Logistic {
        w: Vec<f64>,
        b: f64,
        exact: bool,
        interact: bool,
    }

    impl FittedModel for Logistic {
        fn predict(&self, d: &Dataset) -> Result<Predictions> {
            let raw = d.x.rows().into_iter().map(|r| {
                if self.interact {
                    r[0] * r[1]
                } else {
                    self.b + r.iter().zip(&self.w).map(|(x, w)| x * w).sum::<f64>()
                }
            });
            Ok(Predictions::binary(raw.map(sigmoid).collect::<Vec<_>>()))
        }
        fn n_classes(&self) -> Option<usize> {
            Some(2)
        }
        fn explain(&self, d: &Dataset, baseline: &[f64]) -> Option<Result<Explanations>> {
            self.exact.then(|| promoml_core::explain::linear(d, &self.w, self.b, baseline, Space::LogOdds))
        }
    }

    fn data() -> Dataset {
        let x = Array2::from_shape_fn((6, 3), |(i, j)| ((i * 3 + j) as f64 * 0.37).sin());
        Dataset::from_x(x, vec!["a".into(), "c=x".into(), "c=y".into()])
    }

    fn member(w: [f64; 3], b: f64, exact: bool) -> (String, String, Box<dyn FittedModel>) {
        ("m".into(), "test.logistic".into(), Box::new(Logistic { w: w.to_vec(), b, exact, interact: false }))
    }

    fn logits(m: &FinalModel, ds: &Dataset) -> Vec<f64> {
        m.predict(ds).unwrap().scores().into_iter().map(logit).collect()
    }

    #[test]
    fn a_stacked_ensemble_combines_its_members_explanations_additively() {
        let ds = data();
        let inputs = Inputs::new(&ds.feature_names, &["a".into(), "c".into()], true);
        let combiner = Combiner { weights: vec![0.7, 0.0, 1.3], intercepts: vec![0.1, -0.4], stacking: true };
        let members = vec![
            member([1.0, -2.0, 0.5], 0.2, true),
            member([9.0, 9.0, 9.0], 9.0, false),
            member([-0.5, 1.0, 2.0], -0.1, true),
        ];
        let fitted = Fitted::Model(FinalModel::Ensemble {
            name: "ensemble".into(),
            layer1: members,
            layer2: Vec::new(),
            combiner,
        });
        let baseline = [0.1, 0.0, 1.0];
        let e = explain(&fitted, &ds, Some(&baseline), &inputs, true, SamplingSettings::default()).unwrap();
        assert_eq!(e.method, Method::Ensemble, "the member with weight 0 needs no exact method");
        assert_eq!(e.inputs, ["a", "c"]);
        let Fitted::Model(m) = &fitted else { unreachable!() };
        for (i, l) in logits(m, &ds).iter().enumerate() {
            assert!((e.values.total(i) - l).abs() < 1e-9, "row {i}: {} vs {l}", e.values.total(i));
        }
        // Base value: b_1 - b_0 + Σ w_m (raw output of member m at the baseline).
        let at = |w: [f64; 3], b: f64| b + w.iter().zip(&baseline).map(|(w, x)| w * x).sum::<f64>();
        let want = -0.5 + 0.7 * at([1.0, -2.0, 0.5], 0.2) + 1.3 * at([-0.5, 1.0, 2.0], -0.1);
        assert!((e.values.base[0] - want).abs() < 1e-12);
    }

    #[test]
    fn models_without_an_exact_method_are_sampled_additively() {
        let ds = data();
        let inputs = Inputs::new(&ds.feature_names, &["a".into(), "c".into()], true);
        let m = FinalModel::Single {
            name: "t".into(),
            kind: "test.logistic".into(),
            model: Box::new(Logistic { w: Vec::new(), b: 0.0, exact: false, interact: true }),
        };
        let want = logits(&m, &ds);
        let baseline = [0.0, 0.0, 0.0];
        let fitted = Fitted::Model(m);
        let e = explain(&fitted, &ds, Some(&baseline), &inputs, true, SamplingSettings::default()).unwrap();
        assert_eq!((e.method, e.space), (Method::Sampling, Space::LogOdds));
        for (i, l) in want.iter().enumerate() {
            assert!((e.values.total(i) - l).abs() < 1e-9, "row {i}");
            // x0 x1 against a zero baseline: the two players share the product equally.
            let half = ds.x[[i, 0]] * ds.x[[i, 1]] / 2.0;
            assert!(
                (e.values.contributions[[i, 0]] - half).abs() < 1e-9
                    && (e.values.contributions[[i, 1]] - half).abs() < 1e-9
            );
        }
        let err = explain(&fitted, &ds, None, &inputs, true, SamplingSettings::default()).unwrap_err().to_string();
        assert!(err.contains("no baseline row"), "{err}");
    }

    #[test]
    fn one_hot_features_group_back_to_their_column() {
        let features: Vec<String> = ["a", "c=x", "c=y", "c=__other__", "d=e=f", "b=1"].map(String::from).to_vec();
        let columns: Vec<String> = ["a", "c", "d", "d=e"].map(String::from).to_vec();
        let g = Inputs::new(&features, &columns, true);
        assert_eq!(g.names, ["a", "c", "d=e", "b=1"]);
        assert_eq!(g.members, vec![vec![0], vec![1, 2, 3], vec![4], vec![5]]);
        let flat = Inputs::new(&features, &columns, false);
        assert_eq!(flat.names.len(), 6);
    }

    #[test]
    fn a_row_keeps_its_largest_contributions_and_the_rest() {
        let values = Explanations {
            space: Space::Value,
            base: vec![1.0],
            contributions: ndarray::Array2::from_shape_vec((1, 3), vec![0.5, -2.0, 0.25]).unwrap(),
        };
        let e = Explained {
            space: Space::Value,
            method: Method::Exact,
            output: "prediction".into(),
            inputs: vec!["a".into(), "b".into(), "c".into()],
            values,
        };
        let r = e.row(0, 2);
        assert_eq!(r.contributions.iter().map(|c| c.feature.as_str()).collect::<Vec<_>>(), ["b", "a"]);
        assert_eq!(r.rest, 0.25);
        assert_eq!(r.base_value + r.contributions.iter().map(|c| c.contribution).sum::<f64>() + r.rest, -0.25);
    }
}
