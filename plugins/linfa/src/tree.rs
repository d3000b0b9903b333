//! `linfa.decision_tree`: a CART classification tree from linfa-trees, with leaf class
//! frequencies as probabilities.

use crate::common::{check_features, check_task, class_targets};
use linfa::prelude::*;
use linfa_trees::{DecisionTree as LinfaTree, SplitQuality, TreeNode};
use ndarray::{Array1, Array2, ArrayView1};
use promoml_core::codec::{Decoder, Encoder};
use promoml_core::{
    Dataset, Error, FitContext, FittedModel, Model, ParamSpec, Params, ParamsExt, Predictions, Result, SearchSpace,
    Task,
};

const KIND: &str = "linfa.decision_tree";

/// A decision tree classifier fitted by linfa-trees.
///
/// linfa-trees only predicts the majority class of a leaf, so the fitted tree is copied into a
/// flat node array (same splits, same routing rule `x[feature] < threshold` goes left) and each
/// leaf stores the (row-weighted) class frequencies of the training rows that reach it; those
/// frequencies are the predicted probabilities.
///
/// linfa-trees keeps class weights in `HashMap`s, whose iteration order is random, and breaks ties
/// between equally frequent classes by that order; the tie decides which sibling leaves it prunes
/// into one. To make fits reproducible, the weights linfa sees are multiplied by
/// `1 + c * 2^-10 / (k - 1)` for class `c` of `k`, which breaks exact ties deterministically and
/// changes no split otherwise worth making. (With three or more classes linfa also sums impurity
/// terms in that random order, so two splits of exactly equal quality may still be chosen
/// differently from run to run.)
#[derive(Debug, Clone, Copy, Default)]
pub struct DecisionTree;

impl Model for DecisionTree {
    fn load(&self, bytes: &[u8]) -> Result<Box<dyn FittedModel>> {
        let mut d = Decoder::new(bytes, KIND)?;
        let n_features = d.usize("feature count")?;
        let features = d.usizes("node features")?;
        let thresholds = d.f64s("node thresholds")?;
        let lefts = d.usizes("left children")?;
        let counts = d.matrix("class weights")?;
        d.finish()?;
        let n = features.len();
        if n == 0 || thresholds.len() != n || lefts.len() != n || counts.nrows() != n || counts.ncols() == 0 {
            return Err(d.corrupt("node arrays differ in length"));
        }
        let mut nodes = Vec::with_capacity(n);
        for i in 0..n {
            // 0 marks a leaf (the root is nobody's child); children come after their parent.
            let children = match lefts[i] {
                0 => None,
                l if l > i && l < n - 1 && features[i] < n_features => Some((l, l + 1)),
                _ => return Err(d.corrupt(format!("node {i} points outside the tree"))),
            };
            nodes.push(Node { feature: features[i], threshold: thresholds[i], children });
        }
        Ok(Box::new(FittedTree { tree: FlatTree { nodes, counts }, n_features }))
    }
    fn kind(&self) -> &str {
        KIND
    }
    fn description(&self) -> &str {
        "CART decision tree (linfa-trees) with leaf class frequencies as probabilities"
    }
    fn tasks(&self) -> &[Task] {
        &[Task::Binary, Task::Multiclass]
    }
    fn space(&self) -> SearchSpace {
        SearchSpace::new(vec![
            ParamSpec::int("max_depth", "maximum depth of the tree; 0 = unlimited", 8, 0, 64).search_int(2, 20, false),
            ParamSpec::float(
                "min_weight_leaf",
                "minimum total row weight in a leaf (rows weigh 1 unless the data has weights)",
                1.0,
                0.0,
                1e9,
            )
            .search_float(1.0, 100.0, true),
            ParamSpec::float("min_weight_split", "minimum total row weight of a node to split it", 2.0, 0.0, 1e9),
            ParamSpec::choice("split_quality", "impurity measure", "gini", &["gini", "entropy"]).searched(),
            ParamSpec::float(
                "min_impurity_decrease",
                "a split must lower the impurity by at least this much",
                1e-5,
                1e-9,
                1.0,
            ),
        ])
    }
    fn cost(&self, rows: usize, features: usize, _params: &Params) -> f64 {
        // One tree: every feature sorted at every level.
        let lg = (rows.max(2) as f64).log2();
        rows as f64 * lg * features.max(1) as f64 * 10.0
    }
    fn fit(&self, data: &Dataset, params: &Params, ctx: &FitContext) -> Result<Box<dyn FittedModel>> {
        check_task(KIND, self.tasks(), data)?;
        let y = class_targets(KIND, data)?;
        let k = data.n_classes();
        let max_depth = params.usize("max_depth")?;
        let quality = match params.str("split_quality")? {
            "entropy" => SplitQuality::Entropy,
            _ => SplitQuality::Gini,
        };
        let row_w: Vec<f64> = match &data.weights {
            Some(w) => {
                if w.len() != y.len() || w.iter().any(|v| !v.is_finite() || *v < 0.0) {
                    return Err(Error::model(KIND, "row weights must be finite, non-negative, one per row"));
                }
                w.clone()
            }
            None => vec![1.0; y.len()],
        };
        let step = (2f64).powi(-10) / (k.max(2) - 1) as f64;
        let linfa_w: Array1<f32> = y.iter().zip(&row_w).map(|(&c, &w)| (w * (1.0 + c as f64 * step)) as f32).collect();
        let ds = linfa::Dataset::new(data.x.clone(), Array1::from(y.clone())).with_weights(linfa_w);
        let hp = LinfaTree::<f64, usize>::params()
            .split_quality(quality)
            .max_depth(if max_depth == 0 { None } else { Some(max_depth) })
            .min_weight_leaf(params.f64("min_weight_leaf")? as f32)
            .min_weight_split(params.f64("min_weight_split")? as f32)
            .min_impurity_decrease(params.f64("min_impurity_decrease")?);
        ctx.check_deadline(KIND)?;
        let tree = hp.fit(&ds).map_err(|e| Error::model(KIND, format!("linfa: {e}")))?;
        ctx.check_deadline(KIND)?;
        let mut flat = FlatTree::from_linfa(tree.root_node(), k);
        for (i, row) in data.x.rows().into_iter().enumerate() {
            flat.count(row, y[i], row_w[i]);
        }
        Ok(Box::new(FittedTree { tree: flat, n_features: data.n_features() }))
    }
}

#[derive(Debug, Clone)]
struct Node {
    feature: usize,
    threshold: f64,
    /// Children (`left`, `right`); `None` for a leaf.
    children: Option<(usize, usize)>,
}

/// The tree's structure with class weights of the training rows that passed through each node.
#[derive(Debug, Clone)]
struct FlatTree {
    nodes: Vec<Node>,
    /// `counts[[node, class]]`.
    counts: Array2<f64>,
}

impl FlatTree {
    fn from_linfa(root: &TreeNode<f64, usize>, k: usize) -> FlatTree {
        let mut nodes = vec![Node { feature: 0, threshold: 0.0, children: None }];
        // Iterative, so a very deep tree cannot overflow the stack here.
        let mut stack = vec![(root, 0usize)];
        while let Some((node, id)) = stack.pop() {
            let kids = node.children();
            if let (false, Some(l), Some(r)) = (node.is_leaf(), kids[0].as_deref(), kids[1].as_deref()) {
                let (feature, threshold, _) = node.split();
                let (li, ri) = (nodes.len(), nodes.len() + 1);
                nodes.push(Node { feature: 0, threshold: 0.0, children: None });
                nodes.push(Node { feature: 0, threshold: 0.0, children: None });
                nodes[id] = Node { feature, threshold, children: Some((li, ri)) };
                stack.push((l, li));
                stack.push((r, ri));
            }
        }
        let counts = Array2::zeros((nodes.len(), k));
        FlatTree { nodes, counts }
    }

    /// Add a training row's weight to every node on its path.
    fn count(&mut self, x: ArrayView1<f64>, class: usize, w: f64) {
        let mut id = 0;
        loop {
            self.counts[[id, class]] += w;
            match self.nodes[id].children {
                Some((l, r)) => id = if x[self.nodes[id].feature] < self.nodes[id].threshold { l } else { r },
                None => return,
            }
        }
    }

    /// Class frequencies at the row's leaf (or its deepest ancestor that saw training rows).
    fn proba(&self, x: ArrayView1<f64>, out: &mut [f64]) {
        let mut id = 0;
        let mut best = 0;
        loop {
            if self.counts.row(id).sum() > 0.0 {
                best = id;
            }
            match self.nodes[id].children {
                Some((l, r)) => id = if x[self.nodes[id].feature] < self.nodes[id].threshold { l } else { r },
                None => break,
            }
        }
        let row = self.counts.row(best);
        let total = row.sum();
        for (o, c) in out.iter_mut().zip(row) {
            *o = if total > 0.0 { c / total } else { 1.0 / row.len() as f64 };
        }
    }
}

struct FittedTree {
    tree: FlatTree,
    n_features: usize,
}

impl FittedModel for FittedTree {
    fn save(&self) -> Result<Vec<u8>> {
        let nodes = &self.tree.nodes;
        let mut e = Encoder::new(KIND);
        e.usize(self.n_features);
        e.usizes(&nodes.iter().map(|n| n.feature).collect::<Vec<_>>());
        e.f64s(&nodes.iter().map(|n| n.threshold).collect::<Vec<_>>());
        e.usizes(&nodes.iter().map(|n| n.children.map_or(0, |c| c.0)).collect::<Vec<_>>());
        e.matrix(&self.tree.counts);
        Ok(e.finish())
    }
    fn predict(&self, data: &Dataset) -> Result<Predictions> {
        check_features(KIND, self.n_features, data)?;
        let k = self.tree.counts.ncols();
        let mut out = Array2::zeros((data.n_rows(), k));
        for (row, mut o) in data.x.rows().into_iter().zip(out.rows_mut()) {
            self.tree.proba(row, o.as_slice_mut().expect("standard layout"));
        }
        Ok(Predictions::Proba(out))
    }
    fn n_classes(&self) -> Option<usize> {
        Some(self.tree.counts.ncols())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::common::testutil::*;
    use promoml_core::{Metric, ParamValue};

    #[test]
    fn binary_and_multiclass_hold_out() {
        let ds = blobs(600, 4, 2, 2.5, 1);
        let (train, test) = split(&ds, 0.7);
        let given = params(&[("max_depth", ParamValue::Int(5)), ("min_weight_leaf", ParamValue::Float(5.0))]);
        let pred = fit_predict(&DecisionTree, &train, &test, &given, 1);
        let auc = score(Metric::RocAuc, &test, &pred);
        assert!(auc > 0.9, "auc {auc}");
        let multi = blobs(600, 4, 3, 3.0, 2);
        let (train, test) = split(&multi, 0.7);
        let given = params(&[("split_quality", ParamValue::Str("entropy".into()))]);
        let pred = fit_predict(&DecisionTree, &train, &test, &given, 1);
        assert!(score(Metric::Accuracy, &test, &pred) > 0.85);
    }

    #[test]
    fn leaf_frequencies_are_probabilities() {
        // One feature; left of 5: 3 of class 0 and 1 of class 1 at the same x (cannot split).
        let x = Array2::from_shape_vec((6, 1), vec![1.0, 1.0, 1.0, 1.0, 9.0, 9.0]).unwrap();
        let mut ds = Dataset::from_x(x, vec!["a".into()]);
        ds.y = Some(vec![0.0, 0.0, 0.0, 1.0, 1.0, 1.0]);
        ds.classes = vec!["a".into(), "b".into()];
        let p = DecisionTree.space().defaults();
        let f = DecisionTree.fit(&ds, &p, &FitContext::new(0)).unwrap();
        let q = Dataset::from_x(Array2::from_shape_vec((2, 1), vec![0.0, 10.0]).unwrap(), vec!["a".into()]);
        let Predictions::Proba(pr) = f.predict(&q).unwrap() else { panic!() };
        assert_eq!(pr.row(0).to_vec(), vec![0.75, 0.25]);
        assert_eq!(pr.row(1).to_vec(), vec![0.0, 1.0]);
    }

    #[test]
    fn deterministic_with_ties_and_params_checked() {
        // Coarse features with many exact ties between classes.
        let mut ds = blobs(400, 3, 2, 0.5, 3);
        ds.x.mapv_inplace(|v| (v / 50.0).round());
        let (train, test) = split(&ds, 0.7);
        let given = params(&[("max_depth", ParamValue::Int(0))]);
        let a = fit_predict(&DecisionTree, &train, &test, &given, 1);
        for _ in 0..5 {
            assert_eq!(a, fit_predict(&DecisionTree, &train, &test, &given, 1));
        }
        // A split of [4, 1] into [3, 0] and a tied [1, 1]: linfa prunes the two leaves into one
        // exactly when its random tie-break calls the tied leaf class 0.
        let x = Array2::from_shape_vec((5, 1), vec![0.0, 0.0, 0.0, 1.0, 1.0]).unwrap();
        let mut tie = Dataset::from_x(x, vec!["a".into()]);
        tie.y = Some(vec![0.0, 0.0, 0.0, 0.0, 1.0]);
        tie.classes = vec!["a".into(), "b".into()];
        let q = Dataset::from_x(Array2::from_shape_vec((1, 1), vec![1.0]).unwrap(), vec!["a".into()]);
        let p = DecisionTree.space().defaults();
        for _ in 0..20 {
            let pr = DecisionTree.fit(&tie, &p, &FitContext::new(0)).unwrap().predict(&q).unwrap();
            assert_eq!(pr, Predictions::binary([0.5]));
        }
        check_space(&DecisionTree);
        rejects(&DecisionTree, "max_depth", ParamValue::Int(-1));
        rejects(&DecisionTree, "split_quality", ParamValue::Str("ginni".into()));
        rejects(&DecisionTree, "min_impurity_decrease", ParamValue::Float(0.0));
        let e = DecisionTree.fit(&linear(30, 3, 0.1, 1), &DecisionTree.space().defaults(), &FitContext::new(0));
        assert!(e.err().unwrap().to_string().contains("does not support regression"));
    }
}
