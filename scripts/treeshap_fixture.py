"""Expected TreeSHAP values from Python `shap` for the Rust cross-check (crates/core/tests/it).

Fits a scikit-learn random forest regressor and a gradient-boosted classifier on seeded data,
exports their trees (children, split feature, threshold, leaf value, cover = weighted training
samples per node) and asks shap's TreeExplainer (path-dependent, the algorithm promoml
implements) for the expected value and the SHAP values of some rows. The Rust test rebuilds the
same trees as `promoml_core::explain::ShapNode`s and must agree to 1e-9. The Rust tests never
run Python: they read the committed JSON.

    pip install shap scikit-learn
    python3 scripts/treeshap_fixture.py > crates/core/tests/it/fixtures/treeshap_sklearn.json
"""
import json
import sys

import numpy as np
import shap
import sklearn
from sklearn.ensemble import GradientBoostingClassifier, RandomForestRegressor

rng = np.random.default_rng(17)
n, p = 600, 5
# float32-exact values: scikit-learn compares float32 features with float64 thresholds.
X = rng.normal(size=(n, p)).round(3).astype(np.float32).astype(np.float64)
X[:, 3] = rng.integers(0, 3, size=n)  # a few distinct values: repeated splits on one feature
y_reg = 2 * X[:, 0] - X[:, 1] * X[:, 2] + (X[:, 3] == 1) + 0.1 * rng.normal(size=n)
y_cls = (X[:, 0] + X[:, 1] * (X[:, 3] - 1) + 0.5 * rng.normal(size=n) > 0).astype(int)
rows = X[:25]


def export(estimator, value_scale):
    t = estimator.tree_
    return {
        "left": t.children_left.tolist(),
        "right": t.children_right.tolist(),
        "feature": t.feature.tolist(),
        "threshold": t.threshold.tolist(),
        "value": (t.value[:, 0, 0] * value_scale).tolist(),
        "cover": t.weighted_n_node_samples.tolist(),
    }


cases = []
rf = RandomForestRegressor(n_estimators=8, max_depth=6, random_state=0).fit(X, y_reg)
ex = shap.TreeExplainer(rf, feature_perturbation="tree_path_dependent")
cases.append({
    "name": "random_forest_regressor",
    "trees": [export(e, 1.0) for e in rf.estimators_],
    "offset": 0.0,
    "scale": 1.0 / len(rf.estimators_),
    "expected_value": float(np.ravel(ex.expected_value)[0]),
    "shap_values": ex.shap_values(rows).tolist(),
    "output": rf.predict(rows).tolist(),
})
gb = GradientBoostingClassifier(n_estimators=30, max_depth=3, learning_rate=0.1, random_state=0).fit(X, y_cls)
ex = shap.TreeExplainer(gb, feature_perturbation="tree_path_dependent")
# Raw output (log-odds) = init + learning_rate * sum of tree values.
init = float(gb._raw_predict_init(rows[:1])[0, 0])
cases.append({
    "name": "gradient_boosting_classifier_log_odds",
    "trees": [export(e, gb.learning_rate) for e in gb.estimators_[:, 0]],
    "offset": init,
    "scale": 1.0,
    "expected_value": float(np.ravel(ex.expected_value)[0]),
    "shap_values": np.asarray(ex.shap_values(rows)).tolist(),
    "output": gb.decision_function(rows).tolist(),
})
json.dump({
    "generator": "scripts/treeshap_fixture.py",
    "shap_version": shap.__version__,
    "sklearn_version": sklearn.__version__,
    "rows": rows.tolist(),
    "cases": cases,
}, sys.stdout)
sys.stdout.write("\n")
