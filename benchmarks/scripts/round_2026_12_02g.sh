#!/bin/bash
# Device round 2026-12-02 (third session), call 2: the Gluon forward with Q halves reused as output tiles (three
# K/V stages fit at head_dim 128) and the overlapped loop form: GPU tests, then A/B in bf16 and fp16.
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD
nvidia-smi --query-gpu=name --format=csv,noheader
timeout 280 python -m pytest -x -q tests/st/test_gpu_forward_sm90.py > $OUT/h200-2026-12-02-gluon-fwd-tests-b.log 2>&1
echo "tests exit $?"; tail -5 $OUT/h200-2026-12-02-gluon-fwd-tests-b.log
timeout 200 python benchmarks/ab_gluon.py --out $OUT/h200-2026-12-02-gluon-fwd-ab-bf16-b.csv \
  > $OUT/h200-2026-12-02-gluon-fwd-ab-bf16-b.log 2>&1
echo "ab bf16 exit $?"
timeout 100 python benchmarks/ab_gluon.py --dtypes fp16 --shapes 128:0:1024,128:0:16384,128:1:1024,128:1:16384 \
  --variants "128=128x3+128x3o;64=128x4" --out $OUT/h200-2026-12-02-gluon-fwd-ab-fp16-b.csv \
  > $OUT/h200-2026-12-02-gluon-fwd-ab-fp16-b.log 2>&1
echo "ab fp16 exit $?"
python - <<'PY'
import csv, glob, os
for p in sorted(glob.glob(os.environ["OUT"] + "/*ab*-b.csv")):
    for r in csv.DictReader(open(p)):
        print(r["dtype"], r["d"], r["causal"], r["seqlen"], f"{r['block_n']}x{r['stages']}{'o' if r['overlap']=='1' else ''}",
              "gluon", round(float(r["gluon_tflops"])), "tl", round(float(r["tl_tflops"])),
              "cudnn", round(float(r["cudnn_tflops"])), "fa2", round(float(r["fa2_tflops"])), "diff", r["max_diff"])
PY
