"""Cross-check promoml's uplift metrics against scikit-uplift.

Writes crates/pipeline/src/uplift/sklift_fixture.json: random outcomes, treatment flags and
uplift scores (rounded so that ties occur) with scikit-uplift's qini_auc_score,
uplift_auc_score and uplift_at_k(strategy="overall", k=0.3) for each case. The Rust test
`uplift::metrics::tests::matches_scikit_uplift_fixture` reads it back.

With --hillstrom it also fits the peer baseline (scikit-uplift SoloModel = S-learner with
LightGBM defaults) on the fixed benchmark split and prints its test figures.

    pip install scikit-uplift lightgbm
    python3 scripts/sklift_check.py [--hillstrom]
"""
import json
import sys
from pathlib import Path

import numpy as np
import sklift
from sklift.metrics import qini_auc_score, uplift_at_k, uplift_auc_score

ROOT = Path(__file__).resolve().parent.parent


def fixture():
    rng = np.random.default_rng(20260101)
    cases = []
    for n, decimals, p_treat in [(200, 1, 0.5), (301, 2, 0.3), (500, 3, 0.6), (64, 0, 0.5)]:
        t = (rng.random(n) < p_treat).astype(int)
        x = rng.normal(size=n)
        base = 0.2 + 0.1 * (x > 0)
        y = (rng.random(n) < base + t * 0.15 * (x > -0.5)).astype(int)
        uplift = np.round(0.1 * x + rng.normal(scale=0.1, size=n), decimals)
        cases.append({
            "y": y.tolist(),
            "treatment": t.tolist(),
            "uplift": uplift.tolist(),
            "qini_auc": float(qini_auc_score(y, uplift, t)),
            "uplift_auc": float(uplift_auc_score(y, uplift, t)),
            "uplift_at_30": float(uplift_at_k(y, uplift, t, strategy="overall", k=0.3)),
        })
    out = ROOT / "crates/pipeline/src/uplift/sklift_fixture.json"
    out.write_text(json.dumps({"scikit_uplift": sklift.__version__, "cases": cases}) + "\n")
    print(f"wrote {out} ({len(cases)} cases, scikit-uplift {sklift.__version__})")


def hillstrom():
    import pandas as pd
    from lightgbm import LGBMClassifier
    from sklift.models import SoloModel

    data = ROOT.parent / "shared/data/bench/hillstrom"
    tr, te = pd.read_csv(data / "train.csv"), pd.read_csv(data / "test.csv")
    keep = lambda d: d[d.segment.isin(["Womens E-Mail", "No E-Mail"])]
    tr, te = keep(tr), keep(te)
    feats = ["recency", "history_segment", "history", "mens", "womens", "zip_code", "newbie", "channel"]
    X = lambda d: pd.get_dummies(d[feats], columns=["history_segment", "zip_code", "channel"], dtype=float)
    xtr = X(tr)
    xtr.columns = [f"f{i}" for i in range(xtr.shape[1])]
    xte = X(te).reindex(columns=X(tr).columns, fill_value=0.0)
    xte.columns = xtr.columns
    ttr, tte = (tr.segment == "Womens E-Mail").astype(int), (te.segment == "Womens E-Mail").astype(int)
    model = SoloModel(LGBMClassifier(verbose=-1, random_state=42)).fit(xtr, tr.visit, ttr)
    u = model.predict(xte)
    print("hillstrom S-learner + LightGBM: qini_auc %.4f, uplift@30 %.4f, uplift_auc %.4f" % (
        qini_auc_score(te.visit, u, tte), uplift_at_k(te.visit, u, tte, strategy="overall", k=0.3),
        uplift_auc_score(te.visit, u, tte)))


if __name__ == "__main__":
    fixture()
    if "--hillstrom" in sys.argv:
        hillstrom()
