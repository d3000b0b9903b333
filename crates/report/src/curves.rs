//! Test-split curves of a binary model, summarised as points: ROC, precision–recall and a
//! calibration (reliability) table. Built from labels and scores; no row, id or raw score is
//! kept, only aggregate points, so a report can be shared without personal data.

use serde::{Deserialize, Serialize};

/// Most points kept on the ROC and precision–recall curves (thinned evenly over thresholds).
pub const MAX_CURVE_POINTS: usize = 200;

/// Calibration bins (equal width on [0, 1]).
pub const CALIBRATION_BINS: usize = 10;

/// Curves of one model's scores on the test rows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Curves {
    /// The model whose test scores these are (normally the final model).
    pub model: String,
    /// Positive test rows.
    pub positives: usize,
    /// Negative test rows.
    pub negatives: usize,
    /// ROC curve, `[false positive rate, true positive rate]`, from (0, 0) to (1, 1).
    pub roc: Vec<[f64; 2]>,
    /// Precision–recall curve, `[recall, precision]`, by decreasing threshold.
    pub pr: Vec<[f64; 2]>,
    /// Reliability table: equal-width bins of the predicted probability; empty bins omitted.
    pub calibration: Vec<CalibrationBin>,
}

/// One calibration bin.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CalibrationBin {
    /// Lower edge of the bin (the upper edge is `lower + 1 / bins`).
    pub lower: f64,
    /// Mean predicted probability of the rows in the bin.
    pub mean_predicted: f64,
    /// Share of positive rows in the bin.
    pub observed: f64,
    /// Rows in the bin.
    pub count: usize,
}

/// Why curves could not be built.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CurveError {
    /// Labels and scores differ in length.
    #[error("{labels} labels but {scores} scores")]
    Length {
        /// Labels given.
        labels: usize,
        /// Scores given.
        scores: usize,
    },
    /// A score is NaN or infinite.
    #[error("score of row {row} is not a finite number")]
    NotFinite {
        /// Position of the bad score.
        row: usize,
    },
    /// One class is absent, so a ROC curve is undefined.
    #[error(
        "ROC and precision-recall curves need both classes; got {positives} positive and {negatives} negative rows"
    )]
    OneClass {
        /// Positive rows.
        positives: usize,
        /// Negative rows.
        negatives: usize,
    },
}

impl Curves {
    /// Build the curves of `model` from test `labels` (true = positive) and positive-class
    /// `scores` (probabilities in [0, 1] for the calibration table; scores outside are clamped
    /// there only).
    pub fn from_scores(model: &str, labels: &[bool], scores: &[f64]) -> Result<Curves, CurveError> {
        if labels.len() != scores.len() {
            return Err(CurveError::Length { labels: labels.len(), scores: scores.len() });
        }
        if let Some(row) = scores.iter().position(|s| !s.is_finite()) {
            return Err(CurveError::NotFinite { row });
        }
        let positives = labels.iter().filter(|&&l| l).count();
        let negatives = labels.len() - positives;
        if positives == 0 || negatives == 0 {
            return Err(CurveError::OneClass { positives, negatives });
        }
        let mut order: Vec<usize> = (0..scores.len()).collect();
        order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
        // One point per distinct threshold: cumulative true and false positives.
        let (mut tp, mut fp) = (0usize, 0usize);
        let mut steps: Vec<(usize, usize)> = Vec::new();
        for (i, &r) in order.iter().enumerate() {
            if labels[r] {
                tp += 1;
            } else {
                fp += 1;
            }
            let last_of_tie = order.get(i + 1).is_none_or(|&next| scores[next] != scores[r]);
            if last_of_tie {
                steps.push((tp, fp));
            }
        }
        let (p, n) = (positives as f64, negatives as f64);
        let mut roc = vec![[0.0, 0.0]];
        roc.extend(steps.iter().map(|&(tp, fp)| [fp as f64 / n, tp as f64 / p]));
        let pr_all: Vec<[f64; 2]> =
            steps.iter().map(|&(tp, fp)| [tp as f64 / p, tp as f64 / (tp + fp) as f64]).collect();
        let mut pr = vec![[0.0, pr_all[0][1]]];
        pr.extend(pr_all);
        Ok(Curves {
            model: model.to_string(),
            positives,
            negatives,
            roc: thin(roc, MAX_CURVE_POINTS),
            pr: thin(pr, MAX_CURVE_POINTS),
            calibration: calibration(labels, scores, CALIBRATION_BINS),
        })
    }

    /// Area under the ROC curve by the trapezoid rule over the kept points (equal to the
    /// exact AUC when no point was thinned away).
    pub fn roc_area(&self) -> f64 {
        self.roc.windows(2).map(|w| (w[1][0] - w[0][0]) * (w[1][1] + w[0][1]) / 2.0).sum()
    }
}

/// Keep at most `max` points, evenly spaced by index, always the first and the last.
fn thin(points: Vec<[f64; 2]>, max: usize) -> Vec<[f64; 2]> {
    if points.len() <= max {
        return points;
    }
    let m = points.len() - 1;
    (0..max).map(|i| points[(i * m + (max - 1) / 2) / (max - 1)]).collect()
}

fn calibration(labels: &[bool], scores: &[f64], bins: usize) -> Vec<CalibrationBin> {
    let mut sum = vec![0.0; bins];
    let mut pos = vec![0usize; bins];
    let mut count = vec![0usize; bins];
    for (&l, &s) in labels.iter().zip(scores) {
        let s = s.clamp(0.0, 1.0);
        let b = ((s * bins as f64) as usize).min(bins - 1);
        sum[b] += s;
        count[b] += 1;
        pos[b] += usize::from(l);
    }
    (0..bins)
        .filter(|&b| count[b] > 0)
        .map(|b| CalibrationBin {
            lower: b as f64 / bins as f64,
            mean_predicted: sum[b] / count[b] as f64,
            observed: pos[b] as f64 / count[b] as f64,
            count: count[b],
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Exact AUC by pair counting (ties count one half).
    fn pair_auc(labels: &[bool], scores: &[f64]) -> f64 {
        let (mut num, mut den) = (0.0, 0.0);
        for i in 0..labels.len() {
            for j in 0..labels.len() {
                if labels[i] && !labels[j] {
                    den += 1.0;
                    num += if scores[i] > scores[j] {
                        1.0
                    } else if scores[i] == scores[j] {
                        0.5
                    } else {
                        0.0
                    };
                }
            }
        }
        num / den
    }

    #[test]
    fn roc_area_equals_pair_counting_auc_with_ties() {
        let labels = [true, false, true, true, false, false, true, false];
        let scores = [0.9, 0.8, 0.8, 0.6, 0.4, 0.4, 0.3, 0.1];
        let c = Curves::from_scores("m", &labels, &scores).unwrap();
        assert!((c.roc_area() - pair_auc(&labels, &scores)).abs() < 1e-12);
        assert_eq!(c.roc.first(), Some(&[0.0, 0.0]));
        assert_eq!(c.roc.last(), Some(&[1.0, 1.0]));
        assert_eq!((c.positives, c.negatives), (4, 4));
        // Recall ends at 1 and precision there is the positive share.
        assert_eq!(c.pr.last(), Some(&[1.0, 0.5]));
    }

    #[test]
    fn calibration_bins_count_every_row() {
        let labels = [true, false, true, false, true];
        let scores = [0.95, 0.05, 0.91, 0.15, 1.0];
        let c = Curves::from_scores("m", &labels, &scores).unwrap();
        assert_eq!(c.calibration.iter().map(|b| b.count).sum::<usize>(), 5);
        let top = c.calibration.last().unwrap();
        assert_eq!((top.lower, top.count, top.observed), (0.9, 3, 1.0));
        assert!((top.mean_predicted - (0.95 + 0.91 + 1.0) / 3.0).abs() < 1e-12);
        assert_eq!(c.calibration[0].observed, 0.0);
    }

    #[test]
    fn thinning_keeps_ends_and_bounds_points() {
        let n = 5000;
        let labels: Vec<bool> = (0..n).map(|i| (i * 7919) % 13 < 4).collect();
        let scores: Vec<f64> = (0..n).map(|i| ((i * 104_729) % 9973) as f64 / 9973.0).collect();
        let c = Curves::from_scores("m", &labels, &scores).unwrap();
        assert_eq!(c.roc.len(), MAX_CURVE_POINTS);
        assert!(c.pr.len() <= MAX_CURVE_POINTS);
        assert_eq!(c.roc[0], [0.0, 0.0]);
        assert_eq!(*c.roc.last().unwrap(), [1.0, 1.0]);
        assert!(c.roc.windows(2).all(|w| w[1][0] >= w[0][0] && w[1][1] >= w[0][1]));
    }

    #[test]
    fn bad_inputs_are_named() {
        assert_eq!(Curves::from_scores("m", &[true], &[0.1, 0.2]).unwrap_err().to_string(), "1 labels but 2 scores");
        assert_eq!(
            Curves::from_scores("m", &[true, false], &[0.1, f64::NAN]).unwrap_err().to_string(),
            "score of row 1 is not a finite number"
        );
        assert!(Curves::from_scores("m", &[true, true], &[0.1, 0.2]).unwrap_err().to_string().contains("both classes"));
    }
}
