"""Fixture for the R-learner test (crates/pipeline/src/uplift/learners.rs): causalml's
BaseRRegressor with scikit-learn's LinearRegression (outcome and weighted effect models) on a
small synthetic problem with two treatment arms, its out-of-fold outcome folds
(StratifiedKFold(5, shuffle=True) on the treatment, as causalml's compute_r_residuals makes
them) and its effect predictions.

    python3 scripts/r_fixture.py > crates/pipeline/tests/fixtures/r_learner.json

Needs causalml (pip install causalml); made with the versions printed in the fixture.
"""
import json

import numpy as np
import sklearn
from causal_problem import problem
from causalml.inference.meta import BaseRRegressor
from sklearn.linear_model import LinearRegression
from sklearn.model_selection import StratifiedKFold

d = problem(13)
n_test, seed = 20, 7
rng, x, arm, y, names, prop, p = d.rng, d.x, d.arm, d.y, d.names, d.prop, d.p
folds = [idx.tolist() for _, idx in StratifiedKFold(n_splits=5, shuffle=True, random_state=seed).split(x, names[arm])]

r = BaseRRegressor(learner=LinearRegression(), control_name="control", random_state=seed)
r.fit(x, treatment=names[arm], y=y, p=p, verbose=False)
x_test = rng.normal(size=(n_test, 3))
te = r.predict(x_test)
json.dump(
    {
        "versions": {"causalml": __import__("importlib.metadata").metadata.version("causalml"), "scikit-learn": sklearn.__version__, "numpy": np.__version__},
        "x": x.tolist(),
        "arm": arm.tolist(),
        "y": y.tolist(),
        "propensity": prop.tolist(),
        "folds": folds,
        "x_test": x_test.tolist(),
        "tau": te.T.tolist(),
    },
    __import__("sys").stdout,
)
