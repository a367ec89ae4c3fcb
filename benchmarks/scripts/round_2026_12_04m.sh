#!/bin/bash
# Prepared in the seventeenth session (2026-12-04) after its device time was spent (~250 s),
# run in the eighteenth session as round 2026-12-04m (prepared as 05a). NOTES entry 87.
# 1. The noisy bf16 head_dim-64 causal 1K forward (tl kernel; 177-194 TFLOPS in four full runs, 310-327 elsewhere):
#    the full benchmark's own head_dim-64 1K-2K rows (both masks, in the run's order) in three fresh processes (the flake's context), then the tl
#    kernel against the two-consumer Gluon form in three fresh ab_gluon processes, to see which reads steadier.
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD
L=h200-2026-12-04m
R=$OUT/$L; mkdir -p $R
nvidia-smi --query-gpu=name,clocks.sm,temperature.gpu --format=csv,noheader
for i in 1 2 3; do
  timeout 100 python -m flash_attention.bench --dtypes bf16 --head-dims 64 --seqlens 1024,2048 --causal both --no-long \
    --no-check --impls ours,sdpa_cudnn --out $R/$L-d64-causal-bench-$i.csv > $R/$L-d64-causal-bench-$i.log 2>&1
  echo "bench $i exit $?"; grep -h "bf16,.*,1024,1024,64,true,\(ours\|sdpa_cudnn\)" $R/$L-d64-causal-bench-$i.csv | cut -d, -f12,15-17
done
for i in 1 2 3; do
  (cd benchmarks && timeout 60 python ab_gluon.py --dtypes bf16 --shapes 64:1:1024,64:1:2048 --variants "64=128x0x2s" \
    --out $R/$L-d64-causal-1k-ab-$i.csv > $R/$L-d64-causal-1k-ab-$i.log 2>&1)
  echo "ab $i exit $?"; python benchmarks/ab_gluon.py --summarize $R/$L-d64-causal-1k-ab-$i.csv
done
cd $OUT && tar czf $L.tgz $L && rm -rf $L
