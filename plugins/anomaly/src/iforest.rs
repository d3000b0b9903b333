//! Isolation forest (Liu, Ting and Zhou, 2008), as in scikit-learn's `IsolationForest`: each tree
//! isolates a random subsample of `max_samples` rows by random axis-parallel cuts up to depth
//! `ceil(log2(max_samples))`; abnormal rows are isolated in few cuts. The score of a row is
//! `2^(-E[h(x)] / c(max_samples))`, in (0, 1], higher = more abnormal.
//!
//! Trees are fitted in parallel; tree `t` draws from its own ChaCha8 stream (`t`) of the fit's
//! seed, and a row's score sums the trees in index order, so results do not depend on the number
//! of threads.

use ndarray::{Array2, ArrayView1};
use promoml_core::{Error, FitContext, FittedDetector, Result, Rng};
use rand::{Rng as _, SeedableRng};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

/// Settings of an isolation forest.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct IsolationForestConfig {
    /// Number of trees.
    pub n_trees: usize,
    /// Rows drawn (without replacement) per tree; capped at the number of training rows.
    pub max_samples: usize,
    /// Share of the features each tree may cut on (at least one).
    pub max_features: f64,
}

impl Default for IsolationForestConfig {
    fn default() -> Self {
        IsolationForestConfig { n_trees: 100, max_samples: 256, max_features: 1.0 }
    }
}

/// A node of an isolation tree, stored in a flat vector (children after their parent).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum Node {
    /// Rows with `x[feature] <= threshold` go to `left`, the others to `right`.
    Split { feature: u32, threshold: f64, left: u32, right: u32 },
    /// A leaf holding `size` training rows of the subsample.
    Leaf { size: u32 },
}

/// A fitted isolation forest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FittedIsolationForest {
    n_features: usize,
    /// Subsample size actually used (the normaliser `c(psi)`).
    psi: usize,
    trees: Vec<Vec<Node>>,
}

/// Average path length of an unsuccessful search in a binary search tree of `n` keys: the
/// depth correction of a leaf that still holds `n` rows (scikit-learn's `_average_path_length`).
pub fn average_path_length(n: usize) -> f64 {
    match n {
        0 | 1 => 0.0,
        2 => 1.0,
        _ => {
            let n = n as f64;
            2.0 * ((n - 1.0).ln() + 0.577_215_664_901_532_9) - 2.0 * (n - 1.0) / n
        }
    }
}

/// Fit an isolation forest on the rows of `x` (all values finite).
pub fn fit_isolation_forest(
    kind: &str,
    x: &Array2<f64>,
    cfg: &IsolationForestConfig,
    ctx: &FitContext,
) -> Result<FittedIsolationForest> {
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
    ctx.check_deadline(kind)?;
    let psi = cfg.max_samples.clamp(2, n);
    let height_limit = (psi as f64).log2().ceil() as usize;
    let n_feat = ((cfg.max_features * d as f64) as usize).clamp(1, d);
    let trees: Vec<Vec<Node>> = (0..cfg.n_trees)
        .into_par_iter()
        .map(|t| {
            let mut rng = Rng::seed_from_u64(ctx.seed);
            rng.set_stream(t as u64);
            let mut rows = rand::seq::index::sample(&mut rng, n, psi).into_vec();
            let features: Vec<usize> =
                if n_feat == d { (0..d).collect() } else { rand::seq::index::sample(&mut rng, d, n_feat).into_vec() };
            let mut nodes = Vec::with_capacity(2 * psi);
            grow(x, &mut rows, &features, 0, height_limit, &mut rng, &mut nodes);
            nodes
        })
        .collect();
    ctx.check_deadline(kind)?;
    Ok(FittedIsolationForest { n_features: d, psi, trees })
}

/// Grow the subtree of `rows` at `depth`; returns its node index.
fn grow(
    x: &Array2<f64>,
    rows: &mut [usize],
    features: &[usize],
    depth: usize,
    limit: usize,
    rng: &mut Rng,
    nodes: &mut Vec<Node>,
) -> u32 {
    let at = nodes.len() as u32;
    nodes.push(Node::Leaf { size: rows.len() as u32 });
    if depth >= limit || rows.len() <= 1 {
        return at;
    }
    // A random feature among those not constant on these rows (scikit-learn skips constant
    // features too); a leaf when every feature is constant.
    let mut order = features.to_vec();
    let mut cut = None;
    while !order.is_empty() {
        let f = order.swap_remove(rng.random_range(0..order.len()));
        let (lo, hi) = rows.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &r| {
            let v = x[[r, f]];
            (lo.min(v), hi.max(v))
        });
        if hi > lo {
            let t = rng.random_range(lo..hi);
            cut = Some((f, t));
            break;
        }
    }
    let Some((f, t)) = cut else { return at };
    // Partition in place: `<= t` first. `t < hi`, so both sides are non-empty.
    let mut split = 0;
    for i in 0..rows.len() {
        if x[[rows[i], f]] <= t {
            rows.swap(i, split);
            split += 1;
        }
    }
    let (left_rows, right_rows) = rows.split_at_mut(split);
    let left = grow(x, left_rows, features, depth + 1, limit, rng, nodes);
    let right = grow(x, right_rows, features, depth + 1, limit, rng, nodes);
    nodes[at as usize] = Node::Split { feature: f as u32, threshold: t, left, right };
    at
}

impl FittedIsolationForest {
    /// Path length of `row` in one tree, with the leaf-size correction.
    fn path_length(tree: &[Node], row: ArrayView1<f64>) -> f64 {
        let mut i = 0usize;
        let mut depth = 0.0;
        loop {
            match tree[i] {
                Node::Split { feature, threshold, left, right } => {
                    i = if row[feature as usize] <= threshold { left } else { right } as usize;
                    depth += 1.0;
                }
                Node::Leaf { size } => return depth + average_path_length(size as usize),
            }
        }
    }

    /// Number of trees.
    pub fn n_trees(&self) -> usize {
        self.trees.len()
    }

    /// Check the structure after loading from bytes (indices in range, features known).
    fn validate(&self) -> std::result::Result<(), String> {
        if self.trees.is_empty() || self.psi < 2 {
            return Err("no trees or a subsample below 2 rows".into());
        }
        for (t, tree) in self.trees.iter().enumerate() {
            for node in tree {
                if let Node::Split { feature, threshold, left, right } = node {
                    let ok = (*feature as usize) < self.n_features
                        && threshold.is_finite()
                        && (*left as usize) < tree.len()
                        && (*right as usize) < tree.len();
                    if !ok {
                        return Err(format!("tree {t} has a node pointing outside the tree or the features"));
                    }
                }
            }
            // Children always follow their parent, so any walk ends.
            for (i, node) in tree.iter().enumerate() {
                if let Node::Split { left, right, .. } = node
                    && ((*left as usize) <= i || (*right as usize) <= i)
                {
                    return Err(format!("tree {t} has a child before its parent"));
                }
            }
        }
        Ok(())
    }

    /// Rebuild from [`FittedDetector::save`] bytes.
    pub fn from_bytes(kind: &str, bytes: &[u8]) -> Result<FittedIsolationForest> {
        let f: FittedIsolationForest = serde_json::from_slice(bytes)
            .map_err(|e| Error::model(kind, format!("cannot read the saved forest: {e}")))?;
        f.validate().map_err(|m| Error::model(kind, format!("the saved forest is corrupt: {m}")))?;
        Ok(f)
    }
}

impl FittedDetector for FittedIsolationForest {
    fn score(&self, x: &Array2<f64>) -> Result<Vec<f64>> {
        crate::check_width("anomaly.isolation_forest", self.n_features, x)?;
        let norm = average_path_length(self.psi);
        let n_trees = self.trees.len() as f64;
        // Blocks of rows in parallel; within a block, tree by tree (a tree stays in cache while
        // it scores the block). Each row still sums its trees in index order: same bits on any
        // number of threads.
        const BLOCK: usize = 256;
        let blocks: Vec<Vec<f64>> = (0..x.nrows().div_ceil(BLOCK))
            .into_par_iter()
            .map(|b| {
                let rows = b * BLOCK..((b + 1) * BLOCK).min(x.nrows());
                let mut depth = vec![0.0; rows.len()];
                for tree in &self.trees {
                    for (k, i) in rows.clone().enumerate() {
                        depth[k] += Self::path_length(tree, x.row(i));
                    }
                }
                depth.iter().map(|d| 2f64.powf(-(d / n_trees) / norm)).collect()
            })
            .collect();
        Ok(blocks.concat())
    }
    fn save(&self) -> Result<Vec<u8>> {
        serde_json::to_vec(self).map_err(|e| Error::model("anomaly.isolation_forest", e.to_string()))
    }
}
