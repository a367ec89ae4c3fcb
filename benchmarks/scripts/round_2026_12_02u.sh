#!/bin/bash
# Device round 2026-12-02 (sixth session), call 2: the persistent Gluon forward with odd rounds run backwards under
# a causal mask (call 1 gave every program the same tile size each round there): its GPU tests, the A/B again, and
# the backward's default-path test (its count now allows for launch plans).
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD
nvidia-smi --query-gpu=name --format=csv,noheader
L=h200-2026-12-02
timeout 130 python benchmarks/ab_gluon.py --out $OUT/$L-persistent-ab-bf16-b.csv \
  --shapes 128:1:1024,128:1:2048,128:1:4096,128:1:16384,64:1:1024,64:1:2048,64:1:4096,64:1:16384,128:0:1024,128:0:2048,64:0:1024,64:0:2048 \
  --variants "128=128x3o+128x0s;64=128x4o+128x0s+128x0x2s" > $OUT/$L-persistent-ab-b.log 2>&1
echo "ab exit $?"
python - <<'PY'
import csv, os
rows = list(csv.DictReader(open(os.environ["OUT"] + "/h200-2026-12-02-persistent-ab-bf16-b.csv")))
for r in rows:
    print(r["d"], r["causal"], r["seqlen"], "s" if r["persistent"] == "1" else "-", r["consumers"],
          "gluon %.0f tl %.0f cudnn %.0f fa2 %.0f vs_cudnn %.3f diff %s" % (float(r["gluon_tflops"]),
          float(r["tl_tflops"]), float(r["cudnn_tflops"]), float(r["fa2_tflops"]), float(r["vs_cudnn"]), r["max_diff"]))
PY
timeout 200 python -m pytest -q -x tests/st/test_gpu_forward_sm90.py -k "persistent" -p no:cacheprovider > $OUT/$L-persistent-tests-b.log 2>&1
echo "persistent tests exit $?"; tail -3 $OUT/$L-persistent-tests-b.log
timeout 60 python -m pytest -q tests/st/test_gpu_backward_sm90.py -k default_path -p no:cacheprovider > $OUT/$L-bwd-default-path-b.log 2>&1
echo "default path exit $?"; tail -2 $OUT/$L-bwd-default-path-b.log
