//! Quantile binning: every feature is cut once per fit into at most `max_bins` bins, and each
//! training value is replaced by its bin code (a `u8`), stored column-major.
//!
//! Bin `b` of a feature holds the values `x` with `edges[b - 1] < x <= edges[b]`, so a split
//! "bin <= b" is the threshold test `x <= edges[b]`, which is what fitted trees store: they
//! predict on raw values and never need the binning again.

use ndarray::ArrayView2;
use rayon::prelude::*;

/// At most this many rows are sorted to place a feature's bin edges; the rest are binned
/// with the edges found. Keeps binning cheap on large data at no visible cost in quality.
const EDGE_SAMPLE: usize = 200_000;

/// The bins of one feature.
#[derive(Debug, Clone)]
pub(crate) struct FeatureBins {
    /// Upper bound (inclusive) of every bin but the last, increasing.
    pub edges: Vec<f64>,
    /// Smallest training value in each bin.
    pub lo: Vec<f64>,
    /// Largest training value in each bin.
    pub hi: Vec<f64>,
}

impl FeatureBins {
    /// Number of bins.
    pub fn n_bins(&self) -> usize {
        self.edges.len() + 1
    }
    /// The bin of `x`.
    #[cfg(test)]
    pub fn bin(&self, x: f64) -> usize {
        self.edges.partition_point(|&e| e < x)
    }
}

/// The training matrix as bin codes.
#[derive(Debug, Clone)]
pub(crate) struct Binned {
    /// Number of rows.
    pub n_rows: usize,
    /// `codes[f * n_rows + i]` is the bin of row `i` for feature `f`.
    pub codes: Vec<u8>,
    /// Bins per feature.
    pub features: Vec<FeatureBins>,
}

impl Binned {
    /// Bin every column of `x` (all values finite) into at most `max_bins` (2..=256) bins.
    pub fn new(x: ArrayView2<'_, f64>, max_bins: usize) -> Binned {
        let n_rows = x.nrows();
        let max_bins = max_bins.clamp(2, 256);
        let per_feature: Vec<(FeatureBins, Vec<u8>)> = (0..x.ncols())
            .into_par_iter()
            .map(|f| {
                let col: Vec<f64> = x.column(f).to_vec();
                let edges = edges_of(&col, max_bins);
                let nb = edges.len() + 1;
                let mut lo = vec![f64::INFINITY; nb];
                let mut hi = vec![f64::NEG_INFINITY; nb];
                let mut codes = Vec::with_capacity(n_rows);
                for &v in &col {
                    let b = edges.partition_point(|&e| e < v);
                    lo[b] = lo[b].min(v);
                    hi[b] = hi[b].max(v);
                    codes.push(b as u8);
                }
                // Bins no training value fell into (possible only when the edges came from a
                // sample) borrow their bounds from the edges around them.
                for b in 0..nb {
                    if lo[b] > hi[b] {
                        let l = if b == 0 { edges.first().copied().unwrap_or(0.0) } else { edges[b - 1] };
                        let h = if b + 1 == nb { l } else { edges[b] };
                        lo[b] = l;
                        hi[b] = h;
                    }
                }
                (FeatureBins { edges, lo, hi }, codes)
            })
            .collect();
        let mut codes = Vec::with_capacity(n_rows * per_feature.len());
        let mut features = Vec::with_capacity(per_feature.len());
        for (fb, c) in per_feature {
            codes.extend_from_slice(&c);
            features.push(fb);
        }
        Binned { n_rows, codes, features }
    }

    /// The codes of feature `f`, one per row.
    pub fn column(&self, f: usize) -> &[u8] {
        &self.codes[f * self.n_rows..(f + 1) * self.n_rows]
    }
}

/// A cut between `a < b` that sends `a` left and `b` right under `x <= cut`.
fn midpoint(a: f64, b: f64) -> f64 {
    let m = a / 2.0 + b / 2.0;
    if m >= a && m < b { m } else { a }
}

/// Bin edges of one column: one bin per distinct value when there are at most `max_bins`,
/// otherwise cuts between distinct values placed so bins hold about equal numbers of rows (a
/// value that fills several bins' worth of rows gets a bin of its own).
fn edges_of(col: &[f64], max_bins: usize) -> Vec<f64> {
    let mut v: Vec<f64> = if col.len() > EDGE_SAMPLE {
        let step = col.len() as f64 / EDGE_SAMPLE as f64;
        (0..EDGE_SAMPLE).map(|i| col[(i as f64 * step) as usize]).collect()
    } else {
        col.to_vec()
    };
    v.sort_unstable_by(f64::total_cmp);
    let mut distinct: Vec<(f64, usize)> = Vec::new();
    for &x in &v {
        match distinct.last_mut() {
            Some((d, c)) if *d == x => *c += 1,
            _ => distinct.push((x, 1)),
        }
    }
    let d = distinct.len();
    if d <= max_bins {
        return distinct.windows(2).map(|w| midpoint(w[0].0, w[1].0)).collect();
    }
    let mut edges = Vec::with_capacity(max_bins - 1);
    let mut rest = v.len() as f64;
    let mut bins_left = max_bins as f64;
    let mut acc = 0.0;
    for i in 0..d - 1 {
        acc += distinct[i].1 as f64;
        let values_after = (d - 1 - i) as f64;
        if acc >= rest / bins_left || values_after <= bins_left - 1.0 {
            edges.push(midpoint(distinct[i].0, distinct[i + 1].0));
            rest -= acc;
            acc = 0.0;
            bins_left -= 1.0;
            if bins_left <= 1.0 {
                break;
            }
        }
    }
    edges
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array2;

    #[test]
    fn few_distinct_values_get_one_bin_each() {
        let e = edges_of(&[3.0, 1.0, 2.0, 2.0, 1.0], 255);
        assert_eq!(e, vec![1.5, 2.5]);
    }

    #[test]
    fn many_values_respect_max_bins_and_are_balanced() {
        let col: Vec<f64> = (0..10_000).map(|i| (i as f64).sqrt()).collect();
        let e = edges_of(&col, 16);
        assert_eq!(e.len(), 15);
        assert!(e.windows(2).all(|w| w[0] < w[1]));
        let x = Array2::from_shape_vec((col.len(), 1), col).unwrap();
        let b = Binned::new(x.view(), 16);
        let mut counts = [0usize; 16];
        for &c in b.column(0) {
            counts[c as usize] += 1;
        }
        assert!(counts.iter().all(|&c| (500..=750).contains(&c)), "{counts:?}");
    }

    #[test]
    fn heavy_value_gets_its_own_bin_and_codes_match_edges() {
        let mut col = vec![0.0; 5000];
        col.extend((0..5000).map(|i| i as f64 + 1.0));
        let x = Array2::from_shape_vec((col.len(), 1), col.clone()).unwrap();
        let b = Binned::new(x.view(), 32);
        let fb = &b.features[0];
        assert!(fb.n_bins() <= 32);
        for (i, &v) in col.iter().enumerate() {
            let c = b.column(0)[i] as usize;
            assert_eq!(fb.bin(v), c);
            assert!(fb.lo[c] <= v && v <= fb.hi[c]);
        }
        assert_eq!(b.column(0)[0], 0);
        assert_eq!(fb.hi[0], 0.0);
    }
}
