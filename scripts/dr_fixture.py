"""Fixture for the DR-learner test (crates/pipeline/src/uplift/learners.rs): causalml's
BaseDRRegressor with scikit-learn's LinearRegression on a small synthetic problem with two
treatment arms, its KFold(3, shuffle=True) partitions, and its effect and outcome predictions.

    python3 scripts/dr_fixture.py > crates/pipeline/tests/fixtures/dr_learner.json

Needs causalml (pip install causalml); made with causalml 0.18.0, scikit-learn 1.9.1, NumPy 2.4.6.
"""
import json

import numpy as np
from causalml.inference.meta import BaseDRRegressor
from sklearn.linear_model import LinearRegression
from sklearn.model_selection import KFold

rng = np.random.default_rng(11)
n, n_test, seed = 300, 20, 7
x = rng.normal(size=(n, 3))
arm = rng.choice([0, 1, 2], size=n, p=[0.5, 0.3, 0.2])
effect = np.where(arm == 1, 1.0 + x[:, 1], np.where(arm == 2, -0.5 + 2.0 * x[:, 2], 0.0))
y = x[:, 0] + effect + rng.normal(scale=0.5, size=n)
names = np.array(["control", "t1", "t2"])
share = np.array([np.mean(arm == a) for a in range(3)])
prop = np.tile(share, (n, 1))
p = {f"t{a}": np.full(n, share[a] / (share[a] + share[0])) for a in (1, 2)}
splits = [idx.tolist() for _, idx in KFold(n_splits=3, shuffle=True, random_state=seed).split(y)]

dr = BaseDRRegressor(learner=LinearRegression(), control_name="control")
dr.fit(x, treatment=names[arm], y=y, p=p, seed=seed)
x_test = rng.normal(size=(n_test, 3))
te, yhat_c, yhat_t = dr.predict(x_test, return_components=True)
json.dump(
    {
        "x": x.tolist(),
        "arm": arm.tolist(),
        "y": y.tolist(),
        "propensity": prop.tolist(),
        "splits": splits,
        "x_test": x_test.tolist(),
        "tau": te.T.tolist(),
        "mu": [yhat_c["t1"].tolist(), yhat_t["t1"].tolist(), yhat_t["t2"].tolist()],
    },
    __import__("sys").stdout,
)
