//! The ensemble: validation, binning, parallel deterministic tree growth, prediction and
//! feature importances.

use crate::bins::Binned;
use crate::tree::{Classes, Criterion, GrowParams, LEAF, Node, Sample, Shared, Squared, Tree, grow};
use ndarray::Array2;
use promoml_core::codec::{Decoder, Encoder};
use promoml_core::explain::{Explanations, ShapNode, Space, TreeShap};
use promoml_core::{Dataset, Error, FitContext, FittedModel, Predictions, Result};
use rand::{Rng as _, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

/// Rows predicted together: each tree is walked for a block of rows before moving on, so it
/// stays in cache.
const PREDICT_BLOCK: usize = 256;

/// How many features each node draws as split candidates.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum MaxFeatures {
    /// `Sqrt` for classification, a third of the features for regression.
    Auto,
    /// The square root of the number of features (rounded down, at least 1).
    Sqrt,
    /// The base-2 logarithm of the number of features (rounded down, at least 1).
    Log2,
    /// Every feature (bagged trees when `bootstrap` is on).
    All,
    /// This fraction of the features (in `(0, 1]`, rounded down, at least 1).
    Fraction(f64),
}

impl MaxFeatures {
    /// Candidate features per node for `p` features.
    pub fn count(self, p: usize, classification: bool) -> usize {
        let pf = p as f64;
        let m = match self {
            MaxFeatures::Auto if classification => pf.sqrt(),
            MaxFeatures::Auto => pf / 3.0,
            MaxFeatures::Sqrt => pf.sqrt(),
            MaxFeatures::Log2 => pf.log2(),
            MaxFeatures::All => pf,
            MaxFeatures::Fraction(f) => f * pf,
        };
        (m.floor() as usize).clamp(1, p.max(1))
    }
}

/// Impurity used to choose classification splits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SplitCriterion {
    /// Gini impurity.
    Gini,
    /// Shannon entropy (information gain).
    Entropy,
}

/// Settings of a forest fit; [`crate::Forest`] builds them from validated parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct ForestConfig {
    /// Number of trees.
    pub n_trees: usize,
    /// Maximum tree depth; 0 grows until leaves are pure or too small to split.
    pub max_depth: usize,
    /// Fewest training rows in a leaf (distinct rows of a tree's sample).
    pub min_samples_leaf: usize,
    /// Candidate features per node.
    pub max_features: MaxFeatures,
    /// Draw each tree's rows with replacement.
    pub bootstrap: bool,
    /// Rows drawn per tree as a fraction of the training rows, in `(0, 1]`.
    pub sample_fraction: f64,
    /// Quantile bins per feature, 2..=256.
    pub max_bins: usize,
    /// Classification impurity (ignored for regression, which uses squared error).
    pub criterion: SplitCriterion,
    /// Extremely randomised trees: one random threshold per candidate feature.
    pub random_splits: bool,
}

impl ForestConfig {
    /// Breiman's random forest with the defaults of `forest.random_forest`.
    pub fn random_forest() -> ForestConfig {
        ForestConfig {
            n_trees: 300,
            max_depth: 0,
            min_samples_leaf: 1,
            max_features: MaxFeatures::Auto,
            bootstrap: true,
            sample_fraction: 1.0,
            max_bins: 255,
            criterion: SplitCriterion::Gini,
            random_splits: false,
        }
    }
    /// Extremely randomised trees with the defaults of `forest.extra_trees`.
    pub fn extra_trees() -> ForestConfig {
        ForestConfig { bootstrap: false, random_splits: true, ..ForestConfig::random_forest() }
    }
}

/// A fitted forest (random forest or extra trees), for classification or regression.
#[derive(Debug, Clone)]
pub struct FittedForest {
    kind: String,
    trees: Vec<Tree>,
    n_features: usize,
    /// Outputs per leaf: number of classes, or 1 for regression.
    width: usize,
    classification: bool,
    importances: Vec<f64>,
}

impl FittedForest {
    /// Impurity-based feature importances (mean decrease in impurity), one per training
    /// column, summing to 1 (all zero when no tree split at all). Like scikit-learn's
    /// `feature_importances_`: each tree's decreases are normalised, then averaged.
    pub fn feature_importances(&self) -> &[f64] {
        &self.importances
    }
    /// Number of trees.
    pub fn n_trees(&self) -> usize {
        self.trees.len()
    }
    /// Number of classes (0 for regression).
    pub fn n_classes(&self) -> usize {
        if self.classification { self.width } else { 0 }
    }
    /// Total number of nodes over all trees.
    pub fn n_nodes(&self) -> usize {
        self.trees.iter().map(|t| t.nodes.len()).sum()
    }
    #[cfg(test)]
    pub(crate) fn trees(&self) -> &[Tree] {
        &self.trees
    }

    /// Read a forest that [`FittedModel::save`] wrote for model kind `kind`. Every node is
    /// checked (features, children and leaves in range, children after their parent), so a
    /// corrupt buffer is an error, never a panic or an endless walk.
    pub fn from_bytes(kind: &str, bytes: &[u8]) -> Result<FittedForest> {
        let mut d = Decoder::new(bytes, kind)?;
        let n_features = d.usize("feature count")?;
        let width = d.usize("outputs per leaf")?;
        let classification = d.bool("task flag")?;
        let importances = d.f64s("importances")?;
        let n_trees = d.usize("tree count")?;
        if width == 0 || (!classification && width != 1) || importances.len() != n_features {
            return Err(d.corrupt("leaf width or importances do not match the feature count"));
        }
        let mut trees = Vec::with_capacity(n_trees.min(1 << 16));
        for t in 0..n_trees {
            let thresholds = d.f64s("node thresholds")?;
            let features = d.u32s("node features")?;
            let indices = d.u32s("node indices")?;
            let values = d.f64s("leaf values")?;
            let tree_importances = d.f64s("tree importances")?;
            if thresholds.is_empty() || features.len() != thresholds.len() || indices.len() != thresholds.len() {
                return Err(d.corrupt(format!("tree {t} has inconsistent node arrays")));
            }
            let n = thresholds.len();
            for (i, (&f, &ix)) in features.iter().zip(&indices).enumerate() {
                let ok = if f == LEAF {
                    (ix as usize + 1).checked_mul(width).is_some_and(|end| end <= values.len())
                } else {
                    (f as usize) < n_features && (ix as usize) > i && (ix as usize) + 1 < n
                };
                if !ok {
                    return Err(d.corrupt(format!("tree {t} node {i} points outside the tree")));
                }
            }
            let nodes =
                (0..n).map(|i| Node { threshold: thresholds[i], feature: features[i], index: indices[i] }).collect();
            trees.push(Tree { nodes, values, importances: tree_importances, covers: Vec::new() });
        }
        // Node covers (for TreeSHAP) follow the trees; artifacts written before have none.
        if !d.at_end() {
            for (t, tree) in trees.iter_mut().enumerate() {
                let covers = d.f64s("node covers")?;
                if covers.len() != tree.nodes.len() || covers.iter().any(|c| !(c.is_finite() && *c >= 0.0)) {
                    return Err(d.corrupt(format!(
                        "tree {t} has {} node covers for {} nodes",
                        covers.len(),
                        tree.nodes.len()
                    )));
                }
                tree.covers = covers;
            }
        }
        d.finish()?;
        Ok(FittedForest { kind: kind.to_string(), trees, n_features, width, classification, importances })
    }
}

impl FittedModel for FittedForest {
    fn save(&self) -> Result<Vec<u8>> {
        let mut e = Encoder::new(&self.kind);
        e.usize(self.n_features);
        e.usize(self.width);
        e.bool(self.classification);
        e.f64s(&self.importances);
        e.usize(self.trees.len());
        for t in &self.trees {
            e.f64s(&t.nodes.iter().map(|n| n.threshold).collect::<Vec<_>>());
            e.u32s(&t.nodes.iter().map(|n| n.feature).collect::<Vec<_>>());
            e.u32s(&t.nodes.iter().map(|n| n.index).collect::<Vec<_>>());
            e.f64s(&t.values);
            e.f64s(&t.importances);
        }
        if self.trees.iter().all(|t| t.covers.len() == t.nodes.len()) {
            for t in &self.trees {
                e.f64s(&t.covers);
            }
        }
        Ok(e.finish())
    }
    fn predict(&self, data: &Dataset) -> Result<Predictions> {
        let who = self.kind.as_str();
        if data.n_features() != self.n_features {
            return Err(Error::model(
                who,
                format!("fitted on {} features, asked to predict rows with {}", self.n_features, data.n_features()),
            ));
        }
        check_finite(data, who)?;
        let n = data.n_rows();
        let k = self.width;
        let x = data.x.as_standard_layout();
        let p = self.n_features;
        let xs = x.as_slice().ok_or_else(|| Error::model(who, "feature matrix is not contiguous"))?;
        let mut out = vec![0.0; n * k];
        let scale = 1.0 / self.trees.len().max(1) as f64;
        out.par_chunks_mut(PREDICT_BLOCK * k).enumerate().for_each(|(block, o)| {
            let first = block * PREDICT_BLOCK;
            let rows = o.len() / k;
            for t in &self.trees {
                for r in 0..rows {
                    let row = &xs[(first + r) * p..(first + r + 1) * p];
                    let leaf = t.leaf(row);
                    for (acc, &v) in o[r * k..(r + 1) * k].iter_mut().zip(&t.values[leaf * k..(leaf + 1) * k]) {
                        *acc += v;
                    }
                }
            }
            for v in o.iter_mut() {
                *v *= scale;
            }
            if self.classification {
                for row in o.chunks_mut(k) {
                    let s: f64 = row.iter().sum();
                    if s > 0.0 {
                        row.iter_mut().for_each(|v| *v = (*v / s).clamp(0.0, 1.0));
                    }
                }
            }
        });
        if self.classification {
            let a = Array2::from_shape_vec((n, k), out).map_err(|e| Error::model(who, e.to_string()))?;
            Ok(Predictions::Proba(a))
        } else {
            Ok(Predictions::Values(out))
        }
    }
    fn n_classes(&self) -> Option<usize> {
        Some(self.n_classes())
    }
    /// Exact path-dependent TreeSHAP (covers: the training weight of each node): the
    /// positive-class probability of a binary forest (the mean of its trees' leaf
    /// probabilities, additive in probability), or the value of a regression forest.
    fn explain(&self, data: &Dataset, _baseline: &[f64]) -> Option<Result<Explanations>> {
        let (out, space) = match (self.classification, self.width) {
            (true, 2) => (1, Space::Probability),
            (false, 1) => (0, Space::Value),
            _ => return None,
        };
        if self.trees.iter().any(|t| t.covers.len() != t.nodes.len()) {
            return None;
        }
        let w = self.width;
        let trees = self
            .trees
            .iter()
            .map(|t| {
                t.nodes
                    .iter()
                    .zip(&t.covers)
                    .map(|(n, &cover)| {
                        if n.feature == LEAF {
                            ShapNode::leaf(t.values[n.index as usize * w + out], cover)
                        } else {
                            let (l, r) = (n.index as usize, n.index as usize + 1);
                            ShapNode::split(n.feature as usize, n.threshold, true, [l, r, l], cover)
                        }
                    })
                    .collect()
            })
            .collect();
        let scale = 1.0 / self.trees.len().max(1) as f64;
        Some(TreeShap::new(trees, self.n_features).and_then(|t| t.with_output(0.0, scale).explain(data, space)))
    }
}

fn check_finite(data: &Dataset, who: &str) -> Result<()> {
    for ((i, j), v) in data.x.indexed_iter() {
        if !v.is_finite() {
            let name = data.feature_names.get(j).map_or_else(|| format!("#{j}"), |s| format!("`{s}`"));
            return Err(Error::model(who, format!("feature {name} has a non-finite value ({v}) in row {i}")));
        }
    }
    Ok(())
}

/// Run `f` on a pool of `threads` workers (0 = the current pool).
fn with_threads<T: Send>(threads: usize, f: impl FnOnce() -> T + Send) -> T {
    if threads == 0 || threads == rayon::current_num_threads() {
        return f();
    }
    match rayon::ThreadPoolBuilder::new().num_threads(threads).build() {
        Ok(pool) => pool.install(f),
        Err(_) => f(),
    }
}

/// Fit a forest on `data`: classification when `data.classes` is not empty (targets are class
/// indices), regression otherwise. `kind` names the model in errors. Trees are grown in
/// parallel (on `ctx.threads` workers) and each is seeded from `ctx.seed` and its index only,
/// so the result does not depend on the number of threads.
pub fn fit_forest(kind: &str, data: &Dataset, cfg: &ForestConfig, ctx: &FitContext) -> Result<FittedForest> {
    let n = data.n_rows();
    let y = data.target(kind)?;
    if n == 0 {
        return Err(Error::model(kind, "the training data has no rows"));
    }
    if n > u32::MAX as usize {
        return Err(Error::model(kind, format!("{n} training rows is more than this forest supports")));
    }
    if y.len() != n {
        return Err(Error::model(kind, format!("{} targets for {n} rows", y.len())));
    }
    if cfg.n_trees == 0 {
        return Err(Error::model(kind, "n_trees must be at least 1"));
    }
    if !(cfg.sample_fraction > 0.0 && cfg.sample_fraction <= 1.0) {
        return Err(Error::model(kind, "sample_fraction must be in (0, 1]"));
    }
    check_finite(data, kind)?;
    let base_w = match &data.weights {
        None => vec![1.0; n],
        Some(w) if w.len() != n => return Err(Error::model(kind, format!("{} row weights for {n} rows", w.len()))),
        Some(w) => {
            if let Some(i) = w.iter().position(|v| !(v.is_finite() && *v >= 0.0)) {
                return Err(Error::model(kind, format!("row weight {} in row {i} is not a finite number >= 0", w[i])));
            }
            if !w.iter().any(|&v| v > 0.0) {
                return Err(Error::model(kind, "every row weight is zero"));
            }
            w.clone()
        }
    };
    with_threads(ctx.threads, || {
        let binned = Binned::new(data.x.view(), cfg.max_bins);
        if data.classes.is_empty() {
            if let Some(i) = y.iter().position(|v| !v.is_finite()) {
                return Err(Error::model(kind, format!("target in row {i} is not a finite number ({})", y[i])));
            }
            let (sw, swy) = y.iter().zip(&base_w).fold((0.0, 0.0), |(a, b), (&v, &w)| (a + w, b + w * v));
            let offset = swy / sw;
            let ys: Vec<f64> = y.iter().map(|v| v - offset).collect();
            fit_with(kind, &Squared { offset }, &binned, ys, &base_w, cfg, false, ctx)
        } else {
            let k = data.n_classes();
            let mut ys = Vec::with_capacity(n);
            let mut seen = vec![false; k];
            for (i, (&v, &w)) in y.iter().zip(&base_w).enumerate() {
                if !(v >= 0.0 && v.fract() == 0.0 && (v as usize) < k) {
                    return Err(Error::model(kind, format!("target in row {i} is {v}, not a class index below {k}")));
                }
                if w > 0.0 {
                    seen[v as usize] = true;
                }
                ys.push(v as u32);
            }
            let present: Vec<&str> =
                seen.iter().zip(&data.classes).filter(|(s, _)| **s).map(|(_, c)| c.as_str()).collect();
            if present.len() < 2 {
                let which = present.first().map_or(String::new(), |c| format!(" (`{c}`)"));
                return Err(Error::model(
                    kind,
                    format!("the training data has only one class{which}; a classifier needs at least two"),
                ));
            }
            match cfg.criterion {
                SplitCriterion::Gini => fit_with(kind, &Classes::<false> { k }, &binned, ys, &base_w, cfg, true, ctx),
                SplitCriterion::Entropy => fit_with(kind, &Classes::<true> { k }, &binned, ys, &base_w, cfg, true, ctx),
            }
        }
    })
}

#[allow(clippy::too_many_arguments)]
fn fit_with<C: Criterion>(
    kind: &str,
    crit: &C,
    binned: &Binned,
    ys: Vec<C::Y>,
    base_w: &[f64],
    cfg: &ForestConfig,
    classification: bool,
    ctx: &FitContext,
) -> Result<FittedForest> {
    let p = binned.features.len();
    let candidates: Vec<u32> = (0..p as u32).filter(|&f| binned.features[f as usize].n_bins() > 1).collect();
    let params = GrowParams {
        max_depth: if cfg.max_depth == 0 { usize::MAX } else { cfg.max_depth },
        min_samples_leaf: cfg.min_samples_leaf.max(1),
        mtry: cfg.max_features.count(p, classification),
        random_splits: cfg.random_splits,
    };
    let shared = Shared { crit, data: binned, candidates: &candidates, p: &params, ctx, who: kind };
    let trees: Vec<Tree> = (0..cfg.n_trees)
        .into_par_iter()
        .map(|t| {
            ctx.check_deadline(kind)?;
            let mut rng = ChaCha8Rng::seed_from_u64(ctx.seed);
            rng.set_stream(t as u64);
            let sample = draw_sample(&ys, base_w, cfg, &mut rng);
            grow(&shared, sample, &mut rng)
        })
        .collect::<Result<_>>()?;
    let importances = importances(&trees, p);
    Ok(FittedForest {
        kind: kind.to_string(),
        trees,
        n_features: p,
        width: crit.out_width(),
        classification,
        importances,
    })
}

/// The rows of one tree: a bootstrap sample (counts become weights) or a subsample without
/// replacement, keeping rows of positive weight.
fn draw_sample<Y: Copy>(ys: &[Y], base_w: &[f64], cfg: &ForestConfig, rng: &mut ChaCha8Rng) -> Sample<Y> {
    let n = ys.len();
    let m = ((cfg.sample_fraction * n as f64).round() as usize).clamp(1, n);
    let mut counts = vec![0u32; n];
    if cfg.bootstrap {
        for _ in 0..m {
            counts[rng.random_range(0..n)] += 1;
        }
    } else if m < n {
        let mut perm: Vec<u32> = (0..n as u32).collect();
        for i in 0..m {
            let j = rng.random_range(i..n);
            perm.swap(i, j);
            counts[perm[i] as usize] = 1;
        }
    } else {
        counts.fill(1);
    }
    if !counts.iter().zip(base_w).any(|(&c, &w)| c > 0 && w > 0.0) {
        // Every drawn row has zero weight: use all weighted rows instead.
        counts.fill(1);
    }
    let mut s = Sample { rows: Vec::with_capacity(m.min(n)), ys: Vec::with_capacity(m.min(n)), ws: Vec::new() };
    for (i, (&c, &w)) in counts.iter().zip(base_w).enumerate() {
        if c > 0 && w > 0.0 {
            s.rows.push(i as u32);
            s.ys.push(ys[i]);
            s.ws.push(f64::from(c) * w);
        }
    }
    s
}

/// Mean over trees (that split at least once) of each tree's normalised impurity decreases,
/// normalised again.
fn importances(trees: &[Tree], p: usize) -> Vec<f64> {
    let mut acc = vec![0.0; p];
    for t in trees {
        let total: f64 = t.importances.iter().sum();
        if total > 0.0 {
            for (a, &v) in acc.iter_mut().zip(&t.importances) {
                *a += v / total;
            }
        }
    }
    let total: f64 = acc.iter().sum();
    if total > 0.0 {
        acc.iter_mut().for_each(|v| *v /= total);
    }
    acc
}
