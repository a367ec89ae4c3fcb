#!/bin/bash
# Device round 2026-12-02 (seventh session), call 2: GPU tests of the new forward policy (head_dim 64 persistent with
# the dynamic schedule, causal included; head_dim 128 causal persistent up to 2K keys) and of the backward's dQ over
# each consumer's own keys (configs.GLUON_DQ_OWN_KEYS); A/B of the forward rows the policy extrapolates to; A/B of
# the own-keys dQ; the fp16 head_dim-128 causal S=64K backward timed twice in one process (entry 30's drift).
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD
nvidia-smi --query-gpu=name --format=csv,noheader
L=h200-2026-12-02y
smi() { nvidia-smi --query-gpu=clocks.sm,clocks.mem,temperature.gpu,power.draw,clocks_throttle_reasons.active --format=csv,noheader; }
timeout 100 python -m pytest -q -x -p no:cacheprovider tests/st/test_gpu_forward_sm90.py -k "default_forms or persistent_forward_many or dynamic" > $OUT/$L-fwd-policy-tests.log 2>&1
echo "fwd tests exit $?"; tail -2 $OUT/$L-fwd-policy-tests.log
timeout 80 python -m pytest -q -x -p no:cacheprovider tests/st/test_gpu_backward_sm90.py -k own_keys > $OUT/$L-dq-own-keys-tests.log 2>&1
echo "own-keys tests exit $?"; tail -2 $OUT/$L-dq-own-keys-tests.log
timeout 100 python benchmarks/ab_backward.py --switch GLUON_DQ_OWN_KEYS --variants default --dtypes bf16 \
  --shapes 128:0:2048,128:0:8192,128:1:8192,128:1:16384,64:0:2048,64:0:8192,64:1:8192 \
  --out $OUT/$L-dq-own-keys-ab-bf16.csv > $OUT/$L-dq-own-keys-ab-bf16.log 2>&1
echo "own-keys ab exit $?"
python - $OUT/$L-dq-own-keys-ab-bf16.csv <<'PY'
import csv, sys, collections
agg = collections.defaultdict(list)
for r in csv.DictReader(open(sys.argv[1])):
    agg[(r["d"], r["causal"], r["seqlen"], r["GLUON_DQ_OWN_KEYS"])].append(r)
for key, rs in agg.items():
    print(key, " ".join(f"{float(r['bwd_tflops']):.0f}" for r in rs), "cudnn", f"{float(rs[0]['cudnn_bwd_tflops']):.0f}",
          "diff", max(float(r["max_diff_vs_first"]) for r in rs))
PY
timeout 90 python benchmarks/ab_gluon.py --out $OUT/$L-fwd-policy-ab-bf16.csv \
  --shapes 64:1:4096,64:1:8192,64:0:1024,64:0:4096,64:0:8192,128:1:4096,128:1:8192 \
  --variants "128=128x3o+128x0s;64=128x4o+128x0d+128x0s" > $OUT/$L-fwd-policy-ab.log 2>&1
echo "fwd ab exit $?"
python - $OUT/$L-fwd-policy-ab-bf16.csv <<'PY'
import csv, sys
for r in csv.DictReader(open(sys.argv[1])):
    kind = "d" if r["dynamic"] == "1" else "s" if r["persistent"] == "1" else "-"
    print(r["d"], r["causal"], r["seqlen"], kind, "gluon %.0f tl %.0f cudnn %.0f fa2 %.0f diff %s"
          % (float(r["gluon_tflops"]), float(r["tl_tflops"]), float(r["cudnn_tflops"]), float(r["fa2_tflops"]),
             r["max_diff"]))
PY
smi
for rep in 1 2; do
  timeout 60 python -m flash_attention.bench --long-only --dtypes fp16 --head-dims 128 --causal yes --impls ours,sdpa_cudnn \
    --no-check --out $OUT/$L-bwd-drift-fp16-64k-$rep.csv > $OUT/$L-bwd-drift-fp16-64k-$rep.log 2>&1
  echo "drift $rep exit $?"; smi
  python benchmarks/make_table.py $OUT/$L-bwd-drift-fp16-64k-$rep.csv 2>&1 | grep "^| .f16" | head -3
done
