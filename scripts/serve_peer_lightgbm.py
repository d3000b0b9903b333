"""The peer of `promoml serve` in reports/benchmarks/serve.md: LightGBM behind FastAPI + uvicorn.

Trains a LightGBM classifier on a CSV (the online-shoppers training split by default) and serves
`POST /v1/predict` with the body promoml takes, `{"rows": [{column: value, ...}]}`, answering
`{"predictions": [{"score": p}, ...]}`. The same load generator drives both services:

    pip install lightgbm fastapi uvicorn pandas
    python3 scripts/serve_peer_lightgbm.py --train ../shared/data/bench/online-shoppers/train.csv \
        --target Revenue --port 58800
    cargo run --release -p promoml --example serve_bench -- --label "LightGBM (FastAPI)" \
        --url 127.0.0.1:58800 --rows ../shared/data/bench/online-shoppers/test.csv --drop Revenue
"""
import argparse

import lightgbm as lgb
import pandas as pd
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

parser = argparse.ArgumentParser()
parser.add_argument("--train", required=True)
parser.add_argument("--target", required=True)
parser.add_argument("--port", type=int, default=58800)
args, _ = parser.parse_known_args()

train = pd.read_csv(args.train)
y = train.pop(args.target).astype(str).str.upper().isin(["TRUE", "1", "YES"]).astype(int)
booleans = [c for c in train.columns if pd.api.types.is_bool_dtype(train[c])]
categorical = [c for c in train.columns if c not in booleans and not pd.api.types.is_numeric_dtype(train[c])]
for c in categorical:
    train[c] = train[c].astype(str).astype("category")
levels = {c: list(train[c].cat.categories) for c in categorical}
columns = list(train.columns)
model = lgb.LGBMClassifier(n_estimators=200, learning_rate=0.05, num_leaves=31, verbose=-1, n_jobs=1)
model.fit(train, y)


def prepare(rows):
    """Request rows as the training frame: categories with the trained levels, booleans from
    TRUE/FALSE text, numbers."""
    frame = pd.DataFrame(rows, columns=columns)
    for c in categorical:
        frame[c] = pd.Categorical(frame[c].astype(str), categories=levels[c])
    for c in booleans:
        frame[c] = frame[c].astype(str).str.upper().isin(["TRUE", "1", "1.0"])
    for c in columns:
        if c not in categorical and c not in booleans:
            frame[c] = pd.to_numeric(frame[c])
    return frame


app = FastAPI()


@app.post("/v1/predict")
async def predict(request: Request):
    body = await request.json()
    p = model.predict_proba(prepare(body["rows"]))[:, 1]
    return JSONResponse({"predictions": [{"score": float(s)} for s in p]})


@app.get("/healthz")
async def healthz():
    return {}


if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning")
