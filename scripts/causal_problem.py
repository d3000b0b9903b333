"""The synthetic two-arm problem behind the causalml fixtures (scripts/dr_fixture.py,
scripts/r_fixture.py): 300 rows of 3 normal features, arms control / t1 / t2 drawn 50/30/20,
effects 1 + x1 (t1) and -0.5 + 2 x2 (t2), outcome x0 + effect + noise, and each arm's share of
the rows as its propensity."""
from types import SimpleNamespace

import numpy as np


def problem(data_seed, n=300):
    """The problem drawn with `data_seed`; its `rng` goes on to draw the test rows."""
    rng = np.random.default_rng(data_seed)
    x = rng.normal(size=(n, 3))
    arm = rng.choice([0, 1, 2], size=n, p=[0.5, 0.3, 0.2])
    effect = np.where(arm == 1, 1.0 + x[:, 1], np.where(arm == 2, -0.5 + 2.0 * x[:, 2], 0.0))
    y = x[:, 0] + effect + rng.normal(scale=0.5, size=n)
    names = np.array(["control", "t1", "t2"])
    share = np.array([np.mean(arm == a) for a in range(3)])
    return SimpleNamespace(
        rng=rng,
        n=n,
        x=x,
        arm=arm,
        y=y,
        names=names,
        prop=np.tile(share, (n, 1)),
        p={f"t{a}": np.full(n, share[a] / (share[a] + share[0])) for a in (1, 2)},
    )
