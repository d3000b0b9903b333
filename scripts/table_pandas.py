#!/usr/bin/env python3
"""Peer figure for the table-loading benchmark (scripts/table_bench.sh): read one CSV table with
pandas (its C parser, missing markers and a parsed date column, as promoml reads it) or Polars,
and print rows, columns and seconds. Usage: table_pandas.py pandas|polars TABLE.csv[.gz]"""
import sys
import time

engine, path = sys.argv[1], sys.argv[2]
start = time.perf_counter()
if engine == "pandas":
    import pandas as pd

    df = pd.read_csv(path, parse_dates=["date"])
else:
    import polars as pl

    df = pl.read_csv(path, try_parse_dates=True, null_values=["NA"])
secs = time.perf_counter() - start
print(f"{path}: {df.shape[0]} rows x {df.shape[1]} columns in {secs:.2f} s ({engine})")
