//! The one metrics module: every score a report shows is computed here.

use crate::{Error, Predictions, Result, Task};
use serde::{Deserialize, Serialize};

/// A scoring metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    /// Area under the ROC curve (one-vs-rest macro average for multiclass).
    RocAuc,
    /// Average precision, i.e. area under the precision-recall curve (binary).
    PrAuc,
    /// Mean negative log-likelihood of the true class.
    LogLoss,
    /// Share of rows whose most likely class is the true one.
    Accuracy,
    /// F1 of the positive class at threshold 0.5 (macro average for multiclass).
    F1,
    /// Root mean squared error.
    Rmse,
    /// Mean absolute error.
    Mae,
    /// Coefficient of determination.
    R2,
}

impl Metric {
    /// Every metric.
    pub const ALL: [Metric; 8] = [
        Metric::RocAuc,
        Metric::PrAuc,
        Metric::LogLoss,
        Metric::Accuracy,
        Metric::F1,
        Metric::Rmse,
        Metric::Mae,
        Metric::R2,
    ];

    /// Name as written in TOML and reports.
    pub fn name(self) -> &'static str {
        match self {
            Metric::RocAuc => "roc_auc",
            Metric::PrAuc => "pr_auc",
            Metric::LogLoss => "log_loss",
            Metric::Accuracy => "accuracy",
            Metric::F1 => "f1",
            Metric::Rmse => "rmse",
            Metric::Mae => "mae",
            Metric::R2 => "r2",
        }
    }
    /// Parse a name, suggesting the closest one on a typo.
    pub fn from_name(name: &str) -> Result<Metric> {
        Metric::ALL.into_iter().find(|m| m.name() == name).ok_or_else(|| {
            let hint = crate::did_you_mean(name, Metric::ALL.iter().map(|m| m.name()))
                .map(|s| format!("; did you mean `{s}`?"))
                .unwrap_or_default();
            Error::config(
                "search.metric",
                format!(
                    "unknown metric `{name}` (known: {}){hint}",
                    Metric::ALL.iter().map(|m| m.name()).collect::<Vec<_>>().join(", ")
                ),
            )
        })
    }
    /// Whether larger values are better.
    pub fn higher_is_better(self) -> bool {
        !matches!(self, Metric::LogLoss | Metric::Rmse | Metric::Mae)
    }
    /// Whether the metric applies to `task`.
    pub fn applies_to(self, task: Task) -> bool {
        match self {
            Metric::RocAuc => task.is_classification() || task == Task::Anomaly,
            Metric::LogLoss | Metric::Accuracy | Metric::F1 => task.is_classification(),
            Metric::PrAuc => matches!(task, Task::Binary | Task::Anomaly),
            Metric::Rmse | Metric::Mae | Metric::R2 => task == Task::Regression,
        }
    }
    /// The metrics reported for a task.
    pub fn for_task(task: Task) -> Vec<Metric> {
        Metric::ALL.into_iter().filter(|m| m.applies_to(task)).collect()
    }
    /// The default metric a search optimises for a task.
    pub fn default_for(task: Task) -> Metric {
        match task {
            Task::Binary | Task::Multiclass => Metric::RocAuc,
            Task::Regression => Metric::Rmse,
            // Uplift pipelines rank by Qini AUC (computed by the uplift runner, not a `Metric`);
            // this is the metric of their base classifiers.
            Task::Uplift => Metric::RocAuc,
            // Detectors' scores against the label column (when one is given).
            Task::Anomaly => Metric::RocAuc,
        }
    }
    /// Score predictions against true targets (class indices or values).
    pub fn score(self, y: &[f64], pred: &Predictions) -> Result<f64> {
        self.score_at(y, pred, 0.5)
    }
    /// [`Metric::score`] with the decision threshold of a binary task: `accuracy` and `f1`
    /// count a row as positive when its positive-class probability is at least `threshold`
    /// (0.5 in [`Metric::score`]); the other metrics do not depend on it.
    pub fn score_at(self, y: &[f64], pred: &Predictions, threshold: f64) -> Result<f64> {
        if y.len() != pred.len() {
            return Err(Error::data(format!("{} targets but {} predictions", y.len(), pred.len())));
        }
        if y.is_empty() {
            return Err(Error::data(format!("cannot compute {} on zero rows", self.name())));
        }
        let need_proba = || match pred {
            Predictions::Proba(p) => Ok(p),
            Predictions::Values(_) => Err(Error::data(format!("{} needs class probabilities", self.name()))),
        };
        let value = match self {
            Metric::RocAuc => {
                let p = need_proba()?;
                let k = p.ncols();
                if k == 2 {
                    roc_auc(y, &p.column(1).to_vec())?
                } else {
                    let mut total = 0.0;
                    let mut n = 0.0;
                    for c in 0..k {
                        let yc: Vec<f64> = y.iter().map(|&v| f64::from(u8::from(v as usize == c))).collect();
                        if let Ok(a) = roc_auc(&yc, &p.column(c).to_vec()) {
                            total += a;
                            n += 1.0;
                        }
                    }
                    if n == 0.0 {
                        return Err(Error::data("roc_auc needs at least two classes in the scored rows"));
                    }
                    total / n
                }
            }
            Metric::PrAuc => average_precision(y, &need_proba()?.column(1).to_vec())?,
            Metric::LogLoss => {
                let p = need_proba()?;
                let eps = 1e-15;
                -y.iter().enumerate().map(|(i, &c)| p[[i, c as usize]].clamp(eps, 1.0 - eps).ln()).sum::<f64>()
                    / y.len() as f64
            }
            Metric::Accuracy => {
                let s = pred.scores();
                let p = need_proba()?;
                let hits = y
                    .iter()
                    .enumerate()
                    .filter(|&(i, &c)| if p.ncols() == 2 { (s[i] >= threshold) == (c == 1.0) } else { s[i] == c })
                    .count();
                hits as f64 / y.len() as f64
            }
            Metric::F1 => {
                let p = need_proba()?;
                let s = pred.scores();
                if p.ncols() == 2 {
                    f1(y.iter().map(|&c| c == 1.0), s.iter().map(|&v| v >= threshold))
                } else {
                    let k = p.ncols();
                    (0..k)
                        .map(|c| f1(y.iter().map(|&v| v as usize == c), s.iter().map(|&v| v as usize == c)))
                        .sum::<f64>()
                        / k as f64
                }
            }
            Metric::Rmse | Metric::Mae | Metric::R2 => {
                let Predictions::Values(v) = pred else {
                    return Err(Error::data(format!("{} needs regression values", self.name())));
                };
                let n = y.len() as f64;
                match self {
                    Metric::Rmse => (y.iter().zip(v).map(|(a, b)| (a - b).powi(2)).sum::<f64>() / n).sqrt(),
                    Metric::Mae => y.iter().zip(v).map(|(a, b)| (a - b).abs()).sum::<f64>() / n,
                    _ => {
                        let mean = y.iter().sum::<f64>() / n;
                        let ss_tot: f64 = y.iter().map(|a| (a - mean).powi(2)).sum();
                        let ss_res: f64 = y.iter().zip(v).map(|(a, b)| (a - b).powi(2)).sum();
                        if ss_tot == 0.0 { 0.0 } else { 1.0 - ss_res / ss_tot }
                    }
                }
            }
        };
        Ok(value)
    }
}

fn f1(truth: impl Iterator<Item = bool>, pred: impl Iterator<Item = bool>) -> f64 {
    let (mut tp, mut fp, mut fneg) = (0.0, 0.0, 0.0);
    for (t, p) in truth.zip(pred) {
        match (t, p) {
            (true, true) => tp += 1.0,
            (false, true) => fp += 1.0,
            (true, false) => fneg += 1.0,
            _ => {}
        }
    }
    if tp == 0.0 { 0.0 } else { 2.0 * tp / (2.0 * tp + fp + fneg) }
}

/// The threshold on positive-class scores `s` that maximises F1 against 0/1 targets `y`:
/// a row is positive when its score is at least the threshold. Ties go to the higher
/// threshold. `None` when `y` has no positive row.
pub fn max_f1_threshold(y: &[f64], s: &[f64]) -> Option<f64> {
    let positives = y.iter().filter(|&&v| v == 1.0).count();
    if positives == 0 || y.len() != s.len() {
        return None;
    }
    let mut idx: Vec<usize> = (0..s.len()).filter(|&i| s[i].is_finite()).collect();
    idx.sort_by(|&a, &b| s[b].total_cmp(&s[a]));
    let (mut tp, mut fp) = (0usize, 0usize);
    let mut best: Option<(f64, f64)> = None;
    let mut i = 0;
    while i < idx.len() {
        // Every row scoring s[idx[i]] is positive at this threshold.
        let t = s[idx[i]];
        while i < idx.len() && s[idx[i]] == t {
            if y[idx[i]] == 1.0 {
                tp += 1
            } else {
                fp += 1
            }
            i += 1;
        }
        let f = 2.0 * tp as f64 / (2 * tp + fp + (positives - tp)) as f64;
        if best.is_none_or(|(b, _)| f > b) {
            best = Some((f, t));
        }
    }
    best.map(|(_, t)| t)
}

/// ROC-AUC of scores `s` for 0/1 labels `y`, with ties counted as half (the Mann-Whitney U).
pub fn roc_auc(y: &[f64], s: &[f64]) -> Result<f64> {
    let n = y.len();
    let mut idx: Vec<usize> = (0..n).collect();
    idx.sort_by(|&a, &b| s[a].total_cmp(&s[b]));
    let mut rank_sum_pos = 0.0;
    let mut i = 0;
    while i < n {
        let mut j = i;
        while j + 1 < n && s[idx[j + 1]] == s[idx[i]] {
            j += 1;
        }
        let avg_rank = (i + j) as f64 / 2.0 + 1.0;
        for &k in &idx[i..=j] {
            if y[k] == 1.0 {
                rank_sum_pos += avg_rank;
            }
        }
        i = j + 1;
    }
    let pos = y.iter().filter(|&&v| v == 1.0).count() as f64;
    let neg = n as f64 - pos;
    if pos == 0.0 || neg == 0.0 {
        return Err(Error::data("roc_auc needs both classes in the scored rows"));
    }
    Ok((rank_sum_pos - pos * (pos + 1.0) / 2.0) / (pos * neg))
}

/// Average precision (scikit-learn's definition: sum over thresholds of recall gain × precision).
pub fn average_precision(y: &[f64], s: &[f64]) -> Result<f64> {
    let mut idx: Vec<usize> = (0..y.len()).collect();
    idx.sort_by(|&a, &b| s[b].total_cmp(&s[a]));
    let pos = y.iter().filter(|&&v| v == 1.0).count() as f64;
    if pos == 0.0 {
        return Err(Error::data("pr_auc needs positive rows in the scored rows"));
    }
    let (mut tp, mut fp, mut ap, mut last_recall) = (0.0, 0.0, 0.0, 0.0);
    let mut i = 0;
    while i < idx.len() {
        let mut j = i;
        while j < idx.len() && s[idx[j]] == s[idx[i]] {
            if y[idx[j]] == 1.0 {
                tp += 1.0;
            } else {
                fp += 1.0;
            }
            j += 1;
        }
        let recall = tp / pos;
        ap += (recall - last_recall) * tp / (tp + fp);
        last_recall = recall;
        i = j;
    }
    Ok(ap)
}

/// Precision among the `k` highest scores (ties at the cut broken by row order): the share of
/// true positives among the rows a detector flags when it flags `k` of them. PyOD reports it with
/// `k` = the number of positives ("precision @ n"); the anomaly task uses the contamination share.
pub fn precision_at_k(y: &[f64], s: &[f64], k: usize) -> Result<f64> {
    if y.len() != s.len() {
        return Err(Error::data(format!("{} labels but {} scores", y.len(), s.len())));
    }
    if k == 0 || k > y.len() {
        return Err(Error::data(format!("precision at k needs 1 <= k <= {} rows, got k = {k}", y.len())));
    }
    let mut idx: Vec<usize> = (0..y.len()).collect();
    idx.sort_by(|&a, &b| s[b].total_cmp(&s[a]).then(a.cmp(&b)));
    Ok(idx[..k].iter().filter(|&&i| y[i] == 1.0).count() as f64 / k as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_f1_threshold_sweeps_every_score() {
        // Positives score 0.3 and 0.8, negatives 0.1, 0.2, 0.9: at 0.3 F1 = 2·2/(2·2+1+0) = 0.8.
        let (y, s) = ([1.0, 0.0, 0.0, 1.0, 0.0], [0.3, 0.1, 0.2, 0.8, 0.9]);
        assert_eq!(max_f1_threshold(&y, &s), Some(0.3));
        let p = Predictions::binary(s);
        assert!((Metric::F1.score_at(&y, &p, 0.3).unwrap() - 0.8).abs() < 1e-12);
        assert!((Metric::F1.score(&y, &p).unwrap() - 0.5).abs() < 1e-12);
        assert!((Metric::Accuracy.score_at(&y, &p, 0.3).unwrap() - 0.8).abs() < 1e-12);
        assert_eq!(max_f1_threshold(&[0.0, 0.0], &[0.1, 0.2]), None);
    }

    #[test]
    fn auc_matches_hand_computed_values() {
        // scikit-learn: roc_auc_score([0,0,1,1],[0.1,0.4,0.35,0.8]) == 0.75
        assert!((roc_auc(&[0., 0., 1., 1.], &[0.1, 0.4, 0.35, 0.8]).unwrap() - 0.75).abs() < 1e-12);
        // ties count half
        assert!((roc_auc(&[0., 1.], &[0.5, 0.5]).unwrap() - 0.5).abs() < 1e-12);
        assert!(roc_auc(&[1., 1.], &[0.5, 0.2]).is_err());
        // scikit-learn: average_precision_score([0,0,1,1],[0.1,0.4,0.35,0.8]) == 0.8333...
        assert!(
            (average_precision(&[0., 0., 1., 1.], &[0.1, 0.4, 0.35, 0.8]).unwrap() - 0.833_333_333_333).abs() < 1e-9
        );
    }

    #[test]
    fn precision_at_k_counts_positives_among_the_top_scores() {
        let (y, s) = ([0., 1., 1., 0., 1.], [0.9, 0.8, 0.1, 0.2, 0.7]);
        assert_eq!(precision_at_k(&y, &s, 1).unwrap(), 0.0);
        assert!((precision_at_k(&y, &s, 3).unwrap() - 2.0 / 3.0).abs() < 1e-12);
        assert!(precision_at_k(&y, &s, 0).is_err() && precision_at_k(&y, &s, 6).is_err());
    }

    #[test]
    fn classification_and_regression_metrics() {
        let y = [0., 1., 1., 0.];
        let p = Predictions::binary([0.2, 0.9, 0.4, 0.1]);
        assert_eq!(Metric::Accuracy.score(&y, &p).unwrap(), 0.75);
        assert!((Metric::F1.score(&y, &p).unwrap() - 2.0 / 3.0).abs() < 1e-12);
        let ll = -(0.8f64.ln() + 0.9f64.ln() + 0.4f64.ln() + 0.9f64.ln()) / 4.0;
        assert!((Metric::LogLoss.score(&y, &p).unwrap() - ll).abs() < 1e-12);
        let v = Predictions::Values(vec![1.0, 2.0, 4.0]);
        let t = [1.0, 3.0, 5.0];
        assert!((Metric::Rmse.score(&t, &v).unwrap() - (2.0f64 / 3.0).sqrt()).abs() < 1e-12);
        assert!((Metric::Mae.score(&t, &v).unwrap() - 2.0 / 3.0).abs() < 1e-12);
        assert!((Metric::R2.score(&t, &v).unwrap() - (1.0 - 2.0 / (8.0 / 3.0 * 3.0))).abs() < 1e-12);
        assert!(Metric::from_name("roc_acu").unwrap_err().to_string().contains("did you mean `roc_auc`"));
    }
}
