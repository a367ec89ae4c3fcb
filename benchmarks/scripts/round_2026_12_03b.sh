#!/bin/bash
# Ninth session (2026-12-03), second call: where the window/ALiBi/GQA slowdowns go, kernel by kernel (plain beside
# each feature), with the policy's defaults, the fused dQ forced on (windows and ALiBi at head_dim 128 take the
# split dQ by default) and ALiBi's split form forced on.
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD
nvidia-smi --query-gpu=name --format=csv,noheader
L=h200-2026-12-03b
for d in 128 64; do
  timeout 200 python benchmarks/diagnose_features.py --head-dim $d --seqlen 8192 \
    --variants "fused_dq:BWD_GLUON_DQ=1,alibi_split:GLUON_ALIBI_SPLIT=1" \
    --out $OUT/$L-diag-features-d$d.csv > $OUT/$L-diag-features-d$d.log 2>&1
  echo "diag d$d exit $?"
  python - $OUT/$L-diag-features-d$d.csv <<'PY'
import csv, sys
for r in csv.DictReader(open(sys.argv[1])):
    print(r["name"], r["causal"], r["variant"], "fwd %.0f bwd %.0f" % (float(r["fwd_tflops"]), float(r["bwd_tflops"])),
          "| F:", r["fwd_kernels"][:150], "| B:", r["bwd_kernels"][:300])
PY
done
