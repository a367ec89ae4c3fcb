#!/bin/bash
# (host_overhead.py had a --triton-launch flag then, for the cached-launcher experiment, since reverted.)
# Device round 2026-12-02 (second session), second call: GPU tests of the cached-launcher path (every kernel:
# forward, backward modes, decode, append, varlen) and the backward's TMA loads; host time per call with and
# without the cached launchers; forward tiles for non-causal head_dim 128 across lengths and for head_dim 64;
# the S=1K benchmark rows (host-bound) through the new host path.
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD
nvidia-smi --query-gpu=name --format=csv,noheader
timeout 230 python -m pytest -q -x -n 8 -p no:cacheprovider tests/ut/test_kernels.py -k "tma" \
  tests/st/test_gpu.py tests/st/test_gpu_features.py tests/st/test_gpu_kvcache.py tests/st/test_gpu_varlen.py \
  > $OUT/tests.log 2>&1; echo "tests exit $?"; tail -n 4 $OUT/tests.log
for flag in "" "--triton-launch"; do
  timeout 40 python benchmarks/host_overhead.py $flag 2>&1 | tail -n 9
done
timeout 60 python benchmarks/host_overhead.py --batch 16 --seqlen 1024 --heads 16 2>&1 | tail -n 9
timeout 150 python benchmarks/ab_forward.py --out $OUT/fwd-ab2.csv --switch FWD_TMA --dtypes bf16 \
  --shapes 128:0:2048,128:0:8192,64:0:16384,64:0:1024,64:1:16384 \
  --tiles "128=128x128x8x3+256x64x8x3+128x64x4x2;64=128x64x4x3+256x64x8x3+128x128x8x3" > $OUT/fwd-ab2.log 2>&1
echo "fwd ab exit $?"
timeout 100 python -m flash_attention.bench --seqlens 1024 --head-dims 128 --no-long --no-check \
  --out $OUT/bench-1k.csv > $OUT/bench-1k.log 2>&1; echo "bench exit $?"
python benchmarks/make_table.py $OUT/bench-1k.csv 2>&1 | tail -n 6
python - <<'PY'
import csv, os
path = os.path.join(os.environ["OUT"], "fwd-ab2.csv")
for r in csv.DictReader(open(path)):
    print(r["dtype"], r["d"], r["causal"], r["seqlen"], "TMA" if r["FWD_TMA"] == "True" else "ptr",
          r["cfg"].replace("KernelConfig", ""), f"{float(r['fwd_tflops']):.0f}", f"{float(r['vs_cudnn']):.3f}")
PY
