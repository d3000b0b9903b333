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
from causalml.inference.meta import BaseRRegressor
from sklearn.linear_model import LinearRegression
from sklearn.model_selection import StratifiedKFold

rng = np.random.default_rng(13)
n, n_test, seed = 300, 20, 7
x = rng.normal(size=(n, 3))
arm = rng.choice([0, 1, 2], size=n, p=[0.5, 0.3, 0.2])
effect = np.where(arm == 1, 1.0 + x[:, 1], np.where(arm == 2, -0.5 + 2.0 * x[:, 2], 0.0))
y = x[:, 0] + effect + rng.normal(scale=0.5, size=n)
names = np.array(["control", "t1", "t2"])
share = np.array([np.mean(arm == a) for a in range(3)])
prop = np.tile(share, (n, 1))
p = {f"t{a}": np.full(n, share[a] / (share[a] + share[0])) for a in (1, 2)}
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
