# pandas computing the same per-customer weekly bins and RFM summaries as
# ../shared/peers/events_polars.py (the CDNOW event plan's group-bys), for
# reports/benchmarks/events.md. Usage: python3 scripts/events_pandas.py LOG
# (a CDNOW-shaped log from ../shared/checks/gen_events.sh). Prints bins, customers,
# wall seconds and peak RSS in the same form as the Polars script.
import resource
import sys
import time

import pandas as pd

t0 = time.time()
df = pd.read_csv(
    sys.argv[1],
    sep=" ",
    dtype={"customer_id": "int64", "date": "string", "number_of_cds": "int64", "dollar_value": "float64"},
)
df["date"] = pd.to_datetime(df["date"], format="%Y%m%d")
start, cutoff, horizon = pd.Timestamp(1997, 1, 1), pd.Timestamp(1997, 9, 30), pd.Timestamp(1998, 6, 30)
cal = df[(df["date"] >= start) & (df["date"] <= cutoff)].copy()
hold = df[(df["date"] > cutoff) & (df["date"] <= horizon)]
cal["week"] = (cal["date"] - start).dt.days // 7
bins = cal.groupby(["customer_id", "week"]).agg(
    n=("number_of_cds", "size"), number_of_cds=("number_of_cds", "sum"), dollar_value=("dollar_value", "sum")
)
for d in (30, 60, 90, 180):
    cal[f"r{d}"] = cal["date"] > cutoff - pd.Timedelta(days=d)
summ = cal.groupby("customer_id").agg(
    freq=("date", "size"),
    m=("dollar_value", "sum"),
    last=("date", "max"),
    first=("date", "min"),
    **{f"r{d}": (f"r{d}", "sum") for d in (30, 60, 90, 180)},
)
lab = hold.groupby("customer_id").size().rename("buys")
out = summ.join(lab, how="left")
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(f"{sys.argv[1]}: {len(bins)} bins, {len(out)} customers, {time.time() - t0:.2f} s, peak RSS {rss:.0f} MB")
