//! ECOD: empirical-cumulative-distribution outlier detection (Li, Zhao, Hu, Botta, Ionescu and
//! Chen, 2022), as PyOD's `ECOD` computes it. For every feature the fit keeps the sorted training
//! values (the empirical CDF) and the sign of the feature's skewness. A row's score sums, over
//! features, the largest of the left-tail, right-tail and skewness-chosen tail negative
//! log-probabilities:
//!
//! ```text
//! U_l = -ln F(x),  U_r = -ln (1 - F(x-)),  s = sign(skewness)
//! U_s = U_l · (-sign(s - 1)) + U_r · sign(s + 1)
//! score = Σ_j max(U_l, U_r, U_s)
//! ```
//!
//! with `F(x)` = share of training values `<= x` and `1 - F(x-)` = share `>= x`. On training rows
//! this is PyOD's score exactly; a new value beyond every training value gets the smallest tail
//! probability the sample can express, `1/n`, instead of `0` (which would be infinite).
//! Parameter-free; no randomness.

use ndarray::Array2;
use promoml_core::{Error, FittedDetector, Result};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

/// A fitted ECOD detector.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FittedEcod {
    /// Sorted training values, one vector per feature.
    sorted: Vec<Vec<f64>>,
    /// Sign of each feature's (biased, as SciPy's `skew`) skewness: -1, 0 or 1.
    skew_sign: Vec<f64>,
}

/// Sign with `sign(0) = 0`, as NumPy's.
fn sign(v: f64) -> f64 {
    if v > 0.0 {
        1.0
    } else if v < 0.0 {
        -1.0
    } else {
        0.0
    }
}

/// Fit ECOD on the rows of `x` (all values finite).
pub fn fit_ecod(kind: &str, x: &Array2<f64>) -> Result<FittedEcod> {
    let (n, d) = x.dim();
    if n < 2 {
        return Err(Error::model(kind, format!("needs at least 2 training rows, got {n}")));
    }
    if d == 0 {
        return Err(Error::model(kind, "needs at least one feature column"));
    }
    if let Some((i, j)) = x.indexed_iter().find(|(_, v)| !v.is_finite()).map(|(ij, _)| ij) {
        return Err(Error::model(kind, format!("value at row {}, feature {} is not finite", i + 1, j + 1)));
    }
    let (sorted, skew_sign): (Vec<Vec<f64>>, Vec<f64>) = (0..d)
        .into_par_iter()
        .map(|j| {
            let col = x.column(j);
            let nf = n as f64;
            let mean = col.sum() / nf;
            let m2 = col.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / nf;
            let m3 = col.iter().map(|v| (v - mean).powi(3)).sum::<f64>() / nf;
            // A constant column has no skewness; SciPy returns NaN there, we take 0.
            let skew = if m2 > 0.0 { m3 / m2.powf(1.5) } else { 0.0 };
            let mut s = col.to_vec();
            s.sort_by(f64::total_cmp);
            (s, sign(skew))
        })
        .unzip();
    Ok(FittedEcod { sorted, skew_sign })
}

impl FittedEcod {
    /// The score of one value of feature `j`.
    fn feature_score(&self, j: usize, v: f64) -> f64 {
        let s = &self.sorted[j];
        let n = s.len() as f64;
        let le = s.partition_point(|&t| t <= v); // values <= v
        let ge = s.len() - s.partition_point(|&t| t < v); // values >= v
        let u_l = -((le.max(1) as f64) / n).ln();
        let u_r = -((ge.max(1) as f64) / n).ln();
        let k = self.skew_sign[j];
        let u_s = u_l * -sign(k - 1.0) + u_r * sign(k + 1.0);
        u_l.max(u_r).max(u_s)
    }

    /// Rebuild from [`FittedDetector::save`] bytes.
    pub fn from_bytes(kind: &str, bytes: &[u8]) -> Result<FittedEcod> {
        let f: FittedEcod = serde_json::from_slice(bytes)
            .map_err(|e| Error::model(kind, format!("cannot read the saved detector: {e}")))?;
        let ok = !f.sorted.is_empty()
            && f.sorted.len() == f.skew_sign.len()
            && f.sorted.iter().all(|s| !s.is_empty() && s.len() == f.sorted[0].len())
            && f.sorted.iter().all(|s| s.windows(2).all(|w| w[0] <= w[1]));
        if !ok {
            return Err(Error::model(kind, "the saved detector is corrupt (empty or unsorted columns)"));
        }
        Ok(f)
    }
}

impl FittedDetector for FittedEcod {
    fn score(&self, x: &Array2<f64>) -> Result<Vec<f64>> {
        crate::check_width("anomaly.ecod", self.sorted.len(), x)?;
        Ok((0..x.nrows())
            .into_par_iter()
            .map(|i| x.row(i).iter().enumerate().map(|(j, &v)| self.feature_score(j, v)).sum())
            .collect())
    }
    fn save(&self) -> Result<Vec<u8>> {
        serde_json::to_vec(self).map_err(|e| Error::model("anomaly.ecod", e.to_string()))
    }
}
