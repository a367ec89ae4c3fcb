#!/bin/bash
# Device round 2026-12-02 (fourth session), call 3: the Gluon backward after the register work (products start
# from -lse2/qk_scale and -delta, masked tiles in their own loop): smoke, GPU tests, same-process A/B.
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD
nvidia-smi --query-gpu=name --format=csv,noheader
sed -n '/^# Smoke first/,/^PY$/p' benchmarks/scripts/round_2026_12_02l.sh > /tmp/smoke.sh
bash /tmp/smoke.sh || exit 1
timeout 110 python -m pytest -q -x -p no:cacheprovider tests/st/test_gpu_backward_sm90.py \
  -k "gqa or (fused_dq and (1000 or 2049 or 63 or 4096))" > $OUT/h200-2026-12-02-gluon-bwd-tests-b.log 2>&1
echo "bwd tests exit $?"; tail -n 4 $OUT/h200-2026-12-02-gluon-bwd-tests-b.log
summ() {
python - "$1" <<'PY'
import csv, sys, collections
rows = list(csv.DictReader(open(sys.argv[1])))
agg = collections.defaultdict(list)
for r in rows:
    agg[(r["dtype"], r["d"], r["causal"], r["seqlen"], r["variant"], r["BWD_GLUON"])].append(r)
for key, rs in agg.items():
    print(key, " ".join(f"{float(r['bwd_tflops']):.0f}" for r in rs), "cudnn", f"{float(rs[0]['cudnn_bwd_tflops']):.0f}",
          "diff", max(float(r["max_diff_vs_first"]) for r in rs))
PY
}
timeout 170 python benchmarks/ab_backward.py --switch BWD_GLUON --variants default,split --dtypes bf16 \
  --shapes 128:1:2048,128:1:8192,128:1:16384,128:0:4096,64:0:2048,64:1:2048 \
  --out $OUT/h200-2026-12-02-gluon-bwd-dq-ab-bf16-b.csv > $OUT/h200-2026-12-02-gluon-bwd-dq-ab-bf16-b.log 2>&1
echo "ab bf16 exit $?"; summ $OUT/h200-2026-12-02-gluon-bwd-dq-ab-bf16-b.csv
timeout 70 python benchmarks/ab_backward.py --switch BWD_GLUON --variants default --dtypes fp16 \
  --shapes 128:1:8192,128:0:8192,64:1:8192 \
  --out $OUT/h200-2026-12-02-gluon-bwd-dq-ab-fp16.csv > $OUT/h200-2026-12-02-gluon-bwd-dq-ab-fp16.log 2>&1
echo "ab fp16 exit $?"; summ $OUT/h200-2026-12-02-gluon-bwd-dq-ab-fp16.csv
