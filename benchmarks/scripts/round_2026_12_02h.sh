#!/bin/bash
# Device round 2026-12-02 (third session), call 3: the consumers' turn-taking (pingpong) beside the overlapped loop,
# and the head_dim-64 lengths between 1K and 16K, to set the defaults; the tile/loop-form GPU tests first.
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD
nvidia-smi --query-gpu=name --format=csv,noheader
timeout 150 python -m pytest -x -q tests/st/test_gpu_forward_sm90.py -k "tiles or declines" \
  > $OUT/h200-2026-12-02-gluon-fwd-tests-c.log 2>&1
echo "tests exit $?"; tail -3 $OUT/h200-2026-12-02-gluon-fwd-tests-c.log
timeout 330 python benchmarks/ab_gluon.py --out $OUT/h200-2026-12-02-gluon-fwd-ab-bf16-c.csv \
  --shapes 128:0:1024,128:0:4096,128:0:16384,128:1:1024,128:1:4096,128:1:16384,64:0:2048,64:0:4096,64:0:8192,64:1:2048,64:1:4096,64:1:8192,64:1:16384 \
  > $OUT/h200-2026-12-02-gluon-fwd-ab-bf16-c.log 2>&1
echo "ab bf16 exit $?"
python - <<'PY'
import csv, glob, os
for p in sorted(glob.glob(os.environ["OUT"] + "/*ab*-c.csv")):
    for r in csv.DictReader(open(p)):
        tag = f"{r['block_n']}x{r['stages']}{'o' if r['overlap']=='1' else ''}{'p' if r['pingpong']=='1' else ''}"
        print(r["dtype"], r["d"], r["causal"], r["seqlen"], tag, "gluon", round(float(r["gluon_tflops"])),
              "tl", round(float(r["tl_tflops"])), "cudnn", round(float(r["cudnn_tflops"])),
              "fa2", round(float(r["fa2_tflops"])), "diff", r["max_diff"])
PY
