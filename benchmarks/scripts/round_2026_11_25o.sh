#!/bin/bash
# Device round: delta/lse2 computed by the dQ kernel (no preprocessing kernel), checked on the GPU and
# diagnosed beside FlexAttention; then tile sweeps for head_dim-128 causal at short sequences (1K, 2K), where
# the 8K-tuned tiles lose most to cuDNN and FlexAttention.
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
timeout 120 python -m pytest -q -n 6 --tb=short -W ignore -p no:cacheprovider tests/st/test_gpu.py \
  -k "seqlens or gqa or api_autograd or deterministic or float32" > $OUT/st.log 2>&1
echo "st exit $?"; tail -2 $OUT/st.log
timeout 150 python benchmarks/diagnose.py --impls ours,flex --shapes 128:1:1024,128:1:2048,128:0:1024,128:1:8192 \
  --out $OUT/diag.csv > $OUT/diag.log 2>&1
echo "diag exit $?"
for s in 1024 2048; do
  timeout 150 python benchmarks/sweep_configs.py --seqlen $s --head-dims 128 --causal yes \
    --out $OUT/sweep-d128-causal-s$s.csv > $OUT/sweep-d128-causal-s$s.log 2>&1
  echo "sweep $s exit $?"; grep BEST $OUT/sweep-d128-causal-s$s.log
done
python - <<'PY'
import csv, os
for r in csv.DictReader(open(os.environ["OUT"] + "/diag.csv")):
    print(r["d"], r["causal"], r["seqlen"], r["impl"], "fwd %.0f bwd %.0f" % (float(r["fwd_tflops"]), float(r["bwd_tflops"])),
          "fb %.3f graph %s" % (float(r["fwd_bwd_ms"]), r["graph_fwd_bwd_ms"][:5]), "bwd_only %s" % r.get("bwd_only_tflops", "")[:5])
    print("    ", r["kernels"][:200])
for s in (1024, 2048):
    for r in csv.DictReader(open(os.environ["OUT"] + f"/sweep-d128-causal-s{s}.csv")):
        print(s, r["kind"], r["cfg"].replace("KernelConfig", ""), r["fwd_tflops"][:5], r["bwd_tflops"][:5])
PY
