#!/bin/bash
# Eighteenth session (2026-12-04): round q's Nsight Compute put 1.5M shared-store bank conflicts (70% of the
# shared-store wavefronts; cuDNN 0.1-0.4M) on the two-consumer head_dim-64 forward, whose output goes through the
# K tile (stmatrix into the 128-byte swizzle). Its register store instead (GLUON_PERSISTENT_OUT_SMEM off/on, same
# process, where two consumers run: 1K without a mask, causal 2K-4K), then a second features run of the final
# dropout policy (round o's moved 2-5% between processes).
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD
L=h200-2026-12-04r
R=$OUT/$L; mkdir -p $R
(cd benchmarks && timeout 130 python ab_forward.py --switch GLUON_PERSISTENT_OUT_SMEM --tiles default \
  --dtypes bf16,fp16 --shapes 64:0:1024,64:1:2048,64:1:4096 --out $R/$L-d64-out-smem-ab.csv > $R/$L-d64-out-smem-ab.log 2>&1)
echo "out smem exit $?"; cut -d, -f1-4,8,11,12 $R/$L-d64-out-smem-ab.csv
timeout 170 python -m flash_attention.bench_features --quick --out $R/$L-features.csv > $R/$L-features.log 2>&1
echo "features exit $?"; cut -d, -f5,12,15-20 $R/$L-features.csv | head -14
cd $OUT && tar czf $L.tgz $L && rm -rf $L
