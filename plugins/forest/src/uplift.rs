//! `forest.uplift_random_forest`: a random forest of uplift trees (Rzepakowski & Jaroszewicz
//! 2012), grown as causalml 0.18's `UpliftRandomForestClassifier` grows them.
//!
//! A tree splits a node where the chosen divergence between the arms' outcome rates grows most.
//! For per-arm rates `p_0` (control) and `p_1..p_k` the node's divergence is
//! `D = sum_t d(p_t, p_0)` with `d` one of
//! * `kl`: `p log(p/q) + (1-p) log((1-p)/(1-q))` (q clipped to [1e-6, 1 - 1e-6]);
//! * `ed`: `2 (p - q)²`;
//! * `chi`: `(p - q)² / q + (p - q)² / (1 - q)`;
//!
//! and a split's gain is `w_l D(left) + w_r D(right) - D(node)` (`w` the children's row
//! shares), divided by Rzepakowski's normalisation factor when `normalization` is on (it
//! penalises splits that separate the arms unevenly). The rates are regularised: a node's rate
//! for arm `g` is `(positives + n_reg · parent_rate) / (rows + n_reg)` when the arm has more than
//! `min_samples_treatment` rows there (the parent's rate otherwise; the root's are raw), and a
//! split leaving any arm fewer than `min_samples_treatment` rows in a child is not allowed.
//! Candidate thresholds are the midpoints between consecutive distinct values of a feature (as
//! 32-bit floats, like scikit-learn's splitter); rows with `x <= threshold` go left.
//!
//! Leaves keep each arm's raw outcome rate; the forest predicts the mean over trees, one column
//! per arm (control first), so the effect of arm `t` is `p_t - p_0`. Each tree draws its rows
//! with replacement (unless `bootstrap = false`) from its own ChaCha8 stream and its
//! `max_features` candidate features at every node; a tree whose sample misses an arm is drawn
//! again. With one tree, no bootstrap and every feature, the tree is causalml's
//! `UpliftTreeClassifier` (checked on a committed fixture).

use ndarray::Array2;
use promoml_core::codec::{Decoder, Encoder};
use promoml_core::{
    Dataset, Error, FitContext, FittedModel, Model, ParamSpec, Params, ParamsExt, Predictions, Result, SearchSpace,
    Task,
};
use rand::{Rng as _, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

const KIND: &str = "forest.uplift_random_forest";
const LEAF: u32 = u32::MAX;
const EPS: f64 = 1e-6;
/// scikit-learn's `FEATURE_THRESHOLD`: values closer than this are one value.
const FEATURE_THRESHOLD: f32 = 1e-7;

/// The split criterion of an uplift tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Divergence {
    /// Kullback-Leibler divergence.
    Kl,
    /// Squared Euclidean distance (times two, as causalml).
    Ed,
    /// Chi-squared statistic.
    Chi,
}

impl Divergence {
    fn pair(self, p_t: f64, p_c: f64) -> f64 {
        match self {
            Divergence::Kl => kl(p_t, p_c),
            Divergence::Ed => 2.0 * (p_t - p_c) * (p_t - p_c),
            Divergence::Chi => {
                let d2 = (p_t - p_c) * (p_t - p_c);
                d2 / p_c.max(EPS) + d2 / (1.0 - p_c).max(EPS)
            }
        }
    }
    fn of(self, p: &[f64]) -> f64 {
        p[1..].iter().map(|&pt| self.pair(pt, p[0])).sum()
    }
}

/// causalml's scalar `kl_divergence(pk, qk)`.
fn kl(pk: f64, qk: f64) -> f64 {
    if qk == 0.0 {
        return 0.0;
    }
    let q = qk.clamp(EPS, 1.0 - EPS);
    if pk == 0.0 {
        -(1.0 - q).ln()
    } else if pk == 1.0 {
        -q.ln()
    } else {
        pk * (pk / q).ln() + (1.0 - pk) * ((1.0 - pk) / (1.0 - q)).ln()
    }
}

/// causalml's `entropyH(p, q)`: `-p log p` for `q = -1`, `-p log q` for `q > 0`, else 0.
fn entropy_h(p: f64, q: f64) -> f64 {
    if q == -1.0 && p > 0.0 {
        -p * p.ln()
    } else if q > 0.0 {
        -p * q.ln()
    } else {
        0.0
    }
}

/// Settings of an uplift forest.
#[derive(Debug, Clone, PartialEq)]
pub struct UpliftForestConfig {
    /// Number of trees.
    pub n_trees: usize,
    /// Deepest level of a tree (the root is level 0).
    pub max_depth: usize,
    /// Fewest rows in a leaf.
    pub min_samples_leaf: usize,
    /// Fewest rows of every arm in a child of a split; also where rates stop being shrunk.
    pub min_samples_treatment: usize,
    /// Weight (in rows) of the parent's rate in a node's regularised rate.
    pub n_reg: f64,
    /// The divergence splits maximise.
    pub divergence: Divergence,
    /// Divide gains by Rzepakowski's normalisation factor.
    pub normalization: bool,
    /// Candidate features per node (0: all; more than the features: all).
    pub max_features: usize,
    /// Draw each tree's rows with replacement.
    pub bootstrap: bool,
}

/// The registered model kind `forest.uplift_random_forest`.
#[derive(Debug, Clone, Default)]
pub struct UpliftForest;

impl UpliftForest {
    /// The settings `params` (resolved against [`Model::space`]) describe.
    pub fn config(params: &Params) -> Result<UpliftForestConfig> {
        let divergence = match params.str("criterion")? {
            "kl" => Divergence::Kl,
            "ed" => Divergence::Ed,
            "chi" => Divergence::Chi,
            other => return Err(Error::config("criterion", format!("unknown option \"{other}\" (kl, ed, chi)"))),
        };
        Ok(UpliftForestConfig {
            n_trees: params.usize("n_trees")?,
            max_depth: params.usize("max_depth")?,
            min_samples_leaf: params.usize("min_samples_leaf")?,
            min_samples_treatment: params.usize("min_samples_treatment")?,
            n_reg: params.usize("n_reg")? as f64,
            divergence,
            normalization: params.bool("normalization")?,
            max_features: params.usize("max_features")?,
            bootstrap: params.bool("bootstrap")?,
        })
    }
}

impl Model for UpliftForest {
    fn kind(&self) -> &str {
        KIND
    }
    fn description(&self) -> &str {
        "uplift random forest (KL / Euclidean / chi-square splits on the arms' outcome rates, as causalml's \
         UpliftRandomForestClassifier); binary outcomes, any number of arms"
    }
    fn tasks(&self) -> &[Task] {
        &[Task::Uplift]
    }
    fn space(&self) -> SearchSpace {
        SearchSpace::new(vec![
            ParamSpec::int("n_trees", "number of trees", 10, 1, 10_000).search_int(10, 200, true),
            ParamSpec::int("max_depth", "deepest level of a tree (the root is level 0)", 5, 1, 64)
                .search_int(2, 10, false),
            ParamSpec::int("min_samples_leaf", "fewest training rows in a leaf", 100, 1, 1_000_000)
                .search_int(10, 1000, true),
            ParamSpec::int(
                "min_samples_treatment",
                "fewest rows of every arm in each child of a split (and below it a node takes its parent's rate)",
                10,
                0,
                1_000_000,
            )
            .search_int(1, 100, true),
            ParamSpec::int("n_reg", "weight in rows of the parent's outcome rate in a node's rate", 10, 0, 1_000_000)
                .search_int(0, 200, false),
            ParamSpec::choice("criterion", "divergence between the arms' outcome rates", "kl", &["kl", "ed", "chi"])
                .searched(),
            ParamSpec::flag("normalization", "divide split gains by Rzepakowski's normalisation factor", true),
            ParamSpec::int(
                "max_features",
                "candidate features drawn at every node (0: all; more than there are: all)",
                10,
                0,
                1_000_000,
            ),
            ParamSpec::flag("bootstrap", "draw each tree's rows with replacement (otherwise every row once)", true),
        ])
    }
    fn cost(&self, rows: usize, features: usize, params: &Params) -> f64 {
        let s = self.space();
        let mtry = match s.number(params, "max_features", 10.0) as usize {
            0 => features,
            m => m.min(features),
        };
        let lg = (rows.max(2) as f64).log2();
        s.number(params, "n_trees", 10.0) * rows as f64 * lg * mtry.max(1) as f64 * s.number(params, "max_depth", 5.0)
    }
    fn fit(&self, data: &Dataset, params: &Params, ctx: &FitContext) -> Result<Box<dyn FittedModel>> {
        let params = self.space().resolve(params, &format!("{KIND}.params"))?;
        let cfg = UpliftForest::config(&params)?;
        Ok(Box::new(fit_uplift_forest(data, &cfg, ctx)?))
    }
    fn load(&self, bytes: &[u8]) -> Result<Box<dyn FittedModel>> {
        Ok(Box::new(FittedUpliftForest::from_bytes(bytes)?))
    }
}

/// One uplift tree: flat node arrays (a leaf has feature [`LEAF`]), and every node's raw
/// outcome rate per arm (`groups` values per node).
#[derive(Debug, Clone, PartialEq)]
struct UpliftTree {
    feature: Vec<u32>,
    threshold: Vec<f64>,
    left: Vec<u32>,
    right: Vec<u32>,
    rates: Vec<f64>,
}

impl UpliftTree {
    fn leaf_of(&self, row: &[f32]) -> usize {
        let mut i = 0;
        while self.feature[i] != LEAF {
            let x = f64::from(row[self.feature[i] as usize]);
            i = if x <= self.threshold[i] { self.left[i] } else { self.right[i] } as usize;
        }
        i
    }
}

/// A fitted uplift forest: predicts each arm's outcome rate (control first).
#[derive(Debug, Clone, PartialEq)]
pub struct FittedUpliftForest {
    n_features: usize,
    groups: usize,
    trees: Vec<UpliftTree>,
}

/// Per-arm row and positive counts of a set of rows.
#[derive(Clone)]
struct Counts {
    n: Vec<f64>,
    pos: Vec<f64>,
}

impl Counts {
    fn zero(groups: usize) -> Counts {
        Counts { n: vec![0.0; groups], pos: vec![0.0; groups] }
    }
    fn add(&mut self, g: usize, y: f64) {
        self.n[g] += 1.0;
        self.pos[g] += y;
    }
    fn minus(&self, other: &Counts) -> Counts {
        Counts {
            n: self.n.iter().zip(&other.n).map(|(a, b)| a - b).collect(),
            pos: self.pos.iter().zip(&other.pos).map(|(a, b)| a - b).collect(),
        }
    }
    fn raw(&self) -> Vec<f64> {
        self.n.iter().zip(&self.pos).map(|(&n, &p)| if n > 0.0 { p / n } else { 0.0 }).collect()
    }
}

/// A node to grow: its rows, depth, the parent's regularised rates, and the parent's child slot
/// to link (`(parent, is_left)`).
type Pending = (Vec<usize>, usize, Option<Vec<f64>>, Option<(usize, bool)>);

struct Grower<'a> {
    x: &'a [Vec<f32>],
    y: &'a [f64],
    group: &'a [usize],
    groups: usize,
    cfg: &'a UpliftForestConfig,
    mtry: usize,
}

impl Grower<'_> {
    /// causalml's regularised rates of `c`, shrunk toward `parent` (raw at the root).
    fn regularised(&self, c: &Counts, parent: Option<&[f64]>) -> Vec<f64> {
        match parent {
            None => c.raw(),
            Some(t) => (0..self.groups)
                .map(|g| {
                    if c.n[g] > self.cfg.min_samples_treatment as f64 {
                        (c.pos[g] + t[g] * self.cfg.n_reg) / (c.n[g] + self.cfg.n_reg)
                    } else {
                        t[g]
                    }
                })
                .collect(),
        }
    }

    /// Rzepakowski's normalisation factor from the node's counts and those of its `x >
    /// threshold` child (causalml's `arr_normI`).
    fn norm_factor(node: &Counts, right: &Counts) -> f64 {
        let n_c = node.n[0];
        let n_c_gt = right.n[0];
        let sum_n_t: f64 = node.n[1..].iter().sum();
        let sum_n_t_gt: f64 = right.n[1..].iter().sum();
        let pt_a = sum_n_t_gt / (sum_n_t + 0.1);
        let pc_a = n_c_gt / (n_c + 0.1);
        let mut res = 0.9 * entropy_h(sum_n_t / (sum_n_t + n_c), n_c / (sum_n_t + n_c)) * kl(pt_a, pc_a);
        for i in 1..node.n.len() {
            let n_t_i = node.n[i];
            let pt_a_i = right.n[i] / (n_t_i + 0.1);
            res += 0.1 * entropy_h(n_t_i / (n_t_i + n_c), n_c / (n_t_i + n_c)) * kl(pt_a_i, pc_a);
            res += n_t_i / (sum_n_t + n_c) * entropy_h(pt_a_i, -1.0);
        }
        res + n_c / (sum_n_t + n_c) * entropy_h(pc_a, -1.0) + 0.5
    }

    /// The best split of `rows` as `(gain, feature, threshold)`, or `None` when no split is
    /// allowed.
    fn best_split(
        &self,
        rows: &[usize],
        counts: &Counts,
        s_node: &[f64],
        rng: &mut ChaCha8Rng,
    ) -> Option<(f64, usize, f64)> {
        let p = self.x.len();
        let mut features: Vec<usize> = (0..p).collect();
        // A partial Fisher-Yates shuffle draws `mtry` distinct features.
        for i in 0..self.mtry.min(p) {
            let j = rng.random_range(i..p);
            features.swap(i, j);
        }
        let n = rows.len();
        let min_leaf = self.cfg.min_samples_leaf;
        let min_t = self.cfg.min_samples_treatment as f64;
        let d_node = self.cfg.divergence.of(s_node);
        let mut best: Option<(f64, usize, f64)> = None;
        let mut order: Vec<usize> = rows.to_vec();
        for &f in &features[..self.mtry.min(p)] {
            let col = &self.x[f];
            order.sort_by(|&a, &b| col[a].total_cmp(&col[b]));
            let mut left = Counts::zero(self.groups);
            for pos in 1..n {
                let prev = order[pos - 1];
                left.add(self.group[prev], self.y[prev]);
                let (xp, xc) = (col[prev], col[order[pos]]);
                if xc <= xp + FEATURE_THRESHOLD || pos < min_leaf || n - pos < min_leaf {
                    continue;
                }
                let right = counts.minus(&left);
                let fewest = left.n.iter().chain(&right.n).fold(f64::INFINITY, |m, &v| m.min(v));
                if fewest < min_t {
                    continue;
                }
                let s_left = self.regularised(&left, Some(s_node));
                let s_right = self.regularised(&right, Some(s_node));
                let w = pos as f64 / n as f64;
                let div = self.cfg.divergence;
                let mut gain = w * div.of(&s_left) + (1.0 - w) * div.of(&s_right) - d_node;
                if self.cfg.normalization {
                    gain /= Self::norm_factor(counts, &right);
                }
                if best.is_none_or(|b| gain > b.0) {
                    let mut threshold = f64::from(xp) / 2.0 + f64::from(xc) / 2.0;
                    if threshold == f64::from(xc) || threshold.is_infinite() {
                        threshold = f64::from(xp);
                    }
                    best = Some((gain, f, threshold));
                }
            }
        }
        best
    }

    fn grow(&self, rows: Vec<usize>, rng: &mut ChaCha8Rng) -> UpliftTree {
        let mut t = UpliftTree { feature: vec![], threshold: vec![], left: vec![], right: vec![], rates: vec![] };
        // Depth first, left child first.
        let mut stack: Vec<Pending> = vec![(rows, 0, None, None)];
        while let Some((rows, depth, parent, link)) = stack.pop() {
            let id = t.feature.len();
            if let Some((p, is_left)) = link {
                if is_left {
                    t.left[p] = id as u32;
                } else {
                    t.right[p] = id as u32;
                }
            }
            let mut counts = Counts::zero(self.groups);
            for &i in &rows {
                counts.add(self.group[i], self.y[i]);
            }
            let s_node = self.regularised(&counts, parent.as_deref());
            t.rates.extend(counts.raw());
            let n = rows.len();
            let min_split = (2 * self.cfg.min_samples_leaf).max(2);
            let split = if depth >= self.cfg.max_depth || n < min_split {
                None
            } else {
                self.best_split(&rows, &counts, &s_node, rng).filter(|s| s.0 + f64::EPSILON >= 0.0)
            };
            match split {
                None => {
                    t.feature.push(LEAF);
                    t.threshold.push(0.0);
                    t.left.push(0);
                    t.right.push(0);
                }
                Some((_, f, threshold)) => {
                    t.feature.push(f as u32);
                    t.threshold.push(threshold);
                    t.left.push(0);
                    t.right.push(0);
                    let (l, r): (Vec<usize>, Vec<usize>) =
                        rows.iter().partition(|&&i| f64::from(self.x[f][i]) <= threshold);
                    stack.push((r, depth + 1, Some(s_node.clone()), Some((id, false))));
                    stack.push((l, depth + 1, Some(s_node), Some((id, true))));
                }
            }
        }
        t
    }
}

/// Fit an uplift forest on `data` (binary outcome in `y`, arm per row in `treatment`, 0 =
/// control; every arm needs rows).
pub fn fit_uplift_forest(data: &Dataset, cfg: &UpliftForestConfig, ctx: &FitContext) -> Result<FittedUpliftForest> {
    let y = data.target(KIND)?;
    let group = data
        .treatment
        .as_ref()
        .ok_or_else(|| Error::model(KIND, "an uplift forest needs each row's arm: use it in an uplift pipeline"))?;
    if let Some(i) = y.iter().position(|&v| v != 0.0 && v != 1.0) {
        return Err(Error::model(
            KIND,
            format!("outcome {} in row {}: an uplift forest needs a 0/1 outcome", y[i], i + 1),
        ));
    }
    let groups = group.iter().max().map_or(0, |m| m + 1);
    let present = |rows: &mut dyn Iterator<Item = usize>| {
        let mut seen = vec![false; groups];
        for i in rows {
            seen[group[i]] = true;
        }
        seen.iter().all(|&s| s)
    };
    if groups < 2 || !present(&mut (0..group.len())) {
        return Err(Error::model(KIND, "every arm, control included, needs training rows"));
    }
    let n = data.n_rows();
    let x: Vec<Vec<f32>> =
        (0..data.n_features()).map(|j| data.x.column(j).iter().map(|&v| v as f32).collect()).collect();
    let p = x.len();
    let mtry = if cfg.max_features == 0 { p } else { cfg.max_features.min(p) };
    let grower = Grower { x: &x, y, group, groups, cfg, mtry };
    let trees: Vec<UpliftTree> = (0..cfg.n_trees)
        .into_par_iter()
        .map(|t| {
            ctx.check_deadline(KIND)?;
            let mut rng = ChaCha8Rng::seed_from_u64(ctx.seed);
            rng.set_stream(t as u64);
            let rows: Vec<usize> = if cfg.bootstrap {
                // A sample without some arm cannot grow an uplift tree: draw again (at most 100
                // times; with rows of every arm in the data this is almost never needed).
                let mut tries = 0;
                loop {
                    let rows: Vec<usize> = (0..n).map(|_| rng.random_range(0..n)).collect();
                    tries += 1;
                    if present(&mut rows.iter().copied()) {
                        break rows;
                    }
                    if tries >= 100 {
                        return Err(Error::model(KIND, "bootstrap samples keep missing an arm: too few rows of it"));
                    }
                }
            } else {
                (0..n).collect()
            };
            Ok(grower.grow(rows, &mut rng))
        })
        .collect::<Result<_>>()?;
    Ok(FittedUpliftForest { n_features: p, groups, trees })
}

impl FittedUpliftForest {
    /// Number of arms, control included (the columns of a prediction).
    pub fn groups(&self) -> usize {
        self.groups
    }

    /// Read what [`FittedModel::save`] wrote; every node is checked, so a corrupt buffer is an
    /// error, never a panic or an endless walk.
    pub fn from_bytes(bytes: &[u8]) -> Result<FittedUpliftForest> {
        let mut d = Decoder::new(bytes, KIND)?;
        let n_features = d.usize("feature count")?;
        let groups = d.usize("arm count")?;
        let n_trees = d.usize("tree count")?;
        if groups < 2 || n_trees == 0 {
            return Err(d.corrupt("an uplift forest needs two arms and a tree"));
        }
        let mut trees = Vec::with_capacity(n_trees.min(1 << 16));
        for t in 0..n_trees {
            let feature = d.u32s("node features")?;
            let threshold = d.f64s("node thresholds")?;
            let left = d.u32s("left children")?;
            let right = d.u32s("right children")?;
            let rates = d.f64s("node rates")?;
            let m = feature.len();
            let shapes = m > 0 && threshold.len() == m && left.len() == m && right.len() == m;
            if !shapes || Some(rates.len()) != m.checked_mul(groups) {
                return Err(d.corrupt(format!("tree {t} has inconsistent node arrays")));
            }
            for i in 0..m {
                let child_ok = |c: u32| (c as usize) > i && (c as usize) < m;
                if feature[i] != LEAF
                    && !((feature[i] as usize) < n_features && child_ok(left[i]) && child_ok(right[i]))
                {
                    return Err(d.corrupt(format!("tree {t} node {i} points outside the tree")));
                }
            }
            if rates.iter().any(|r| !(0.0..=1.0).contains(r)) {
                return Err(d.corrupt(format!("tree {t} has an outcome rate outside [0, 1]")));
            }
            trees.push(UpliftTree { feature, threshold, left, right, rates });
        }
        d.finish()?;
        Ok(FittedUpliftForest { n_features, groups, trees })
    }
}

impl FittedModel for FittedUpliftForest {
    /// `Proba` with one column per arm (control first): each arm's predicted outcome rate.
    /// The columns are rates under different arms, so rows do not sum to 1.
    fn predict(&self, data: &Dataset) -> Result<Predictions> {
        if data.n_features() != self.n_features {
            return Err(Error::model(
                KIND,
                format!("fitted on {} features, asked to predict rows of {}", self.n_features, data.n_features()),
            ));
        }
        let g = self.groups;
        let k = self.trees.len() as f64;
        let rows: Vec<Vec<f64>> = (0..data.n_rows())
            .into_par_iter()
            .map(|i| {
                let row: Vec<f32> = data.x.row(i).iter().map(|&v| v as f32).collect();
                let mut o = vec![0.0; g];
                for t in &self.trees {
                    let leaf = t.leaf_of(&row);
                    for (a, v) in o.iter_mut().enumerate() {
                        *v += t.rates[leaf * g + a];
                    }
                }
                o.into_iter().map(|v| v / k).collect()
            })
            .collect();
        let out = Array2::from_shape_vec((rows.len(), g), rows.concat())
            .map_err(|e| Error::model(KIND, format!("prediction shape: {e}")))?;
        Ok(Predictions::Proba(out))
    }
    fn save(&self) -> Result<Vec<u8>> {
        let mut e = Encoder::new(KIND);
        e.usize(self.n_features);
        e.usize(self.groups);
        e.usize(self.trees.len());
        for t in &self.trees {
            e.u32s(&t.feature);
            e.f64s(&t.threshold);
            e.u32s(&t.left);
            e.u32s(&t.right);
            e.f64s(&t.rates);
        }
        Ok(e.finish())
    }
    fn n_classes(&self) -> Option<usize> {
        Some(self.groups)
    }
}
