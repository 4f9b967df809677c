#!/usr/bin/env python3
"""Writes models/digits-mlp/train.csv: the bundled digits' training split, every row of
data/digits.csv.gz that is not in models/digits-mlp/test.csv (1,438 of 1,797), in file order,
with test.csv's header. `cwnn train-onchain` and the importer's training test read it.

Usage: python3 scripts/digits-train.py   (standard library only)
"""
import gzip
import os

root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
test_path = os.path.join(root, "models", "digits-mlp", "test.csv")
with open(test_path) as f:
    lines = [l.strip() for l in f if l.strip()]
header, test = lines[0], {tuple(float(v) for v in l.split(",")) for l in lines[1:]}
rows = []
with gzip.open(os.path.join(root, "data", "digits.csv.gz"), "rt") as f:
    for line in f:
        if not line.strip():
            continue
        values = tuple(float(v) for v in line.strip().split(","))
        if values not in test:
            rows.append(",".join(str(int(v)) for v in values))
with open(os.path.join(root, "models", "digits-mlp", "train.csv"), "w") as f:
    f.write("\n".join([header] + rows) + "\n")
print(f"wrote {len(rows)} training digits ({len(test)} test digits left out)")
