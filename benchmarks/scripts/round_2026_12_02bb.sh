#!/bin/bash
# Prepared in the seventh session of 2026-12-02 for the next device call (not run yet): windows and ALiBi in the
# Gluon backward (configs.GLUON_BWD_BANDS) and ALiBi's split form in the Gluon forward (configs.GLUON_ALIBI_SPLIT),
# both off until this passes: their GPU tests, then the features benchmark with both on, to set against
# results/h200-2026-12-02-bands-features.csv (both off; the forward's ALiBi rows show the split form, the backward's
# window/ALiBi rows the Gluon backward). NOTES entry 38 has the predictions.
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD
nvidia-smi --query-gpu=name --format=csv,noheader
L=h200-next-bands-b
timeout 150 python -m pytest -q -x -p no:cacheprovider tests/st/test_gpu_backward_sm90.py -k window_alibi > $OUT/$L-bwd-tests.log 2>&1
echo "bwd tests exit $?"; tail -3 $OUT/$L-bwd-tests.log | cut -c1-400
timeout 90 python -m pytest -q -x -p no:cacheprovider tests/st/test_gpu_forward_sm90.py -k alibi_split > $OUT/$L-alibi-split-tests.log 2>&1
echo "alibi split tests exit $?"; tail -3 $OUT/$L-alibi-split-tests.log | cut -c1-400
timeout 90 python benchmarks/ab_backward.py --switch GLUON_BWD_BANDS --variants default --dtypes bf16 \
  --shapes 128:1:8192:2048,128:0:8192:2048,64:1:8192:2048,128:1:16384:4096 \
  --out $OUT/$L-bwd-window-ab-bf16.csv > $OUT/$L-bwd-window-ab-bf16.log 2>&1
echo "bwd window ab exit $?"; grep -o "'d': [0-9]*, 'causal': [0-9], 'seqlen': [0-9]*, 'window': [0-9]*, 'variant': 'default', 'GLUON_BWD_BANDS': [a-zA-Z]*, 'rep': [0-9], 'ms': [0-9.]*, 'bwd_tflops': [0-9.]*" $OUT/$L-bwd-window-ab-bf16.log
timeout 150 python - --quick --out $OUT/$L-features.csv > $OUT/$L-features.log 2>&1 <<'PY'
import runpy, sys
from flash_attention.ops import configs
configs.GLUON_BWD_BANDS = True
configs.GLUON_ALIBI_SPLIT = True
sys.argv = ["bench_features"] + sys.argv[1:]
runpy.run_module("flash_attention.bench_features", run_name="__main__")
PY
echo "features exit $?"; grep -A25 "^name" $OUT/$L-features.log
