//! Per-row explanations: how much each feature moved a model's raw output (log-odds for a
//! binary classifier, the value for a regressor) away from a base value, with
//! `base_value + Σ contributions = raw output` (local accuracy).
//!
//! Three estimators, from exact to general:
//!
//! - [`TreeShap`]: exact path-dependent TreeSHAP (Lundberg et al. 2018, *Consistent
//!   individualized feature attribution for tree ensembles*, Algorithm 2) over trees described
//!   as [`ShapNode`]s, whose covers (training weight per node) stand in for the data
//!   distribution. Splits may have a third child for missing values.
//! - Linear models: `w_j (x_j - b_j)` per feature against a baseline row `b`, in the model's
//!   raw space; see [`linear`].
//! - [`sampling`]: a seeded permutation-sampling estimator of baseline Shapley values for any
//!   model (a group of columns, or the whole behaviour sequence, counts as one player). Each
//!   permutation's marginal contributions telescope to `f(x) - f(b)`, so the estimate is
//!   additive exactly, whatever the number of permutations.
//!
//! ```
//! use promoml_core::explain::{ShapNode, TreeShap};
//! // x0 < 0.5 goes left (value 1, cover 3), else right (value 5, cover 1).
//! let tree = vec![
//!     ShapNode::split(0, 0.5, false, [1, 2, 1], 4.0),
//!     ShapNode::leaf(1.0, 3.0),
//!     ShapNode::leaf(5.0, 1.0),
//! ];
//! let shap = TreeShap::new(vec![tree], 1).unwrap();
//! let mut phi = vec![0.0];
//! let base = shap.expected_value();
//! shap.add_row(&[0.9], &mut phi);
//! assert_eq!(base, 2.0);
//! assert_eq!(base + phi[0], 5.0);
//! ```

use crate::{Dataset, Error, Result, Sequences};
use ndarray::{Array2, Array3};
use rand::SeedableRng;
use rand::seq::SliceRandom;

/// The space an explanation's numbers live in: the model's raw output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Space {
    /// Log-odds of the positive class (binary classifiers whose score is a sigmoid).
    LogOdds,
    /// The positive-class probability itself (models that average probabilities, such as a
    /// random forest, whose trees are additive in probability, not in log-odds).
    Probability,
    /// A value: the outcome of a regressor, an effect of an uplift model, an anomaly score.
    Value,
}

impl Space {
    /// Name for outputs (`log_odds`, `probability`, `value`).
    pub fn name(self) -> &'static str {
        match self {
            Space::LogOdds => "log_odds",
            Space::Probability => "probability",
            Space::Value => "value",
        }
    }
}

/// Explanations of a batch of rows: one base value and one contribution per feature and row.
#[derive(Debug, Clone, PartialEq)]
pub struct Explanations {
    /// What the numbers are in.
    pub space: Space,
    /// The base value of each row (the expected raw output, or the output at the baseline).
    pub base: Vec<f64>,
    /// Contributions, rows × features (or × groups, for the sampling estimator).
    pub contributions: Array2<f64>,
}

impl Explanations {
    /// `base + Σ contributions` of row `i`: the raw output the explanation accounts for.
    pub fn total(&self, i: usize) -> f64 {
        self.base[i] + self.contributions.row(i).sum()
    }
}

/// Leaf marker in [`ShapNode::feature`].
const LEAF: usize = usize::MAX;

/// One node of a tree to explain: a split on `feature` (values below `threshold`, or equal to
/// it when `left_if_equal`, go left; missing values go to `children[2]`) or a leaf with a
/// value. `cover` is the training weight (rows or hessians) that reached the node.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ShapNode {
    /// Split feature (`usize::MAX` for a leaf).
    pub feature: usize,
    /// Split threshold.
    pub threshold: f64,
    /// Whether a value equal to the threshold goes left (`x <= t`) rather than right (`x < t`).
    pub left_if_equal: bool,
    /// Left, right and missing-value child (the missing child may equal left or right).
    pub children: [usize; 3],
    /// Training weight that reached the node.
    pub cover: f64,
    /// Leaf value (ignored for splits).
    pub value: f64,
}

impl ShapNode {
    /// A split node.
    pub fn split(feature: usize, threshold: f64, left_if_equal: bool, children: [usize; 3], cover: f64) -> ShapNode {
        ShapNode { feature, threshold, left_if_equal, children, cover, value: 0.0 }
    }
    /// A leaf.
    pub fn leaf(value: f64, cover: f64) -> ShapNode {
        ShapNode { feature: LEAF, threshold: 0.0, left_if_equal: false, children: [0; 3], cover, value }
    }
    fn is_leaf(&self) -> bool {
        self.feature == LEAF
    }
    /// The child a value goes to.
    fn route(&self, v: f64) -> usize {
        if v.is_nan() {
            self.children[2]
        } else if v < self.threshold || (self.left_if_equal && v == self.threshold) {
            self.children[0]
        } else {
            self.children[1]
        }
    }
    /// The distinct children, in order left, right, missing.
    fn distinct_children(&self) -> impl Iterator<Item = usize> + '_ {
        let c = self.children;
        [Some(c[0]), (c[1] != c[0]).then_some(c[1]), (c[2] != c[0] && c[2] != c[1]).then_some(c[2])]
            .into_iter()
            .flatten()
    }
}

/// A tree ensemble to explain with exact path-dependent TreeSHAP. The raw output is
/// `offset + scale × Σ trees` (a boosting base score, or `1 / n_trees` for a forest).
#[derive(Debug, Clone)]
pub struct TreeShap {
    trees: Vec<Vec<ShapNode>>,
    n_features: usize,
    /// Added to every output (a booster's base score).
    pub offset: f64,
    /// Multiplies the sum of the trees (a forest's `1 / n_trees`).
    pub scale: f64,
}

impl TreeShap {
    /// Trees (root first, every child numbered after its parent) over `n_features` features.
    /// Errors when a child or feature index is out of range or a child does not follow its parent.
    pub fn new(trees: Vec<Vec<ShapNode>>, n_features: usize) -> Result<TreeShap> {
        for (t, nodes) in trees.iter().enumerate() {
            if nodes.is_empty() {
                return Err(Error::data(format!("TreeSHAP: tree {t} has no node")));
            }
            for (i, n) in nodes.iter().enumerate() {
                if n.is_leaf() {
                    continue;
                }
                if n.feature >= n_features || n.children.iter().any(|&c| c <= i || c >= nodes.len()) {
                    return Err(Error::data(format!("TreeSHAP: tree {t} node {i} is malformed")));
                }
            }
        }
        Ok(TreeShap { trees, n_features, offset: 0.0, scale: 1.0 })
    }

    /// The same trees with an offset and a scale on their sum.
    pub fn with_output(mut self, offset: f64, scale: f64) -> TreeShap {
        self.offset = offset;
        self.scale = scale;
        self
    }

    /// The expected raw output under the covers: the base value of every row.
    pub fn expected_value(&self) -> f64 {
        self.offset + self.scale * self.trees.iter().map(|t| expected(t, 0)).sum::<f64>()
    }

    /// The raw output for one row, walking the trees.
    pub fn output(&self, row: &[f64]) -> f64 {
        let walk = |t: &[ShapNode]| {
            let mut i = 0;
            while !t[i].is_leaf() {
                i = t[i].route(row[t[i].feature]);
            }
            t[i].value
        };
        self.offset + self.scale * self.trees.iter().map(|t| walk(t)).sum::<f64>()
    }

    /// Add the SHAP values of `row` to `phi` (one per feature).
    pub fn add_row(&self, row: &[f64], phi: &mut [f64]) {
        let mut tree_phi = vec![0.0; self.n_features];
        // One path buffer per depth, reused across nodes and trees (no allocation per node).
        let mut pool: Vec<Vec<PathElem>> = Vec::new();
        for t in &self.trees {
            let mut walk = Walk { tree: t, row, phi: &mut tree_phi, pool: &mut pool };
            walk.recurse(0, &[], 0, 1.0, 1.0, None);
        }
        for (p, v) in phi.iter_mut().zip(tree_phi) {
            *p += self.scale * v;
        }
    }

    /// Explanations of every row of `data` (all columns of `data.x`).
    pub fn explain(&self, data: &Dataset, space: Space) -> Result<Explanations> {
        if data.n_features() != self.n_features {
            return Err(Error::data(format!(
                "TreeSHAP: the trees read {} features, the rows have {}",
                self.n_features,
                data.n_features()
            )));
        }
        let base = self.expected_value();
        let n = data.n_rows();
        let mut contributions = Array2::zeros((n, self.n_features));
        let mut row = vec![0.0; self.n_features];
        for i in 0..n {
            row.iter_mut().zip(data.x.row(i)).for_each(|(r, v)| *r = *v);
            let mut phi = vec![0.0; self.n_features];
            self.add_row(&row, &mut phi);
            contributions.row_mut(i).iter_mut().zip(phi).for_each(|(c, v)| *c = v);
        }
        Ok(Explanations { space, base: vec![base; n], contributions })
    }
}

/// The share of a node's cover that goes to `child` (uniform when the node has no cover).
fn share(tree: &[ShapNode], node: usize, child: usize) -> f64 {
    let n = &tree[node];
    if n.cover > 0.0 { tree[child].cover / n.cover } else { 1.0 / n.distinct_children().count() as f64 }
}

fn expected(tree: &[ShapNode], node: usize) -> f64 {
    let n = &tree[node];
    if n.is_leaf() {
        return n.value;
    }
    n.distinct_children().map(|c| share(tree, node, c) * expected(tree, c)).sum()
}

/// One element of the path of unique features from the root (Algorithm 2's `m`).
#[derive(Debug, Clone, Copy)]
struct PathElem {
    feature: Option<usize>,
    zero: f64,
    one: f64,
    weight: f64,
}

fn extend(path: &mut Vec<PathElem>, zero: f64, one: f64, feature: Option<usize>) {
    let l = path.len();
    path.push(PathElem { feature, zero, one, weight: if l == 0 { 1.0 } else { 0.0 } });
    let lf = (l + 1) as f64;
    for i in (0..l).rev() {
        path[i + 1].weight += one * path[i].weight * (i + 1) as f64 / lf;
        path[i].weight = zero * path[i].weight * (l - i) as f64 / lf;
    }
}

fn unwind(path: &mut Vec<PathElem>, index: usize) {
    let d = path.len() - 1;
    let (one, zero) = (path[index].one, path[index].zero);
    let mut next = path[d].weight;
    let df = (d + 1) as f64;
    for i in (0..d).rev() {
        if one != 0.0 {
            let tmp = path[i].weight;
            path[i].weight = next * df / ((i + 1) as f64 * one);
            next = tmp - path[i].weight * zero * (d - i) as f64 / df;
        } else {
            path[i].weight = path[i].weight * df / (zero * (d - i) as f64);
        }
    }
    for i in index..d {
        path[i].feature = path[i + 1].feature;
        path[i].zero = path[i + 1].zero;
        path[i].one = path[i + 1].one;
    }
    path.pop();
}

fn unwound_sum(path: &[PathElem], index: usize) -> f64 {
    let d = path.len() - 1;
    let (one, zero) = (path[index].one, path[index].zero);
    let mut next = path[d].weight;
    let df = (d + 1) as f64;
    let mut total = 0.0;
    for i in (0..d).rev() {
        if one != 0.0 {
            let tmp = next * df / ((i + 1) as f64 * one);
            total += tmp;
            next = path[i].weight - tmp * zero * (d - i) as f64 / df;
        } else if zero != 0.0 {
            total += path[i].weight / zero / ((d - i) as f64 / df);
        }
    }
    total
}

/// One tree's TreeSHAP recursion for one row (Algorithm 2's RECURSE), with the path of each
/// depth kept in `pool[depth]`.
struct Walk<'a> {
    tree: &'a [ShapNode],
    row: &'a [f64],
    phi: &'a mut [f64],
    pool: &'a mut Vec<Vec<PathElem>>,
}

impl Walk<'_> {
    /// Visit `node`, whose parent's path is `parent`, reached with fractions `zero` and `one`
    /// through a split on `feature`.
    fn recurse(&mut self, node: usize, parent: &[PathElem], depth: usize, zero: f64, one: f64, feature: Option<usize>) {
        if self.pool.len() <= depth {
            self.pool.resize_with(depth + 1, Vec::new);
        }
        let mut path = std::mem::take(&mut self.pool[depth]);
        path.clear();
        path.extend_from_slice(parent);
        extend(&mut path, zero, one, feature);
        let n = self.tree[node];
        if n.is_leaf() {
            for i in 1..path.len() {
                let w = unwound_sum(&path, i);
                let e = path[i];
                if let Some(f) = e.feature {
                    self.phi[f] += w * (e.one - e.zero) * n.value;
                }
            }
        } else {
            let hot = n.route(self.row[n.feature]);
            let (mut in_zero, mut in_one) = (1.0, 1.0);
            if let Some(k) = (1..path.len()).find(|&k| path[k].feature == Some(n.feature)) {
                in_zero = path[k].zero;
                in_one = path[k].one;
                unwind(&mut path, k);
            }
            for c in n.distinct_children() {
                let z = share(self.tree, node, c) * in_zero;
                let o = if c == hot { in_one } else { 0.0 };
                // A path that neither the covers nor the row can take contributes nothing.
                if z == 0.0 && o == 0.0 {
                    continue;
                }
                self.recurse(c, &path, depth + 1, z, o, Some(n.feature));
            }
        }
        self.pool[depth] = path;
    }
}

/// Exact explanations of a model that is linear in its raw space: `raw = intercept + w · x`.
/// Contributions are `w_j (x_j - b_j)` against the baseline row `b`; the base value is the raw
/// output at the baseline, so `base + Σ contributions = raw` for every row.
pub fn linear(data: &Dataset, weights: &[f64], intercept: f64, baseline: &[f64], space: Space) -> Result<Explanations> {
    let p = data.n_features();
    if weights.len() != p || baseline.len() != p {
        return Err(Error::data(format!(
            "linear explanation: {} weights and a baseline of {} for {p} features",
            weights.len(),
            baseline.len()
        )));
    }
    let base = intercept + weights.iter().zip(baseline).map(|(w, b)| w * b).sum::<f64>();
    let n = data.n_rows();
    let contributions = Array2::from_shape_fn((n, p), |(i, j)| weights[j] * (data.x[[i, j]] - baseline[j]));
    Ok(Explanations { space, base: vec![base; n], contributions })
}

/// Settings of the [`sampling`] estimator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SamplingSettings {
    /// Permutations per row, drawn in antithetic pairs (a permutation and its reverse).
    pub permutations: usize,
    /// Seed of the permutations.
    pub seed: u64,
}

impl Default for SamplingSettings {
    fn default() -> Self {
        SamplingSettings { permutations: 32, seed: 17 }
    }
}

/// Permutation-sampling estimate of baseline Shapley values of the rows of `data` for the raw
/// output `f` (one value per row of the dataset it is given). Players are `groups` of tabular
/// columns (each column in at most one group), plus the whole behaviour sequence as one last
/// player when `data` has sequences. A row's coalition takes its own values for the players in
/// it and the `baseline` row's (an empty sequence) for the others. Returns contributions per
/// player (groups in order, then the sequence) and the base value `f(baseline)`.
///
/// Every permutation's marginal contributions sum to `f(x) - f(baseline)`, so the estimate is
/// additive exactly; its variance shrinks with [`SamplingSettings::permutations`].
pub fn sampling(
    data: &Dataset,
    f: &dyn Fn(&Dataset) -> Result<Vec<f64>>,
    baseline: &[f64],
    groups: &[Vec<usize>],
    settings: SamplingSettings,
    space: Space,
) -> Result<Explanations> {
    let p = data.n_features();
    if baseline.len() != p {
        return Err(Error::data(format!("sampling explanation: a baseline of {} for {p} features", baseline.len())));
    }
    let seq = data.sequences.as_ref();
    let players = groups.len() + usize::from(seq.is_some());
    let n = data.n_rows();
    let perms = settings.permutations.max(2).next_multiple_of(2);
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(settings.seed);
    let mut orders: Vec<Vec<usize>> = Vec::with_capacity(perms);
    for _ in 0..perms / 2 {
        let mut o: Vec<usize> = (0..players).collect();
        o.shuffle(&mut rng);
        let r: Vec<usize> = o.iter().rev().copied().collect();
        orders.push(o);
        orders.push(r);
    }
    // Evaluation rows: per explained row, the baseline, then one row per step of each order.
    let per_row = 1 + perms * players;
    let total = n * per_row;
    let mut x = Array2::zeros((total, p));
    let mut in_seq = vec![false; total];
    for i in 0..n {
        let first = i * per_row;
        x.row_mut(first).iter_mut().zip(baseline).for_each(|(v, b)| *v = *b);
        for (k, order) in orders.iter().enumerate() {
            let mut current: Vec<f64> = baseline.to_vec();
            let mut seq_on = false;
            for (step, &player) in order.iter().enumerate() {
                if player < groups.len() {
                    for &j in &groups[player] {
                        current[j] = data.x[[i, j]];
                    }
                } else {
                    seq_on = true;
                }
                let r = first + 1 + k * players + step;
                x.row_mut(r).iter_mut().zip(&current).for_each(|(v, c)| *v = *c);
                in_seq[r] = seq_on;
            }
        }
    }
    let sequences = seq.map(|s| {
        let (_, steps, channels) = s.data.dim();
        let mut out = Array3::zeros((total, steps, channels));
        let mut lengths = vec![0; total];
        for r in 0..total {
            let i = r / per_row;
            if in_seq[r] {
                out.index_axis_mut(ndarray::Axis(0), r).assign(&s.data.index_axis(ndarray::Axis(0), i));
                lengths[r] = s.lengths[i];
            } else {
                // An empty sequence: one zero step (models need at least one step).
                lengths[r] = s.lengths[i].min(1);
            }
        }
        Sequences { data: out, lengths, channels: s.channels.clone() }
    });
    let eval = Dataset {
        x,
        feature_names: data.feature_names.clone(),
        y: None,
        classes: data.classes.clone(),
        treatment: None,
        sequences,
        weights: None,
    };
    let out = f(&eval)?;
    if out.len() != total {
        return Err(Error::data(format!("sampling explanation: {} outputs for {total} rows", out.len())));
    }
    let mut contributions = Array2::zeros((n, players));
    let mut base = Vec::with_capacity(n);
    for i in 0..n {
        let first = i * per_row;
        let b = out[first];
        base.push(b);
        for (k, order) in orders.iter().enumerate() {
            let mut prev = b;
            for (step, &player) in order.iter().enumerate() {
                let v = out[first + 1 + k * players + step];
                contributions[[i, player]] += (v - prev) / perms as f64;
                prev = v;
            }
        }
    }
    Ok(Explanations { space, base, contributions })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Exact Shapley values of one tree by enumerating coalitions, with the path-dependent
    /// conditional expectation (Lundberg et al. Algorithm 1).
    fn brute_force(tree: &[ShapNode], row: &[f64], p: usize) -> Vec<f64> {
        fn value(tree: &[ShapNode], row: &[f64], set: u32, node: usize) -> f64 {
            let n = &tree[node];
            if n.is_leaf() {
                return n.value;
            }
            if set & (1 << n.feature) != 0 {
                value(tree, row, set, n.route(row[n.feature]))
            } else {
                n.distinct_children().map(|c| share(tree, node, c) * value(tree, row, set, c)).sum()
            }
        }
        let fact = |k: usize| (1..=k).product::<usize>() as f64;
        let mut phi = vec![0.0; p];
        for (j, ph) in phi.iter_mut().enumerate() {
            for set in 0u32..(1 << p) {
                if set & (1 << j) != 0 {
                    continue;
                }
                let s = set.count_ones() as usize;
                let w = fact(s) * fact(p - s - 1) / fact(p);
                *ph += w * (value(tree, row, set | (1 << j), 0) - value(tree, row, set, 0));
            }
        }
        phi
    }

    fn sample_tree() -> Vec<ShapNode> {
        // Feature 0 twice on one path, a missing branch, and an uneven cover.
        vec![
            ShapNode::split(0, 0.5, false, [1, 2, 3], 10.0),
            ShapNode::split(1, 1.0, true, [4, 5, 4], 6.0),
            ShapNode::split(0, 2.0, false, [6, 7, 7], 3.0),
            ShapNode::leaf(-1.0, 1.0),
            ShapNode::split(2, 0.0, false, [8, 9, 9], 4.0),
            ShapNode::leaf(2.0, 2.0),
            ShapNode::leaf(0.5, 2.0),
            ShapNode::leaf(3.0, 1.0),
            ShapNode::leaf(-2.0, 3.0),
            ShapNode::leaf(4.0, 1.0),
        ]
    }

    #[test]
    fn tree_shap_matches_brute_force_and_is_additive() {
        let tree = sample_tree();
        let shap = TreeShap::new(vec![tree.clone()], 3).unwrap();
        let rows = [
            [0.1, 0.5, -1.0],
            [0.1, 1.0, 1.0],
            [1.0, 3.0, 0.0],
            [3.0, 0.0, 5.0],
            [f64::NAN, 0.0, 0.0],
            [0.2, f64::NAN, 2.0],
        ];
        for row in rows {
            let mut phi = vec![0.0; 3];
            shap.add_row(&row, &mut phi);
            let want = brute_force(&tree, &row, 3);
            for (a, b) in phi.iter().zip(&want) {
                assert!((a - b).abs() < 1e-12, "{row:?}: {phi:?} vs {want:?}");
            }
            let total = shap.expected_value() + phi.iter().sum::<f64>();
            assert!((total - shap.output(&row)).abs() < 1e-12);
        }
    }

    #[test]
    fn linear_and_sampling_agree_on_a_linear_function() {
        let x = Array2::from_shape_vec((2, 3), vec![1.0, 2.0, 3.0, -1.0, 0.0, 4.0]).unwrap();
        let ds = Dataset::from_x(x, vec!["a".into(), "b".into(), "c".into()]);
        let (w, c, b) = ([0.5, -2.0, 1.0], 0.3, [0.0, 1.0, 2.0]);
        let exact = linear(&ds, &w, c, &b, Space::Value).unwrap();
        let f = |d: &Dataset| Ok(d.x.rows().into_iter().map(|r| c + r.dot(&ndarray::arr1(&w))).collect());
        let groups = vec![vec![0], vec![1], vec![2]];
        let est = sampling(&ds, &f, &b, &groups, SamplingSettings::default(), Space::Value).unwrap();
        for i in 0..2 {
            assert!((exact.base[i] - est.base[i]).abs() < 1e-12);
            for j in 0..3 {
                assert!((exact.contributions[[i, j]] - est.contributions[[i, j]]).abs() < 1e-12);
            }
            let raw = c + (0..3).map(|j| w[j] * ds.x[[i, j]]).sum::<f64>();
            assert!((exact.total(i) - raw).abs() < 1e-12 && (est.total(i) - raw).abs() < 1e-12);
        }
    }

    #[test]
    fn sampling_is_additive_for_an_interaction() {
        let x = Array2::from_shape_vec((1, 3), vec![1.0, 2.0, 3.0]).unwrap();
        let ds = Dataset::from_x(x, vec!["a".into(), "b".into(), "c".into()]);
        let f = |d: &Dataset| Ok(d.x.rows().into_iter().map(|r| r[0] * r[1] + r[2].sin()).collect());
        let groups = vec![vec![0, 1], vec![2]];
        let est = sampling(&ds, &f, &[0.0; 3], &groups, SamplingSettings::default(), Space::Value).unwrap();
        assert_eq!(est.contributions.ncols(), 2);
        assert!((est.total(0) - (2.0 + 3f64.sin())).abs() < 1e-12);
        // Two players, antithetic pairs: both orders are seen, so the estimate is exact.
        assert!((est.contributions[[0, 0]] - 2.0).abs() < 1e-12);
    }
}
