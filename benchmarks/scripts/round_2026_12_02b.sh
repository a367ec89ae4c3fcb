#!/bin/bash
# Device round 2026-12-02 (second session), first call: GPU tests of the backward's TMA loads and of the
# non-causal kernels without their dead tail loop; forward A/B (FWD_TMA x tiles) at head_dim 128; backward A/B
# (BWD_TMA); the previous commit's kernels (_old/, untracked) on the same non-causal shapes; host overhead.
export PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name --format=csv,noheader
S="128:0:16384,128:0:1024,64:0:16384"
(cd _old && PYTHONPATH=$PWD timeout 80 python ab_forward.py --out $OUT/old-fwd.csv --shapes $S \
  --tiles "128=128x128x8x3;64=128x64x4x3" > $OUT/old-fwd.log 2>&1; echo "old fwd exit $?")
(cd _old && PYTHONPATH=$PWD timeout 80 python ab_backward.py --out $OUT/old-bwd.csv --shapes $S \
  --variants split,fused > $OUT/old-bwd.log 2>&1; echo "old bwd exit $?")
export PYTHONPATH=$PWD
timeout 150 python -m pytest -q -x tests/ut/test_kernels.py -k "tma or dq_mode" -p no:cacheprovider \
  > $OUT/tests-tma.log 2>&1; echo "tests exit $?"; tail -2 $OUT/tests-tma.log
timeout 40 python benchmarks/host_overhead.py --profile $OUT/host-profile.txt > $OUT/host.log 2>&1; cat $OUT/host.log
timeout 160 python benchmarks/ab_forward.py --out $OUT/fwd-ab.csv --switch FWD_TMA --shapes $S,128:1:16384 \
  --tiles "128=128x128x8x3+128x64x4x2+128x64x4x3+256x64x8x2+256x64x8x3;64=128x64x4x3" > $OUT/fwd-ab.log 2>&1
echo "fwd ab exit $?"
timeout 200 python benchmarks/ab_backward.py --out $OUT/bwd-ab.csv --switch BWD_TMA --variants split,fused \
  --shapes $S,128:1:16384,128:1:1024,64:1:16384 > $OUT/bwd-ab.log 2>&1; echo "bwd ab exit $?"
python - <<'PY'
import csv, os
for name in ("old-fwd", "fwd-ab", "old-bwd", "bwd-ab"):
    path = os.path.join(os.environ["OUT"], name + ".csv")
    if not os.path.exists(path):
        print(name, "missing"); continue
    print("==", name)
    for r in csv.DictReader(open(path)):
        keys = [k for k in ("dtype", "d", "causal", "seqlen", "variant", "FWD_TMA", "BWD_TMA", "cfg", "rep") if k in r]
        val = r.get("fwd_tflops") or r.get("bwd_tflops")
        print(" ".join(f"{k}={r[k]}" for k in keys).replace("KernelConfig", ""), f"tflops={float(val):.0f}",
              f"vs_cudnn={float(r['vs_cudnn']):.3f}" if r.get("vs_cudnn") else "")
PY
