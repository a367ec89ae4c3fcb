#!/bin/bash
# Device round: GPU tests for dropout/KV cache, feature slowdowns with the grouped dropout, paged decode sweep.
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,driver_version --format=csv | tee $OUT/gpu.txt
timeout 200 python -m pytest -q -x tests/st -k "dropout or kvcache" 2>&1 | tail -25 | tee $OUT/st.log
timeout 150 python - <<'PY' 2>&1 | tee $OUT/sweep.log
import torch
from pathlib import Path
from flash_attention.bench_decode import sweep, _write, SWEEP_COLUMNS
rows = sweep([(1, 16384), (8, 16384), (32, 16384), (1, 65536)], layouts=(True,))
import os; _write(Path(os.environ["OUT"]) / "sweep-paged.csv", rows, SWEEP_COLUMNS)
PY
timeout 200 python -m flash_attention.bench_features --quick --out $OUT/features.csv 2>&1 | tail -40 | tee $OUT/features.log
