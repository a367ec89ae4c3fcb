#!/bin/bash
# Device round 2026-12-02 (fourth session), call 2: the Gluon backward with dQ fused (TMA reductions into a float32
# buffer): GPU tests of that mode, then a same-process A/B of tl (default = fused launch / split) against Gluon
# (default = dQ fused / split = Gluon dK/dV + tl dQ).
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD
nvidia-smi --query-gpu=name --format=csv,noheader
# Smoke first (a hang or a wrong dQ stops the round here).
timeout 60 python - <<'PY' || exit 1
import torch
from flash_attention.ops import configs
from flash_attention.ops.backward import attention_backward
from flash_attention.ops.forward import attention_forward
from flash_attention.features import Features
for d, causal in ((128, False), (128, True), (64, False), (64, True)):
    q = torch.randn(2, 1000, 8, d, device="cuda", dtype=torch.bfloat16)
    k, v = (torch.randn(2, 1000, 2, d, device="cuda", dtype=torch.bfloat16) for _ in range(2))
    do = torch.randn_like(q)
    f = Features(softmax_scale=d ** -0.5, causal=causal)
    o, lse = attention_forward(q, k, v, f)
    ref = attention_backward(do, q, k, v, o, lse, f, dq_mode="split")
    configs.BWD_GLUON = True
    got = attention_backward(do, q, k, v, o, lse, f)
    torch.cuda.synchronize()
    configs.BWD_GLUON = False
    print(d, causal, [float((a.float() - b.float()).abs().max()) for a, b in zip(got[:3], ref[:3])], flush=True)
PY
timeout 200 python -m pytest -q -x -p no:cacheprovider tests/st/test_gpu_backward_sm90.py -k fused_dq \
  > $OUT/h200-2026-12-02-gluon-bwd-dq-tests.log 2>&1
echo "bwd dq tests exit $?"; tail -n 25 $OUT/h200-2026-12-02-gluon-bwd-dq-tests.log
timeout 230 python benchmarks/ab_backward.py --switch BWD_GLUON --variants default,split --dtypes bf16 \
  --shapes 128:0:2048,128:1:2048,128:0:8192,128:1:8192,128:1:16384,64:0:8192,64:1:8192 \
  --out $OUT/h200-2026-12-02-gluon-bwd-dq-ab-bf16.csv > $OUT/h200-2026-12-02-gluon-bwd-dq-ab-bf16.log 2>&1
echo "ab exit $?"
python - <<'PY'
import csv, os, collections
p = os.environ["OUT"] + "/h200-2026-12-02-gluon-bwd-dq-ab-bf16.csv"
if os.path.exists(p):
    rows = list(csv.DictReader(open(p)))
    agg = collections.defaultdict(list)
    for r in rows:
        agg[(r["d"], r["causal"], r["seqlen"], r["variant"], r["BWD_GLUON"])].append(r)
    for key, rs in agg.items():
        print(key, " ".join(f"{float(r['bwd_tflops']):.0f}" for r in rs), "cudnn", f"{float(rs[0]['cudnn_bwd_tflops']):.0f}",
              "diff", max(float(r["max_diff_vs_first"]) for r in rs))
PY
tail -n 5 $OUT/h200-2026-12-02-gluon-bwd-dq-ab-bf16.log
