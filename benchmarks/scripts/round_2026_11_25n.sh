#!/bin/bash
# Device round: where the time goes (benchmarks/diagnose.py: per-kernel GPU time, CUDA-graph vs eager, host issue
# time) for the rows where FlexAttention's backward beats ours, with the heavy-first tile schedule on and off;
# then the kernel and schedule tests on the GPU.
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
timeout 330 python benchmarks/diagnose.py --out $OUT/diag.csv > $OUT/diag.log 2>&1
echo "diag exit $?"
timeout 150 python -m pytest -q -n 6 --tb=short -W ignore -p no:cacheprovider tests/ut/test_schedule.py \
  tests/ut/test_kernels.py > $OUT/ut-gpu.log 2>&1
echo "ut exit $?"; tail -3 $OUT/ut-gpu.log
python - <<'PY'
import csv, os
for r in csv.DictReader(open(os.environ["OUT"] + "/diag.csv")):
    print(r["d"], r["causal"], r["seqlen"], r["impl"], r["balance"], "fwd %.0f bwd %.0f" % (float(r["fwd_tflops"]), float(r["bwd_tflops"])),
          "fb %.3f graph %s host %.3f" % (float(r["fwd_bwd_ms"]), r["graph_fwd_bwd_ms"][:5], float(r["host_fwd_bwd_ms"])),
          "bwd_only %s" % r.get("bwd_only_tflops", "")[:5])
    print("    ", r["kernels"][:300])
PY
