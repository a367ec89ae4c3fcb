#!/bin/bash
# Device round: the banded dK/dV walk in one loop vs three runs (causal, window), the fused launch vs split for
# non-causal head_dim 64/128; GPU tests of the kernels first.
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
timeout 150 python -m pytest -q -n 6 --tb=short -W ignore -p no:cacheprovider tests/ut/test_kernels.py \
  tests/st/test_gpu.py -k "seqlens or window or gqa or dq or fused or float32" > $OUT/tests.log 2>&1
echo "tests exit $?"; tail -2 $OUT/tests.log; grep -E "^(FAILED|ERROR)" $OUT/tests.log | head
timeout 150 python benchmarks/ab_backward.py --variants split,split-3loops \
  --shapes 128:1:1024,128:1:2048,128:1:8192,64:1:2048,64:1:8192,128:1:8192:1024 --out $OUT/ab-loops.csv > $OUT/ab-loops.log 2>&1
echo "ab loops exit $?"
timeout 120 python benchmarks/ab_backward.py --variants split,fused \
  --shapes 64:0:1024,64:0:2048,64:0:8192,128:0:4096 --out $OUT/ab-fused.csv > $OUT/ab-fused.log 2>&1
echo "ab fused exit $?"
python - <<'PY'
import csv, os
for f in ("ab-loops", "ab-fused"):
    for r in csv.DictReader(open(os.environ["OUT"] + f"/{f}.csv")):
        print(f, r["d"], r["causal"], r["seqlen"], r["window"], r["variant"], r["rep"], "%.1f" % float(r["bwd_tflops"]), r["max_diff_vs_first"][:7])
PY
grep -iE "error|Traceback" $OUT/ab-*.log | head -5
