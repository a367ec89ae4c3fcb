#!/bin/bash
# Device round 2026-12-02 (third session), call 5: the fp16 benchmark (head_dim 128 and 64, 1K-16K) with the
# Gluon forward on by default; then the bf16 head_dim-128 S=1K/2K rows again in their own process (in call 4 the
# S=1K forward, the first row timed, read 265 TFLOPS against 512-538 in the A/B calls), and the host time per call.
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD
nvidia-smi --query-gpu=name --format=csv,noheader
timeout 200 python -m flash_attention.bench --dtypes fp16 --head-dims 128 --no-long \
  --out $OUT/h200-2026-12-02-gluon-fp16-d128.csv > $OUT/h200-2026-12-02-gluon-fp16-d128.log 2>&1
echo "bench fp16 d128 exit $?"
timeout 165 python -m flash_attention.bench --dtypes fp16 --head-dims 64 --no-long --no-check \
  --out $OUT/h200-2026-12-02-gluon-fp16-d64.csv > $OUT/h200-2026-12-02-gluon-fp16-d64.log 2>&1
echo "bench fp16 d64 exit $?"
timeout 60 python -m flash_attention.bench --dtypes bf16 --head-dims 128 --seqlens 1024,2048 --no-long --no-check \
  --out $OUT/h200-2026-12-02-gluon-bf16-d128-short.csv > $OUT/h200-2026-12-02-gluon-bf16-d128-short.log 2>&1
echo "bench bf16 short exit $?"
timeout 40 python benchmarks/host_overhead.py --causal 0 > $OUT/h200-2026-12-02-gluon-host-overhead.log 2>&1
echo "host exit $?"; tail -6 $OUT/h200-2026-12-02-gluon-host-overhead.log
for f in $OUT/h200-2026-12-02-gluon-fp16-d128.csv $OUT/h200-2026-12-02-gluon-fp16-d64.csv $OUT/h200-2026-12-02-gluon-bf16-d128-short.csv; do
  [ -f $f ] && python benchmarks/make_table.py $f 2>&1 | grep "^| .f16"
done
grep -c PASS $OUT/h200-2026-12-02-gluon-fp16-d128.log; grep FAIL $OUT/h200-2026-12-02-gluon-fp16-d128.log | head -3
