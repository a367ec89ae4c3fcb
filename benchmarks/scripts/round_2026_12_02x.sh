#!/bin/bash
# Prepared in the sixth session of 2026-12-02 for the next session's first device call (not run yet): the GPU tests
# of the persistent forward's two unmeasured options (one program per tile; the dynamic schedule), then their A/B
# on the causal rows (and the no-mask rows for the dynamic schedule), bf16. NOTES entry 31 has the predictions.
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD
nvidia-smi --query-gpu=name --format=csv,noheader
L=h200-next
timeout 150 python -m pytest -q -x tests/st/test_gpu_forward_sm90.py -k "dynamic or one_tile" -p no:cacheprovider > $OUT/$L-persistent-options-tests.log 2>&1
echo "tests exit $?"; tail -3 $OUT/$L-persistent-options-tests.log
timeout 240 python benchmarks/ab_gluon.py --out $OUT/$L-persistent-options-ab-bf16.csv \
  --shapes 128:1:1024,128:1:2048,128:1:4096,128:1:16384,64:1:1024,64:1:2048,64:1:4096,64:1:16384,128:0:1024,128:0:16384,64:0:2048,64:0:16384 \
  --variants "128=128x3o+128x0s+128x0d;64=128x4o+128x0x3t+128x0d+128x0s" > $OUT/$L-persistent-options-ab.log 2>&1
echo "ab exit $?"
python - <<'PY'
import csv, os
for r in csv.DictReader(open(os.environ["OUT"] + "/h200-next-persistent-options-ab-bf16.csv")):
    kind = "d" if r["dynamic"] == "1" else "t" if r["tile_per_program"] == "1" else "s" if r["persistent"] == "1" else "-"
    print(r["d"], r["causal"], r["seqlen"], kind, r["consumers"], "gluon %.0f tl %.0f cudnn %.0f vs_cudnn %.3f diff %s"
          % (float(r["gluon_tflops"]), float(r["tl_tflops"]), float(r["cudnn_tflops"]), float(r["vs_cudnn"]),
             r["max_diff"]))
PY
