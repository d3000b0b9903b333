//! One decision tree: grown on bin codes with histogram (or, for small nodes, sorted) split
//! search, stored as a flat array of nodes with raw-value thresholds for prediction.

use crate::bins::Binned;
use promoml_core::{FitContext, Result};
use rand::Rng as _;
use rand_chacha::ChaCha8Rng;

/// `Node::feature` of a leaf.
pub(crate) const LEAF: u32 = u32::MAX;

/// Nodes with fewer rows than `bins / SORT_RATIO` find splits by sorting their rows by bin
/// instead of filling (and clearing) a histogram over all bins of the feature.
const SORT_RATIO: usize = 4;

/// How often (in nodes) a growing tree checks the fit's deadline.
const DEADLINE_EVERY: usize = 1024;

/// One node: a split `x[feature] <= threshold` (left child at `index`, right at `index + 1`)
/// or, when `feature == LEAF`, a leaf whose values start at `index * width`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Node {
    pub threshold: f64,
    pub feature: u32,
    pub index: u32,
}

/// A fitted tree.
#[derive(Debug, Clone)]
pub(crate) struct Tree {
    /// Nodes; the root is node 0.
    pub nodes: Vec<Node>,
    /// Leaf outputs, `width` per leaf (class probabilities or one value).
    pub values: Vec<f64>,
    /// Total weighted impurity decrease per feature (not normalised).
    pub importances: Vec<f64>,
    /// Training weight (sample weight times draws) that reached each node, for TreeSHAP;
    /// empty for trees read from artifacts written before it was kept.
    pub covers: Vec<f64>,
}

impl Tree {
    /// The leaf number that `row` (all features, raw values) falls into.
    #[inline]
    pub fn leaf(&self, row: &[f64]) -> usize {
        let mut i = 0;
        loop {
            let n = self.nodes[i];
            if n.feature == LEAF {
                return n.index as usize;
            }
            i = n.index as usize + usize::from(row[n.feature as usize] > n.threshold);
        }
    }
    /// Depth of the deepest leaf (a lone root has depth 0).
    #[cfg(test)]
    pub fn depth(&self) -> usize {
        let mut best = 0;
        let mut stack = vec![(0usize, 0usize)];
        while let Some((i, d)) = stack.pop() {
            let n = self.nodes[i];
            if n.feature == LEAF {
                best = best.max(d);
            } else {
                stack.push((n.index as usize, d + 1));
                stack.push((n.index as usize + 1, d + 1));
            }
        }
        best
    }
}

/// What a tree predicts and how it scores splits. Split statistics are `width()` numbers that
/// add up over rows.
pub(crate) trait Criterion: Sync {
    /// Per-row target.
    type Y: Copy + PartialEq + Send + Sync;
    /// Number of split statistics.
    fn width(&self) -> usize;
    /// Number of outputs per leaf.
    fn out_width(&self) -> usize;
    /// Add a row with target `y` and weight `w` (> 0).
    fn add(&self, s: &mut [f64], y: Self::Y, w: f64);
    /// Total weight.
    fn weight(&self, s: &[f64]) -> f64;
    /// Split score of one child; a split maximises the sum over both children, which is the
    /// same as minimising their weighted impurity.
    fn proxy(&self, s: &[f64]) -> f64;
    /// Impurity of a node with statistics `s` and rows `ys`, `ws` (for importances).
    fn impurity(&self, s: &[f64], ys: &[Self::Y], ws: &[f64]) -> f64;
    /// Whether nothing is left to separate.
    fn pure(&self, s: &[f64], ys: &[Self::Y]) -> bool;
    /// Append a leaf's outputs.
    fn leaf(&self, s: &[f64], out: &mut Vec<f64>);
}

/// Classification: statistics are the weight of each class. Gini impurity, or entropy when
/// `ENTROPY`.
pub(crate) struct Classes<const ENTROPY: bool> {
    pub k: usize,
}

#[inline]
fn xlogx(x: f64) -> f64 {
    if x > 0.0 { x * x.ln() } else { 0.0 }
}

impl<const ENTROPY: bool> Criterion for Classes<ENTROPY> {
    type Y = u32;
    fn width(&self) -> usize {
        self.k
    }
    fn out_width(&self) -> usize {
        self.k
    }
    #[inline]
    fn add(&self, s: &mut [f64], y: u32, w: f64) {
        s[y as usize] += w;
    }
    #[inline]
    fn weight(&self, s: &[f64]) -> f64 {
        s.iter().sum()
    }
    #[inline]
    fn proxy(&self, s: &[f64]) -> f64 {
        if ENTROPY {
            s.iter().map(|&v| xlogx(v)).sum::<f64>() - xlogx(self.weight(s))
        } else {
            s.iter().map(|&v| v * v).sum::<f64>() / self.weight(s)
        }
    }
    fn impurity(&self, s: &[f64], _ys: &[u32], _ws: &[f64]) -> f64 {
        let w = self.weight(s);
        if w <= 0.0 {
            return 0.0;
        }
        if ENTROPY {
            -s.iter().map(|&v| xlogx(v / w)).sum::<f64>()
        } else {
            1.0 - s.iter().map(|&v| (v / w) * (v / w)).sum::<f64>()
        }
    }
    fn pure(&self, s: &[f64], _ys: &[u32]) -> bool {
        s.iter().filter(|&&v| v > 0.0).count() <= 1
    }
    fn leaf(&self, s: &[f64], out: &mut Vec<f64>) {
        let w = self.weight(s);
        out.extend(s.iter().map(|&v| v / w));
    }
}

/// Regression by squared error: statistics are the total weight and the weighted sum of the
/// (centred) target; leaves predict the weighted mean plus `offset`.
pub(crate) struct Squared {
    pub offset: f64,
}

impl Criterion for Squared {
    type Y = f64;
    fn width(&self) -> usize {
        2
    }
    fn out_width(&self) -> usize {
        1
    }
    #[inline]
    fn add(&self, s: &mut [f64], y: f64, w: f64) {
        s[0] += w;
        s[1] += w * y;
    }
    #[inline]
    fn weight(&self, s: &[f64]) -> f64 {
        s[0]
    }
    #[inline]
    fn proxy(&self, s: &[f64]) -> f64 {
        s[1] * s[1] / s[0]
    }
    fn impurity(&self, s: &[f64], ys: &[f64], ws: &[f64]) -> f64 {
        if s[0] <= 0.0 {
            return 0.0;
        }
        let m = s[1] / s[0];
        ys.iter().zip(ws).map(|(&y, &w)| w * (y - m) * (y - m)).sum::<f64>() / s[0]
    }
    fn pure(&self, _s: &[f64], ys: &[f64]) -> bool {
        ys.iter().all(|&y| y == ys[0])
    }
    fn leaf(&self, s: &[f64], out: &mut Vec<f64>) {
        out.push(s[1] / s[0] + self.offset);
    }
}

/// How trees are grown.
#[derive(Debug, Clone)]
pub(crate) struct GrowParams {
    /// Maximum depth (`usize::MAX` for none).
    pub max_depth: usize,
    /// Fewest rows (distinct rows of the sample) in a leaf.
    pub min_samples_leaf: usize,
    /// Non-constant features to examine per node.
    pub mtry: usize,
    /// One random threshold per feature (extremely randomised trees) instead of the best.
    pub random_splits: bool,
}

/// The rows a tree is grown on: distinct row numbers with their targets and weights (bootstrap
/// counts times row weights, all positive).
pub(crate) struct Sample<Y> {
    pub rows: Vec<u32>,
    pub ys: Vec<Y>,
    pub ws: Vec<f64>,
}

#[derive(Debug, Clone, Copy)]
struct Split {
    feature: usize,
    bin: usize,
    score: f64,
}

/// Reusable buffers of one growing tree.
struct Grower<'a, C: Criterion> {
    crit: &'a C,
    data: &'a Binned,
    p: &'a GrowParams,
    w: usize,
    /// Dense histogram: rows per bin (only counted when min_samples_leaf > 1) and statistics
    /// per bin; all zero between uses.
    hist_n: Vec<u32>,
    hist_s: Vec<f64>,
    /// (bin, position) of a small node's rows.
    pairs: Vec<(u8, u32)>,
    /// Occupied bins of the node for one feature, in increasing order, with their row counts
    /// (when counted) and statistics.
    ent_bin: Vec<u8>,
    ent_n: Vec<u32>,
    ent_s: Vec<f64>,
    node: Vec<f64>,
    left: Vec<f64>,
    right: Vec<f64>,
    feats: Vec<u32>,
}

impl<C: Criterion> Grower<'_, C> {
    /// Score a candidate split whose left child has statistics `self.left`.
    #[inline]
    fn consider(&mut self, feature: usize, bin: usize, best: &mut Option<Split>) {
        for ((r, &t), &l) in self.right.iter_mut().zip(&self.node).zip(&self.left) {
            *r = t - l;
        }
        let score = self.crit.proxy(&self.left) + self.crit.proxy(&self.right);
        if best.is_none_or(|b| score > b.score) {
            *best = Some(Split { feature, bin, score });
        }
    }

    /// Collect the occupied bins of feature `f` over the node's rows; false when the feature
    /// is constant there.
    fn entries(&mut self, f: usize, rows: &[u32], ys: &[C::Y], ws: &[f64]) -> bool {
        let col = self.data.column(f);
        let nb = self.data.features[f].n_bins();
        let w = self.w;
        let n = rows.len();
        let count = self.p.min_samples_leaf > 1;
        self.ent_bin.clear();
        self.ent_n.clear();
        self.ent_s.clear();
        if n * SORT_RATIO < nb {
            self.pairs.clear();
            self.pairs.extend(rows.iter().enumerate().map(|(i, &r)| (col[r as usize], i as u32)));
            self.pairs.sort_unstable();
            if self.pairs[0].0 == self.pairs[n - 1].0 {
                return false;
            }
            for &(b, i) in &self.pairs {
                if self.ent_bin.last() != Some(&b) {
                    self.ent_bin.push(b);
                    self.ent_n.push(0);
                    self.ent_s.resize(self.ent_s.len() + w, 0.0);
                }
                let e = self.ent_n.len() - 1;
                self.ent_n[e] += 1;
                let at = self.ent_s.len() - w;
                self.crit.add(&mut self.ent_s[at..], ys[i as usize], ws[i as usize]);
            }
            return true;
        }
        if count {
            for ((&r, &y), &wt) in rows.iter().zip(ys).zip(ws) {
                let b = col[r as usize] as usize;
                self.hist_n[b] += 1;
                self.crit.add(&mut self.hist_s[b * w..(b + 1) * w], y, wt);
            }
        } else {
            for ((&r, &y), &wt) in rows.iter().zip(ys).zip(ws) {
                let b = col[r as usize] as usize * w;
                self.crit.add(&mut self.hist_s[b..b + w], y, wt);
            }
        }
        for b in 0..nb {
            let s = &mut self.hist_s[b * w..(b + 1) * w];
            if self.crit.weight(s) > 0.0 {
                self.ent_bin.push(b as u8);
                self.ent_n.push(self.hist_n[b]);
                self.ent_s.extend_from_slice(s);
                s.fill(0.0);
                self.hist_n[b] = 0;
            }
        }
        self.ent_bin.len() > 1
    }

    /// Best threshold of feature `f`; false when the feature is constant in the node.
    fn best_of(&mut self, f: usize, rows: &[u32], ys: &[C::Y], ws: &[f64], best: &mut Option<Split>) -> bool {
        if !self.entries(f, rows, ys, ws) {
            return false;
        }
        let (w, n, msl) = (self.w, rows.len(), self.p.min_samples_leaf);
        self.left.fill(0.0);
        let mut nl = 0usize;
        for e in 0..self.ent_bin.len() - 1 {
            nl += self.ent_n[e] as usize;
            for (l, &s) in self.left.iter_mut().zip(&self.ent_s[e * w..(e + 1) * w]) {
                *l += s;
            }
            if msl > 1 {
                if nl < msl {
                    continue;
                }
                if n - nl < msl {
                    break;
                }
            }
            self.consider(f, self.ent_bin[e] as usize, best);
        }
        true
    }

    /// One random threshold of feature `f`, drawn uniformly between the node's smallest and
    /// largest value; false when the feature is constant in the node.
    fn random_of(
        &mut self,
        f: usize,
        rows: &[u32],
        ys: &[C::Y],
        ws: &[f64],
        rng: &mut ChaCha8Rng,
        best: &mut Option<Split>,
    ) -> bool {
        let col = self.data.column(f);
        let (mut lo, mut hi) = (u8::MAX, 0u8);
        for &r in rows {
            let b = col[r as usize];
            lo = lo.min(b);
            hi = hi.max(b);
        }
        if lo >= hi {
            return false;
        }
        let (lo, hi) = (lo as usize, hi as usize);
        let fb = &self.data.features[f];
        let (vlo, vhi) = (fb.lo[lo], fb.hi[hi]);
        let t = vlo + rng.random::<f64>() * (vhi - vlo);
        // The left side takes the bins wholly below the threshold (at least the lowest one).
        let bin = lo + fb.hi[lo..hi].partition_point(|&h| h < t).saturating_sub(1);
        self.left.fill(0.0);
        let mut nl = 0usize;
        for ((&r, &y), &wt) in rows.iter().zip(ys).zip(ws) {
            if col[r as usize] as usize <= bin {
                nl += 1;
                self.crit.add(&mut self.left, y, wt);
            }
        }
        let msl = self.p.min_samples_leaf;
        if nl >= msl && rows.len() - nl >= msl {
            self.consider(f, bin, best);
        }
        true
    }

    /// The split of a node, examining features in random order until `mtry` non-constant ones
    /// have been seen (more than `mtry` are drawn when some are constant in the node).
    fn find_split(&mut self, rows: &[u32], ys: &[C::Y], ws: &[f64], rng: &mut ChaCha8Rng) -> Option<Split> {
        let mut best = None;
        let mut seen = 0;
        let nf = self.feats.len();
        for i in 0..nf {
            let j = rng.random_range(i..nf);
            self.feats.swap(i, j);
            let f = self.feats[i] as usize;
            let varied = if self.p.random_splits {
                self.random_of(f, rows, ys, ws, rng, &mut best)
            } else {
                self.best_of(f, rows, ys, ws, &mut best)
            };
            if varied {
                seen += 1;
                if seen >= self.p.mtry {
                    break;
                }
            }
        }
        best
    }
}

/// What every tree of a forest shares while growing.
pub(crate) struct Shared<'a, C> {
    /// Target kind and split criterion.
    pub crit: &'a C,
    /// The binned training matrix.
    pub data: &'a Binned,
    /// Features worth examining (not constant in the training data).
    pub candidates: &'a [u32],
    /// Growth settings.
    pub p: &'a GrowParams,
    /// Deadline source.
    pub ctx: &'a FitContext,
    /// Model kind, for errors.
    pub who: &'a str,
}

/// Grow one tree on `sample`.
pub(crate) fn grow<C: Criterion>(sh: &Shared<'_, C>, sample: Sample<C::Y>, rng: &mut ChaCha8Rng) -> Result<Tree> {
    let Shared { crit, data, candidates, p, ctx, who } = *sh;
    let Sample { mut rows, mut ys, mut ws } = sample;
    let w = crit.width();
    let max_bins = data.features.iter().map(|f| f.n_bins()).max().unwrap_or(1);
    let n_features = data.features.len();
    let mut g = Grower {
        crit,
        data,
        p,
        w,
        hist_n: vec![0; max_bins],
        hist_s: vec![0.0; max_bins * w],
        pairs: Vec::new(),
        ent_bin: Vec::with_capacity(max_bins),
        ent_n: Vec::with_capacity(max_bins),
        ent_s: Vec::with_capacity(max_bins * w),
        node: vec![0.0; w],
        left: vec![0.0; w],
        right: vec![0.0; w],
        feats: candidates.to_vec(),
    };
    let mut nodes = vec![Node { threshold: 0.0, feature: LEAF, index: 0 }];
    let mut covers = vec![0.0];
    let mut values = Vec::new();
    let mut importances = vec![0.0; n_features];
    // (node, rows a..b, depth, feature of the parent's split or LEAF for the root)
    let mut stack = vec![(0usize, 0usize, rows.len(), 0usize, LEAF)];
    let mut done = 0usize;
    while let Some((id, a, b, depth, parent)) = stack.pop() {
        done += 1;
        if done.is_multiple_of(DEADLINE_EVERY) {
            ctx.check_deadline(who)?;
        }
        g.node.fill(0.0);
        for (&y, &wt) in ys[a..b].iter().zip(&ws[a..b]) {
            crit.add(&mut g.node, y, wt);
        }
        covers[id] = ws[a..b].iter().sum();
        let n = b - a;
        let stop = depth >= p.max_depth || n < 2 * p.min_samples_leaf || crit.pure(&g.node, &ys[a..b]);
        // Importance: a split adds its node's weighted impurity to its feature, each child
        // takes its own off again.
        let weighted_impurity = crit.weight(&g.node) * crit.impurity(&g.node, &ys[a..b], &ws[a..b]);
        if parent != LEAF {
            importances[parent as usize] -= weighted_impurity;
        }
        let split = if stop { None } else { g.find_split(&rows[a..b], &ys[a..b], &ws[a..b], rng) };
        let Some(split) = split else {
            let leaf = values.len() / crit.out_width();
            crit.leaf(&g.node, &mut values);
            nodes[id] = Node { threshold: 0.0, feature: LEAF, index: leaf as u32 };
            continue;
        };
        importances[split.feature] += weighted_impurity;
        // Partition the node's rows: bin <= split.bin to the left.
        let col = data.column(split.feature);
        let (mut i, mut j) = (a, b);
        while i < j {
            if col[rows[i] as usize] as usize <= split.bin {
                i += 1;
            } else {
                j -= 1;
                rows.swap(i, j);
                ys.swap(i, j);
                ws.swap(i, j);
            }
        }
        let child = nodes.len();
        nodes.push(Node { threshold: 0.0, feature: LEAF, index: 0 });
        nodes.push(Node { threshold: 0.0, feature: LEAF, index: 0 });
        covers.extend([0.0, 0.0]);
        nodes[id] = Node {
            threshold: data.features[split.feature].edges[split.bin],
            feature: split.feature as u32,
            index: child as u32,
        };
        let f = split.feature as u32;
        stack.push((child + 1, i, b, depth + 1, f));
        stack.push((child, a, i, depth + 1, f));
    }
    importances.iter_mut().for_each(|v| *v = v.max(0.0));
    Ok(Tree { nodes, values, importances, covers })
}
