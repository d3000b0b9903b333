#!/usr/bin/env python3
"""PyTorch counterpart of `cargo run --release -p promoml-burn --example throughput`: the same
CDNOW sequences (39 weekly steps x [purchases, spend] from each customer's first purchase week,
zero-padded; 4 RFM features; training customers id % 5 != 4), the same preprocessing
(signed log1p then standardisation learnt on training rows), the same network (LSTM 2->32,
hidden state at the last valid step, concatenated with the 4 standardised RFM features, one
dense ReLU layer of 32, one logit), the same training (Adam lr 1e-3, batch 128, per-parameter
gradient-norm clipping at 1.0, BCE), timed over the training loop only.

`--cell transformer` is `burn.transformer`'s network instead: a linear projection 2->32, fixed
sinusoidal positions, one pre-norm encoder layer (2 heads, feed-forward 64, GELU, no dropout)
with the padded steps masked, masked mean pooling, then the same head.

Usage: python3 plugins/burn/examples/torch_lstm_throughput.py [--epochs 3] [--threads 2] [--batch 128] [--cell gru|transformer]
For benchmarking only: PyTorch is not a dependency of promoml or of its tests.
"""

import argparse
import datetime as dt
import os
import time

import numpy as np
import torch

WEEKS = 39


def load(path):
    start, cutoff, end = dt.date(1997, 1, 1), dt.date(1997, 9, 30), dt.date(1998, 6, 30)
    cust = {}
    with open(path) as fh:
        next(fh)
        for line in fh:
            f = line.split()
            if len(f) < 4:
                continue
            cid, d, spend = int(f[0]), f[1], float(f[3])
            day = dt.date(int(d[:4]), int(d[4:6]), int(d[6:]))
            c = cust.setdefault(cid, {"weekly": np.zeros((WEEKS, 2), np.float32), "first": WEEKS, "n": 0,
                                      "spend": 0.0, "last": None, "firstday": None, "repeat": False})
            if day <= cutoff:
                w = min((day - start).days // 7, WEEKS - 1)
                c["weekly"][w, 0] += 1
                c["weekly"][w, 1] += spend
                c["first"] = min(c["first"], w)
                c["n"] += 1
                c["spend"] += spend
                c["last"] = day if c["last"] is None else max(c["last"], day)
                c["firstday"] = day if c["firstday"] is None else min(c["firstday"], day)
            elif day <= end:
                c["repeat"] = True
    ids = sorted(i for i, c in cust.items() if c["n"] > 0 and i % 5 != 4)
    n = len(ids)
    seq = np.zeros((n, WEEKS, 2), np.float32)
    lengths = np.zeros(n, np.int64)
    x = np.zeros((n, 4))
    y = np.zeros(n, np.float32)
    for i, cid in enumerate(ids):
        c = cust[cid]
        length = WEEKS - c["first"]
        seq[i, :length] = c["weekly"][c["first"]:]
        lengths[i] = length
        x[i] = [(cutoff - c["last"]).days, c["n"], c["spend"] / c["n"], (cutoff - c["firstday"]).days]
        y[i] = c["repeat"]
    return seq, lengths, x, y


def signed_log(v):
    return np.sign(v) * np.log1p(np.abs(v))


class TransformerNet(torch.nn.Module):
    def __init__(self, channels, tab, d, steps, heads=2):
        super().__init__()
        self.proj = torch.nn.Linear(channels, d)
        pos = torch.arange(steps, dtype=torch.float32)[:, None]
        div = torch.exp(torch.arange(0, d, 2, dtype=torch.float32) * (-np.log(10000.0) / d))
        pe = torch.zeros(steps, d)
        pe[:, 0::2], pe[:, 1::2] = torch.sin(pos * div), torch.cos(pos * div)
        self.register_buffer("pe", pe)
        layer = torch.nn.TransformerEncoderLayer(d, heads, 2 * d, dropout=0.0, activation="gelu",
                                                 batch_first=True, norm_first=True)
        self.encoder = torch.nn.TransformerEncoder(layer, 1, enable_nested_tensor=False)
        self.dense = torch.nn.Linear(d + tab, d)
        self.head = torch.nn.Linear(d, 1)

    def forward(self, seq, valid, tab):
        x = self.encoder(self.proj(seq) + self.pe, src_key_padding_mask=valid == 0)
        pooled = (x * valid.unsqueeze(2)).sum(1) / valid.sum(1, keepdim=True).clamp(min=1)
        z = torch.relu(self.dense(torch.cat([pooled, tab], 1)))
        return self.head(z).squeeze(1)


class Net(torch.nn.Module):
    def __init__(self, channels, tab, hidden, cell="lstm"):
        super().__init__()
        rnn = torch.nn.GRU if cell == "gru" else torch.nn.LSTM
        self.lstm = rnn(channels, hidden, batch_first=True)
        self.dense = torch.nn.Linear(hidden + tab, hidden)
        self.head = torch.nn.Linear(hidden, 1)

    def forward(self, seq, last, tab):
        out, _ = self.lstm(seq)
        pooled = (out * last.unsqueeze(2)).sum(1)  # hidden state at the last valid step
        z = torch.relu(self.dense(torch.cat([pooled, tab], 1)))
        return self.head(z).squeeze(1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--cell", choices=["lstm", "gru", "transformer"], default="lstm")
    ap.add_argument("--data", default=os.path.join(os.path.dirname(__file__), "../../../../shared/data/raw/CDNOW_master.txt"))
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(42)
    seq, lengths, x, y = load(a.data)
    n = len(y)
    valid = np.arange(WEEKS)[None, :] < lengths[:, None]
    s = signed_log(seq)
    for ch in range(2):
        v = s[:, :, ch][valid]
        s[:, :, ch] = np.where(valid, (s[:, :, ch] - v.mean()) / v.std(), 0.0)
    xt = signed_log(x)
    xt = (xt - xt.mean(0)) / xt.std(0)
    last = np.zeros((n, WEEKS), np.float32)
    last[np.arange(n), lengths - 1] = 1.0
    if a.cell == "transformer":  # the transformer pools over the valid steps, not the last one
        last = valid.astype(np.float32)
    seq_t, last_t = torch.tensor(s, dtype=torch.float32), torch.tensor(last)
    tab_t, y_t = torch.tensor(xt, dtype=torch.float32), torch.tensor(y)
    net = TransformerNet(2, 4, 32, WEEKS) if a.cell == "transformer" else Net(2, 4, 32, a.cell)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3, eps=1e-5)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    g = torch.Generator().manual_seed(42)
    t0 = time.perf_counter()
    for _ in range(a.epochs):
        perm = torch.randperm(n, generator=g)
        for b in range(0, n, a.batch):
            idx = perm[b:b + a.batch]
            opt.zero_grad()
            loss = loss_fn(net(seq_t[idx], last_t[idx], tab_t[idx]), y_t[idx])
            loss.backward()
            for p in net.parameters():  # per-parameter norm clipping, as burn's GradientClipping::Norm
                torch.nn.utils.clip_grad_norm_([p], 1.0)
            opt.step()
    secs = time.perf_counter() - t0
    print(f"torch {torch.__version__} {a.cell.upper()} hidden 32 batch {a.batch}, {a.threads} threads: {n} rows x {a.epochs} epochs "
          f"in {secs:.1f} s -> {n * a.epochs / secs:.0f} sequences/s")


if __name__ == "__main__":
    main()
