#!/bin/bash
# Device round: GPU tests of the kernels after the one-loop walk (forward, dQ, dK/dV) and the fused default;
# A/B of one loop vs three runs in the backward (split) and the forward (two tile shapes), same process.
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
timeout 200 python -m pytest -q -n 8 --tb=short -W ignore -p no:cacheprovider tests/st/test_gpu.py \
  tests/ut/test_kernels.py -k "not every_head_dim" > $OUT/tests.log 2>&1
echo "tests exit $?"; tail -2 $OUT/tests.log; grep -E "^(FAILED|ERROR)" $OUT/tests.log | head
timeout 120 python benchmarks/ab_backward.py --variants split,split-3loops,fused \
  --shapes 128:1:1024,128:1:2048,128:1:8192,128:0:2048 --out $OUT/ab-bwd.csv > $OUT/ab-bwd.log 2>&1
echo "ab bwd exit $?"
timeout 100 python benchmarks/ab_forward.py --out $OUT/ab-fwd.csv > $OUT/ab-fwd.log 2>&1
echo "ab fwd exit $?"
python - <<'PY'
import csv, os
for r in csv.DictReader(open(os.environ["OUT"] + "/ab-bwd.csv")):
    print("bwd", r["d"], r["causal"], r["seqlen"], r["variant"], r["rep"], "%.1f" % float(r["bwd_tflops"]), r["max_diff_vs_first"][:7])
for r in csv.DictReader(open(os.environ["OUT"] + "/ab-fwd.csv")):
    print("fwd", r["d"], r["causal"], r["seqlen"], r["one_loop"], r["cfg"][12:], "%.1f" % float(r["fwd_tflops"]), r["max_diff"][:7])
PY
grep -iE "Traceback|Error" $OUT/ab-*.log | head -5
