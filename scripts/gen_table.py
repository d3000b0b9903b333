#!/usr/bin/env python3
"""A large plain table for the table-loading benchmark (scripts/table_bench.sh): ROWS rows of
twelve columns shaped like an e-commerce session table (numbers, two categorical columns, a
boolean, a date, a binary target), seeded. Usage: gen_table.py ROWS OUT.csv"""
import random
import sys

rows, out = int(sys.argv[1]), sys.argv[2]
rnd = random.Random(7)
months = ["Jan", "Feb", "Mar", "May", "June", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
visitors = ["Returning_Visitor", "New_Visitor", "Other"]
with open(out, "w") as f:
    f.write("pages,duration,bounce,exit,value,special,product,product_time,region,month,visitor,weekend,date,revenue\n")
    for i in range(rows):
        pages = rnd.randint(0, 30)
        value = rnd.expovariate(0.1) if rnd.random() < 0.3 else 0.0
        dur = "NA" if rnd.random() < 0.01 else f"{rnd.expovariate(0.01):.2f}"
        y = 1 if value > 5 and rnd.random() < 0.7 or rnd.random() < 0.05 else 0
        f.write(
            f"{pages},{dur},{rnd.random() * 0.2:.5f},{rnd.random() * 0.2:.5f},{value:.3f},{rnd.choice((0, 0.2, 0.4))},"
            f"{rnd.randint(1, 700)},{rnd.expovariate(0.001):.1f},{rnd.randint(1, 9)},{rnd.choice(months)},"
            f"{rnd.choice(visitors)},{'TRUE' if rnd.random() < 0.23 else 'FALSE'},2024-{1 + i % 12:02d}-{1 + i % 28:02d},{y}\n"
        )
