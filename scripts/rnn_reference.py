#!/usr/bin/env python3
"""Independent reference for promoml-burn's LSTM and GRU forward passes.

Implements PyTorch's documented single-layer, batch-first LSTM and GRU equations
(https://pytorch.org/docs/stable/generated/torch.nn.LSTM.html and torch.nn.GRU.html) in NumPy,
in float64, on seeded random weights stored in PyTorch's layout, and writes a JSON fixture with
the weights, the input, the initial states and the expected outputs. The Rust test
`plugins/burn/tests/rnn_reference.rs` loads the same weights into burn's modules and compares.

LSTM, gate order (i, f, g, o) in weight_ih [4H, I], weight_hh [4H, H], bias_ih, bias_hh [4H]:
    i = sigmoid(W_ii x + b_ii + W_hi h + b_hi)
    f = sigmoid(W_if x + b_if + W_hf h + b_hf)
    g = tanh(W_ig x + b_ig + W_hg h + b_hg)
    o = sigmoid(W_io x + b_io + W_ho h + b_ho)
    c' = f * c + i * g
    h' = o * tanh(c')
GRU, gate order (r, z, n) in weight_ih [3H, I], weight_hh [3H, H], bias_ih, bias_hh [3H]:
    r = sigmoid(W_ir x + b_ir + W_hr h + b_hr)
    z = sigmoid(W_iz x + b_iz + W_hz h + b_hz)
    n = tanh(W_in x + b_in + r * (W_hn h + b_hn))
    h' = (1 - z) * n + z * h

Usage: python3 scripts/rnn_reference.py [out.json]
(default: plugins/burn/tests/fixtures/rnn_reference.json). Needs only NumPy.
"""

import json
import os
import sys

import numpy as np

BATCH, STEPS, INPUT, HIDDEN = 3, 7, 4, 5
SEED = 20241


def sigmoid(v):
    return 1.0 / (1.0 + np.exp(-v))


def f32(a):
    """Values representable in float32 (what burn stores), kept as float64 for the maths."""
    return np.asarray(a, dtype=np.float32).astype(np.float64)


def uniform(rng, shape, bound):
    # PyTorch initialises RNN weights as U(-1/sqrt(H), 1/sqrt(H)); use a wider range so the
    # gates leave their linear region and a wrong gate mapping cannot pass by accident.
    return f32(rng.uniform(-bound, bound, size=shape))


def lstm(x, h0, c0, weight_ih, weight_hh, bias_ih, bias_hh):
    w_ih, w_hh, b_ih, b_hh = weight_ih, weight_hh, bias_ih, bias_hh
    hdim = h0.shape[1]
    h, c = h0.copy(), c0.copy()
    out = np.zeros((x.shape[0], x.shape[1], hdim))
    for t in range(x.shape[1]):
        gates = x[:, t, :] @ w_ih.T + b_ih + h @ w_hh.T + b_hh
        i = sigmoid(gates[:, 0:hdim])
        f = sigmoid(gates[:, hdim : 2 * hdim])
        g = np.tanh(gates[:, 2 * hdim : 3 * hdim])
        o = sigmoid(gates[:, 3 * hdim : 4 * hdim])
        c = f * c + i * g
        h = o * np.tanh(c)
        out[:, t, :] = h
    return out, h, c


def gru(x, h0, weight_ih, weight_hh, bias_ih, bias_hh):
    w_ih, w_hh, b_ih, b_hh = weight_ih, weight_hh, bias_ih, bias_hh
    hdim = h0.shape[1]
    h = h0.copy()
    out = np.zeros((x.shape[0], x.shape[1], hdim))
    for t in range(x.shape[1]):
        gi = x[:, t, :] @ w_ih.T + b_ih
        gh = h @ w_hh.T + b_hh
        r = sigmoid(gi[:, 0:hdim] + gh[:, 0:hdim])
        z = sigmoid(gi[:, hdim : 2 * hdim] + gh[:, hdim : 2 * hdim])
        n = np.tanh(gi[:, 2 * hdim :] + r * gh[:, 2 * hdim :])
        h = (1.0 - z) * n + z * h
        out[:, t, :] = h
    return out, h


def nested(a):
    return np.asarray(a).tolist()


def main():
    out_path = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        os.path.dirname(__file__), "..", "plugins", "burn", "tests", "fixtures", "rnn_reference.json"
    )
    rng = np.random.default_rng(SEED)
    bound = 2.0 / np.sqrt(HIDDEN)
    x = f32(rng.normal(0.0, 1.0, size=(BATCH, STEPS, INPUT)))
    h0 = f32(rng.uniform(-0.5, 0.5, size=(BATCH, HIDDEN)))
    c0 = f32(rng.uniform(-0.5, 0.5, size=(BATCH, HIDDEN)))

    lstm_w = {
        "weight_ih": uniform(rng, (4 * HIDDEN, INPUT), bound),
        "weight_hh": uniform(rng, (4 * HIDDEN, HIDDEN), bound),
        "bias_ih": uniform(rng, (4 * HIDDEN,), bound),
        "bias_hh": uniform(rng, (4 * HIDDEN,), bound),
    }
    gru_w = {
        "weight_ih": uniform(rng, (3 * HIDDEN, INPUT), bound),
        "weight_hh": uniform(rng, (3 * HIDDEN, HIDDEN), bound),
        "bias_ih": uniform(rng, (3 * HIDDEN,), bound),
        "bias_hh": uniform(rng, (3 * HIDDEN,), bound),
    }
    l_out, l_h, l_c = lstm(x, h0, c0, **lstm_w)
    g_out, g_h = gru(x, h0, **gru_w)
    # Zero initial state as well: the path the models use.
    l0_out, _, _ = lstm(x, np.zeros_like(h0), np.zeros_like(c0), **lstm_w)
    g0_out, _ = gru(x, np.zeros_like(h0), **gru_w)

    fixture = {
        "about": "PyTorch-layout LSTM/GRU weights and NumPy float64 outputs; made by scripts/rnn_reference.py",
        "seed": SEED,
        "batch": BATCH,
        "steps": STEPS,
        "input": INPUT,
        "hidden": HIDDEN,
        "x": nested(x),
        "h0": nested(h0),
        "c0": nested(c0),
        "lstm": {
            **{k: nested(v) for k, v in lstm_w.items()},
            "output": nested(l_out),
            "h_n": nested(l_h),
            "c_n": nested(l_c),
            "output_zero_state": nested(l0_out),
        },
        "gru": {
            **{k: nested(v) for k, v in gru_w.items()},
            "output": nested(g_out),
            "h_n": nested(g_h),
            "output_zero_state": nested(g0_out),
        },
    }
    os.makedirs(os.path.dirname(os.path.abspath(out_path)), exist_ok=True)
    with open(out_path, "w") as fh:
        json.dump(fixture, fh, indent=1)
        fh.write("\n")
    print(f"wrote {out_path}")


if __name__ == "__main__":
    main()
