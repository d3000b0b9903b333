#!/usr/bin/env python3
"""FLAML on the online-shoppers bench split at several time budgets: test ROC-AUC and wall time
(fit + predict), for reports/benchmarks/time-to-accuracy.md. Same encoding as
../shared/peers/osi.py. Needs `pip install "flaml[automl]" lightgbm scikit-learn pandas`; the product and its
tests never run it.

    python3 scripts/peer-flaml-budgets.py 15 30 60 120
"""
import json, os, sys, time
import pandas as pd
from sklearn.metrics import roc_auc_score
from flaml import AutoML

root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared", "data", "bench", "online-shoppers")
tr, te = pd.read_csv(f"{root}/train.csv"), pd.read_csv(f"{root}/test.csv")
y_tr, y_te = tr.pop("Revenue").astype(int), te.pop("Revenue").astype(int)
cat = ["Month", "VisitorType", "Weekend", "OperatingSystems", "Browser", "Region", "TrafficType"]
X = pd.get_dummies(pd.concat([tr, te]), columns=cat, dtype=float)
X_tr, X_te = X.iloc[: len(tr)], X.iloc[len(tr) :]
out = {}
for b in [int(a) for a in sys.argv[1:]] or [15, 30, 60, 120]:
    t = time.time()
    a = AutoML()
    a.fit(X_tr, y_tr, task="classification", metric="roc_auc", time_budget=b, verbose=0, seed=0, n_jobs=2)
    auc = roc_auc_score(y_te, a.predict_proba(X_te)[:, 1])
    out[b] = {"auc": round(auc, 4), "wall_s": round(time.time() - t, 1), "best": a.best_estimator}
    print(b, out[b], flush=True)
print(json.dumps(out))
