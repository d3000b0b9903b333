#!/usr/bin/env python3
"""Cross-check for plugins/forest/examples/forest_bench.rs: scikit-learn's random forest (and
extra trees) on the same train/test split with the same encoding (categorical columns get
ordinal codes in the order their levels first appear in train.csv; booleans are 0/1).

Usage: python3 scripts/sklearn_rf_bench.py /work/shared/data/bench/online-shoppers [--trees 500] [--threads 2] [--runs 3]

For benchmarking only: scikit-learn is not a dependency of promoml or of its tests.
"""

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.ensemble import ExtraTreesClassifier, RandomForestClassifier
from sklearn.metrics import roc_auc_score

TARGET = "Revenue"


def encode(train: pd.DataFrame, test: pd.DataFrame):
    xs = []
    for df in (train, test):
        x = pd.DataFrame(index=df.index)
        for col in df.columns:
            if col == TARGET:
                continue
            s = df[col]
            if s.dtype == object or isinstance(s.dtype, pd.StringDtype):
                levels = {v: i for i, v in enumerate(pd.unique(train[col]))}
                x[col] = s.map(lambda v: levels.get(v, len(levels))).astype(float)
            else:
                x[col] = s.astype(float)
        xs.append(x.to_numpy())
    ys = [df[TARGET].astype(int).to_numpy() for df in (train, test)]
    return xs[0], ys[0], xs[1], ys[1]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dir", type=Path)
    ap.add_argument("--trees", type=int, default=500)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--only", default="", help="run only models whose name contains this")
    a = ap.parse_args()
    train = pd.read_csv(a.dir / "train.csv")
    test = pd.read_csv(a.dir / "test.csv")
    xtr, ytr, xte, yte = encode(train, test)
    print(f"data: {len(ytr)} train rows ({ytr.sum()} positive), {len(yte)} test rows, {xtr.shape[1]} features; "
          f"{a.trees} trees, {a.threads} threads, {a.runs} runs")
    print(f"{'model':<28} {'run':>4} {'fit s':>9} {'fit cpu s':>9} {'predict s':>11} {'roc_auc':>8} {'nodes':>9}")
    for name, cls in (("sklearn random_forest", RandomForestClassifier), ("sklearn extra_trees", ExtraTreesClassifier)):
        if a.only not in name:
            continue
        for run in range(a.runs):
            m = cls(n_estimators=a.trees, n_jobs=a.threads, random_state=run)
            t, cpu = time.perf_counter(), time.process_time()
            m.fit(xtr, ytr)
            fit_s, fit_cpu = time.perf_counter() - t, time.process_time() - cpu
            t = time.perf_counter()
            p = m.predict_proba(xte)[:, 1]
            predict_s = time.perf_counter() - t
            auc = roc_auc_score(yte, p)
            nodes = sum(e.tree_.node_count for e in m.estimators_)
            print(f"{name:<28} {run:>4} {fit_s:>9.3f} {fit_cpu:>9.2f} {predict_s:>11.3f} {auc:>8.4f} {nodes:>9}")
    assert np.isfinite(xtr).all() and np.isfinite(xte).all()


if __name__ == "__main__":
    main()
