#!/bin/bash
# Device round 2026-12-02 (sixth session), call 1: the persistent Gluon forward (tests, then an A/B against the
# one-tile-per-program form, the tl kernel and the anchors), and the GPU tests left from the fifth session (plans
# after the role-helper refactor, the backward's default path and deterministic mode).
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD
nvidia-smi --query-gpu=name --format=csv,noheader
L=h200-2026-12-02
timeout 170 python -m pytest -q -x tests/st/test_gpu_forward_sm90.py -k "persistent" -p no:cacheprovider > $OUT/$L-persistent-tests.log 2>&1
echo "persistent tests exit $?"; tail -3 $OUT/$L-persistent-tests.log
timeout 210 python benchmarks/ab_gluon.py --out $OUT/$L-persistent-ab-bf16.csv \
  --shapes 128:0:1024,128:0:2048,128:0:4096,128:0:16384,128:1:1024,128:1:2048,128:1:4096,128:1:16384,64:0:1024,64:0:2048,64:0:4096,64:0:16384,64:1:1024,64:1:2048,64:1:4096,64:1:16384 \
  --variants "128=128x3o+128x0s;64=128x4o+128x0s+128x0x2s" > $OUT/$L-persistent-ab.log 2>&1
echo "ab exit $?"
python - <<'PY'
import csv, os
rows = list(csv.DictReader(open(os.environ["OUT"] + "/h200-2026-12-02-persistent-ab-bf16.csv")))
for r in rows:
    print(r["d"], r["causal"], r["seqlen"], "s" if r["persistent"] == "1" else "-", r["consumers"],
          "gluon %.0f tl %.0f cudnn %.0f fa2 %.0f vs_cudnn %.3f diff %s" % (float(r["gluon_tflops"]),
          float(r["tl_tflops"]), float(r["cudnn_tflops"]), float(r["fa2_tflops"]), float(r["vs_cudnn"]), r["max_diff"]))
PY
timeout 90 python -m pytest -q tests/st/test_gpu_plans.py -p no:cacheprovider > $OUT/$L-plans-tests-c.log 2>&1
echo "plans tests exit $?"; tail -2 $OUT/$L-plans-tests-c.log
timeout 60 python -m pytest -q tests/st/test_gpu_backward_sm90.py -k default_path -p no:cacheprovider > $OUT/$L-bwd-default-path.log 2>&1
echo "default path exit $?"; tail -2 $OUT/$L-bwd-default-path.log
