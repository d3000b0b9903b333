"""Fixture for the DR-learner test (crates/pipeline/src/uplift/learners.rs): causalml's
BaseDRRegressor with scikit-learn's LinearRegression on a small synthetic problem with two
treatment arms, its KFold(3, shuffle=True) partitions, and its effect and outcome predictions.

    python3 scripts/dr_fixture.py > crates/pipeline/tests/fixtures/dr_learner.json

Needs causalml (pip install causalml); made with causalml 0.18.0, scikit-learn 1.9.1, NumPy 2.4.6.
"""
import json

from causal_problem import problem
from causalml.inference.meta import BaseDRRegressor
from sklearn.linear_model import LinearRegression
from sklearn.model_selection import KFold

d = problem(11)
n_test, seed = 20, 7
rng, x, arm, y, names, prop, p = d.rng, d.x, d.arm, d.y, d.names, d.prop, d.p
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
