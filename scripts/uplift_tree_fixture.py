"""Fixture for forest.uplift_random_forest: causalml's UpliftTreeClassifier (one tree, every
feature, no bootstrap) on a small three-arm problem, under each criterion, with and without
normalisation. Writes plugins/forest/tests/fixtures/uplift_tree.json.

    python3 scripts/uplift_tree_fixture.py   # causalml 0.18 (kernel-backed trees), numpy
"""
import json
import os

import numpy as np
from causalml.inference.tree import UpliftTreeClassifier

rng = np.random.default_rng(7)
n, p = 3000, 4
x = rng.normal(size=(n, p)).round(3)
arm = rng.integers(0, 3, size=n)
base = -0.8 + 0.6 * x[:, 0]
lift = np.where(arm == 1, 0.9 * (x[:, 1] > 0), 0.0) + np.where(arm == 2, 0.6 * x[:, 2], 0.0)
y = (rng.random(n) < 1 / (1 + np.exp(-(base + lift)))).astype(int)
x_test = rng.normal(size=(200, p)).round(3)
names = np.array(["control", "t1", "t2"])
cases = []
for crit in ["KL", "ED", "Chi"]:
    for norm in [True, False]:
        settings = dict(max_depth=4, min_samples_leaf=60, min_samples_treatment=15, n_reg=50)
        t = UpliftTreeClassifier(control_name="control", evaluationFunction=crit, normalization=norm, **settings)
        t.fit(x, treatment=names[arm], y=y)
        rates = t.predict(x_test)  # per-arm P(Y=1 | arm), control first
        cases.append(dict(criterion=crit.lower(), normalization=norm, nodes=int(t.tree_.node_count),
                          rates=np.asarray(rates).tolist(), **settings))
out = os.path.join(os.path.dirname(__file__), "..", "plugins/forest/tests/fixtures/uplift_tree.json")
with open(out, "w") as f:
    json.dump(dict(x=x.tolist(), arm=arm.tolist(), y=y.tolist(), x_test=x_test.tolist(), cases=cases), f)
print("cases", [(c["criterion"], c["normalization"], c["nodes"]) for c in cases])
