#!/bin/bash
# Device round 2026-12-02 (fifth session), call 3: the plans' GPU tests again after the leaner autograd.Function
# (library.py), and a same-process A/B of the Gluon backward's two dQ modes at 1K-2K keys (fused = TMA reductions
# into a float32 buffer, split = the dQ kernel), where the buffer's zeroing and conversion weigh most.
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD
nvidia-smi --query-gpu=name --format=csv,noheader
timeout 120 python -m pytest -q -x -p no:cacheprovider tests/st/test_gpu_plans.py > $OUT/h200-2026-12-02-plans-tests-b.log 2>&1
echo "plans tests exit $?"; tail -n 3 $OUT/h200-2026-12-02-plans-tests-b.log
timeout 200 python benchmarks/ab_backward.py --switch BWD_GLUON --variants tma,split --dtypes bf16 \
  --shapes 128:0:1024,128:0:2048,64:0:2048,64:1:1024,64:1:2048,128:1:1024 \
  --out $OUT/h200-2026-12-02-gluon-dq-short-ab-bf16.csv > $OUT/h200-2026-12-02-gluon-dq-short-ab-bf16.log 2>&1
echo "ab exit $?"
python - <<'PY'
import csv, os, collections
p = os.environ["OUT"] + "/h200-2026-12-02-gluon-dq-short-ab-bf16.csv"
rows = list(csv.DictReader(open(p)))
agg = collections.defaultdict(list)
for r in rows:
    agg[(r["d"], r["causal"], r["seqlen"], r["variant"], r["BWD_GLUON"])].append(f"{float(r['bwd_tflops']):.0f}")
for key, v in agg.items():
    print(key, v)
PY
