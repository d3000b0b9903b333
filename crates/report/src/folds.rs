//! The `folds` section of a report: the whole pipeline run on K outer folds of one table
//! (`[evaluation] outer_folds = K`), each fold's test metrics per candidate, their mean and
//! sample standard deviation, and paired comparisons of the headline metric between the final
//! model and every other candidate (per-fold differences, their mean and a 95 % t-interval).

use crate::{Report, Scores};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Name of the row of the final model (whichever candidate or ensemble each fold chose).
pub const FINAL: &str = "final model";

/// `t_{0.975, df}` for df = 1..=19 (two-sided 95 %), from the Student t distribution.
const T975: [f64; 19] = [
    12.706_204_736,
    4.302_652_730,
    3.182_446_305,
    2.776_445_105,
    2.570_581_836,
    2.446_911_851,
    2.364_624_252,
    2.306_004_135,
    2.262_157_163,
    2.228_138_852,
    2.200_985_160,
    2.178_812_830,
    2.160_368_656,
    2.144_786_688,
    2.131_449_546,
    2.119_905_299,
    2.109_815_578,
    2.100_922_040,
    2.093_024_054,
];

/// The 97.5 % quantile of Student's t with `df` degrees of freedom (df ≥ 1; beyond the table,
/// the normal approximation with the first Cornish–Fisher correction).
pub fn t975(df: usize) -> f64 {
    match df {
        0 => f64::NAN,
        1..=19 => T975[df - 1],
        _ => {
            let (z, d) = (1.959_963_985_f64, df as f64);
            z + (z.powi(3) + z) / (4.0 * d) + (5.0 * z.powi(5) + 16.0 * z.powi(3) + 3.0 * z) / (96.0 * d * d)
        }
    }
}

/// Mean and sample standard deviation (n − 1 in the denominator; NaN for fewer than 2 values).
pub fn mean_sd(v: &[f64]) -> (f64, f64) {
    let n = v.len() as f64;
    let mean = v.iter().sum::<f64>() / n;
    let sd =
        if v.len() < 2 { f64::NAN } else { (v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt() };
    (mean, sd)
}

/// Per-fold values `v` summarised: mean, sample sd and the 95 % t-interval of the mean
/// (mean ± t_{0.975, n−1} · sd / √n).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct MeanInterval {
    /// Mean over the folds.
    pub mean: f64,
    /// Sample standard deviation over the folds.
    pub sd: f64,
    /// Lower end of the 95 % t-interval of the mean.
    pub low: f64,
    /// Upper end of the 95 % t-interval of the mean.
    pub high: f64,
}

impl MeanInterval {
    /// The summary of `v` (at least 2 values).
    pub fn of(v: &[f64]) -> MeanInterval {
        let (mean, sd) = mean_sd(v);
        let half = t975(v.len().saturating_sub(1)) * sd / (v.len() as f64).sqrt();
        MeanInterval { mean, sd, low: mean - half, high: mean + half }
    }
}

/// The `folds` section (see the module documentation).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FoldsSection {
    /// Number of outer folds K: fold r tests on the rows with `i % K == r`.
    pub k: usize,
    /// The headline metric (the pipeline's search metric), compared in `paired`.
    pub metric: String,
    /// Whether larger values of `metric` are better.
    pub higher_is_better: bool,
    /// The test metrics reported on every fold.
    pub metrics: Vec<String>,
    /// The final model each fold chose (by cross-validation on that fold's training rows).
    pub final_models: Vec<String>,
    /// Test rows of each fold.
    pub test_rows: Vec<usize>,
    /// The final model (row [`FINAL`]) first, then every leaderboard candidate present on all
    /// folds, in the last fold's leaderboard order.
    pub candidates: Vec<FoldScores>,
    /// Candidates missing from the leaderboard of some fold (failed there), left out above.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub incomplete: Vec<String>,
    /// The final model against each other candidate on `metric`, paired by fold.
    pub paired: Vec<PairedDifference>,
}

/// One candidate's test metrics on every fold.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FoldScores {
    /// Leaderboard name, or [`FINAL`].
    pub name: String,
    /// Metric → its test value on each fold, fold 0 first.
    pub values: BTreeMap<String, Vec<f64>>,
    /// Metric → mean over the folds.
    pub mean: Scores,
    /// Metric → sample standard deviation over the folds.
    pub sd: Scores,
}

/// `first − second` on `metric`, fold by fold, with the mean difference and its 95 %
/// t-interval (mean ± t_{0.975, K−1} · sd / √K). Positive means `first` scored higher.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PairedDifference {
    /// The metric compared.
    pub metric: String,
    /// The first candidate (the final model).
    pub first: String,
    /// The candidate it is compared with.
    pub second: String,
    /// `first − second` on each fold.
    pub differences: Vec<f64>,
    /// Mean, sample sd and 95 % t-interval of the differences.
    #[serde(flatten)]
    pub summary: MeanInterval,
}

impl PairedDifference {
    /// `first − second` over the folds.
    pub fn new(metric: &str, first: &str, second: &str, a: &[f64], b: &[f64]) -> PairedDifference {
        let differences: Vec<f64> = a.iter().zip(b).map(|(x, y)| x - y).collect();
        PairedDifference {
            metric: metric.to_string(),
            first: first.to_string(),
            second: second.to_string(),
            summary: MeanInterval::of(&differences),
            differences,
        }
    }
}

fn scores(name: &str, per_fold: &[&Scores], metrics: &[String]) -> FoldScores {
    let mut values = BTreeMap::new();
    let (mut mean, mut sd) = (Scores::new(), Scores::new());
    for m in metrics {
        let v: Option<Vec<f64>> = per_fold.iter().map(|s| s.get(m).copied()).collect();
        if let Some(v) = v {
            let (mu, s) = mean_sd(&v);
            mean.insert(m.clone(), mu);
            sd.insert(m.clone(), s);
            values.insert(m.clone(), v);
        }
    }
    FoldScores { name: name.to_string(), values, mean, sd }
}

impl FoldsSection {
    /// The section of the fold reports `folds` (fold 0 first; at least 2, same task and metric).
    pub fn from_reports(folds: &[Report]) -> FoldsSection {
        let last = folds.last().expect("at least one fold");
        let metric = last.metric.clone();
        let mut metrics: Vec<String> = last.test.keys().cloned().collect();
        metrics.retain(|m| folds.iter().all(|r| r.test.contains_key(m)));
        let finals: Vec<&Scores> = folds.iter().map(|r| &r.test).collect();
        let mut candidates = vec![scores(FINAL, &finals, &metrics)];
        let mut incomplete = Vec::new();
        let mut names: Vec<&str> = Vec::new();
        for r in folds {
            for e in &r.leaderboard {
                if !names.contains(&e.name.as_str()) {
                    names.push(&e.name);
                }
            }
        }
        // The last fold's order first, then names only other folds have.
        names.sort_by_key(|n| last.leaderboard.iter().position(|e| e.name == *n).unwrap_or(usize::MAX));
        for name in names {
            let per: Option<Vec<&Scores>> =
                folds.iter().map(|r| r.leaderboard.iter().find(|e| e.name == name).map(|e| &e.test)).collect();
            match per {
                Some(per) => candidates.push(scores(name, &per, &metrics)),
                None => incomplete.push(name.to_string()),
            }
        }
        let mut paired = Vec::new();
        if let Some(f) = candidates[0].values.get(&metric) {
            for c in &candidates[1..] {
                if let Some(v) = c.values.get(&metric) {
                    paired.push(PairedDifference::new(&metric, FINAL, &c.name, f, v));
                }
            }
        }
        FoldsSection {
            k: folds.len(),
            metric,
            higher_is_better: last.higher_is_better,
            metrics,
            final_models: folds.iter().map(|r| r.final_model.clone()).collect(),
            test_rows: folds.iter().map(|r| r.data.test_rows).collect(),
            candidates,
            incomplete,
            paired,
        }
    }

    /// The final model's headline metric on each fold.
    pub fn headline(&self) -> Option<&Vec<f64>> {
        self.candidates.iter().find(|c| c.name == FINAL).and_then(|c| c.values.get(&self.metric))
    }

    /// The per-fold table: one row per candidate and metric (folds, mean, sd), head first.
    pub fn table(&self) -> (Vec<String>, Vec<Vec<String>>) {
        let mut head = vec!["candidate".to_string(), "metric".to_string()];
        head.extend((0..self.k).map(|r| format!("fold {r}")));
        head.extend(["mean".to_string(), "sd".to_string()]);
        let mut rows = Vec::new();
        for c in &self.candidates {
            for m in &self.metrics {
                let Some(v) = c.values.get(m) else { continue };
                let mut row =
                    vec![c.name.clone(), if *m == self.metric { format!("{m} (headline)") } else { m.clone() }];
                row.extend(v.iter().map(|x| format!("{x:.4}")));
                row.push(format!("{:.4}", c.mean[m]));
                row.push(format!("{:.4}", c.sd[m]));
                rows.push(row);
            }
        }
        (head, rows)
    }

    /// The paired table: one row per comparison (differences per fold, mean, 95 % interval).
    pub fn paired_table(&self) -> (Vec<String>, Vec<Vec<String>>) {
        let mut head = vec!["comparison".to_string()];
        head.extend((0..self.k).map(|r| format!("fold {r}")));
        head.extend(["mean difference".to_string(), "sd".to_string(), "95 % interval".to_string()]);
        let rows = self
            .paired
            .iter()
            .map(|p| {
                let mut row = vec![format!("{} − {} ({})", p.first, p.second, p.metric)];
                row.extend(p.differences.iter().map(|x| format!("{x:+.4}")));
                let s = &p.summary;
                row.push(format!("{:+.4}", s.mean));
                row.push(format!("{:.4}", s.sd));
                row.push(format!("[{:+.4}, {:+.4}]", s.low, s.high));
                row
            })
            .collect();
        (head, rows)
    }

    /// One sentence on what the section is.
    pub fn sentence(&self) -> String {
        let finals: Vec<String> = self.final_models.iter().enumerate().map(|(r, m)| format!("{r}: {m}")).collect();
        format!(
            "The whole pipeline (search, ensemble, test evaluation) ran on {} outer folds of the table: fold r tests \
             on the rows with i % {} == r and trains on the others (test rows per fold: {}). Sample standard \
             deviations over folds; paired differences with a 95 % t-interval (mean ± t(0.975, {}) · sd / √{}). \
             Final model per fold: {}. The rest of this report is fold {}'s.",
            self.k,
            self.k,
            self.test_rows.iter().map(usize::to_string).collect::<Vec<_>>().join(", "),
            self.k - 1,
            self.k,
            finals.join(", "),
            self.k - 1
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::LeaderboardEntry;

    fn fold(head: f64, other: f64) -> Report {
        let entry = |name: &str, v: f64| LeaderboardEntry {
            name: name.into(),
            kind: "k".into(),
            params: Default::default(),
            cv: Default::default(),
            cv_std: 0.0,
            test: [("roc_auc".to_string(), v), ("f1".to_string(), v / 2.0)].into(),
            fit_s: 0.0,
            n_trials: 1,
            threshold: None,
        };
        Report {
            metric: "roc_auc".into(),
            higher_is_better: true,
            final_model: "a".into(),
            test: [("roc_auc".to_string(), head), ("f1".to_string(), head / 2.0)].into(),
            leaderboard: vec![entry("a", head), entry("b", other)],
            ..Default::default()
        }
    }

    #[test]
    fn t_quantiles_and_mean_sd() {
        assert!((t975(4) - 2.776_445_105).abs() < 1e-9);
        assert!((t975(30) - 2.042_272_456).abs() < 1e-3);
        let (m, s) = mean_sd(&[1.0, 2.0, 3.0, 4.0]);
        assert_eq!(m, 2.5);
        assert!((s - (5.0f64 / 3.0).sqrt()).abs() < 1e-12);
    }

    #[test]
    fn section_from_fold_reports() {
        let folds = [fold(0.8, 0.7), fold(0.9, 0.85), fold(0.7, 0.72)];
        let f = FoldsSection::from_reports(&folds);
        assert_eq!((f.k, f.metrics.clone()), (3, vec!["f1".to_string(), "roc_auc".to_string()]));
        assert_eq!(f.candidates.iter().map(|c| c.name.as_str()).collect::<Vec<_>>(), [FINAL, "a", "b"]);
        assert_eq!(f.headline().unwrap(), &vec![0.8, 0.9, 0.7]);
        assert!((f.candidates[2].mean["roc_auc"] - (0.7 + 0.85 + 0.72) / 3.0).abs() < 1e-12);
        let p = &f.paired[1];
        assert_eq!((p.first.as_str(), p.second.as_str()), (FINAL, "b"));
        let d = [0.8 - 0.7, 0.9 - 0.85, 0.7 - 0.72];
        assert_eq!(p.differences, d);
        let (m, s) = mean_sd(&d);
        let half = 4.302_652_730 * s / 3f64.sqrt();
        assert!((p.summary.mean - m).abs() < 1e-15 && (p.summary.low - (m - half)).abs() < 1e-12);
        assert!(p.summary.low < p.summary.mean && p.summary.mean < p.summary.high);
        // A candidate that failed on one fold is listed as incomplete.
        let mut folds = folds.to_vec();
        folds[1].leaderboard.pop();
        let f = FoldsSection::from_reports(&folds);
        assert_eq!((f.candidates.len(), f.incomplete.clone()), (2, vec!["b".to_string()]));
        let (head, rows) = f.table();
        assert_eq!(head.len(), 2 + 3 + 2);
        assert_eq!(rows[1], ["final model", "roc_auc (headline)", "0.8000", "0.9000", "0.7000", "0.8000", "0.1000"]);
        let json = serde_json::to_string(&f).unwrap();
        assert_eq!(serde_json::from_str::<FoldsSection>(&json).unwrap(), f);
    }
}
