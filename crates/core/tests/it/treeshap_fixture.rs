//! TreeSHAP against Python `shap`'s TreeExplainer (path-dependent) on scikit-learn trees: the
//! committed fixture `fixtures/treeshap_sklearn.json` was written by
//! `scripts/treeshap_fixture.py`; no Python runs here.

use ndarray::Array2;
use promoml_core::Dataset;
use promoml_core::explain::{ShapNode, Space, TreeShap};
use serde_json::Value;

fn floats(v: &Value) -> Vec<f64> {
    v.as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect()
}

/// A scikit-learn tree (`x <= threshold` goes left; -1 children mark a leaf) as ShapNodes.
fn tree(t: &Value) -> Vec<ShapNode> {
    let ints = |k: &str| -> Vec<i64> { t[k].as_array().unwrap().iter().map(|x| x.as_i64().unwrap()).collect() };
    let (left, right, feature) = (ints("left"), ints("right"), ints("feature"));
    let (threshold, value, cover) = (floats(&t["threshold"]), floats(&t["value"]), floats(&t["cover"]));
    (0..left.len())
        .map(|i| {
            if left[i] < 0 {
                ShapNode::leaf(value[i], cover[i])
            } else {
                let (l, r) = (left[i] as usize, right[i] as usize);
                ShapNode::split(feature[i] as usize, threshold[i], true, [l, r, l], cover[i])
            }
        })
        .collect()
}

#[test]
fn tree_shap_matches_python_shap_tree_explainer() {
    let text = include_str!("fixtures/treeshap_sklearn.json");
    let fixture: Value = serde_json::from_str(text).unwrap();
    let rows: Vec<Vec<f64>> = fixture["rows"].as_array().unwrap().iter().map(floats).collect();
    let p = rows[0].len();
    let x = Array2::from_shape_fn((rows.len(), p), |(i, j)| rows[i][j]);
    let ds = Dataset::from_x(x, (0..p).map(|j| format!("x{j}")).collect());
    let cases = fixture["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 2);
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let trees: Vec<Vec<ShapNode>> = case["trees"].as_array().unwrap().iter().map(tree).collect();
        let shap = TreeShap::new(trees, p)
            .unwrap()
            .with_output(case["offset"].as_f64().unwrap(), case["scale"].as_f64().unwrap());
        let e = shap.explain(&ds, Space::Value).unwrap();
        let expected = case["expected_value"].as_f64().unwrap();
        assert!((e.base[0] - expected).abs() < 1e-9, "{name}: base {} vs shap's {expected}", e.base[0]);
        let want: Vec<Vec<f64>> = case["shap_values"].as_array().unwrap().iter().map(floats).collect();
        let output = floats(&case["output"]);
        for (i, w) in want.iter().enumerate() {
            for (j, wj) in w.iter().enumerate() {
                let got = e.contributions[[i, j]];
                assert!((got - wj).abs() < 1e-9, "{name} row {i} feature {j}: {got} vs shap's {wj}");
            }
            // Local accuracy against scikit-learn's own prediction.
            assert!((e.total(i) - output[i]).abs() < 1e-9, "{name} row {i}: {} vs {}", e.total(i), output[i]);
            assert!((shap.output(&rows[i]) - output[i]).abs() < 1e-9);
        }
    }
}
