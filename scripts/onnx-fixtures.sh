#!/usr/bin/env bash
# Regenerates importer/tests/data/onnx-node/: ONNX's own backend node tests (model, inputs,
# expected outputs) for the ops the importer maps, copied from the onnx==1.22.0 wheel.
# Needs Python 3 and PyPI; the tests themselves never touch the network.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=target/onnx-fixtures-venv
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/pip" install -q "onnx==1.22.0"
src=$("$venv/bin/python" -c 'import onnx, os; print(os.path.join(os.path.dirname(onnx.__file__), "backend/test/data/node"))')
dst=importer/tests/data/onnx-node
rm -rf "$dst" && mkdir -p "$dst"
# Every test of a mapped op, but for integer types, 3-D pooling (large files; 2-D only is
# supported) and the '_expanded' function bodies.
ops='gemm|matmul|add|sub|mul|div|conv|maxpool|averagepool|globalaveragepool|flatten|reshape|batchnorm|relu|leakyrelu|clip|sigmoid|tanh|gelu|erf|layer_normalization|reduce_mean|softmax|lstm|gru|rnn|gather|slice|split|identity|dropout|constant|squeeze|unsqueeze|transpose'
skip='expanded|to_sequence|_int|uint|convinteger|convtranspose|gathernd|gather_elements|constant_pad|constantofshape|matmulinteger|_3d_'
ls "$src" | grep -E "^test_($ops)" | grep -vE "$skip" | while read -r t; do
  mkdir -p "$dst/$t"
  cp "$src/$t/model.onnx" "$dst/$t/"
  cp "$src/$t/test_data_set_0/"*.pb "$dst/$t/"
done
echo "$(ls "$dst" | wc -l) tests in $dst ($(du -sh "$dst" | cut -f1))"
