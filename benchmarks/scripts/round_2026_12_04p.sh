#!/bin/bash
# Eighteenth session (2026-12-04): wide Philox multiplies in the Gluon backward (configs.GLUON_BWD_PHILOX_WIDE,
# prepared this session: compiled for sm_90 the head_dim-128 dK/dV kernel with dropout drops 3040 -> 2936 SASS
# instructions, spills unchanged). GPU tests first (bit-equal gradients off/on, both dQ modes; the dropout forms of
# round o's policy), then the A/B (bf16, 8K keys, p = 0.1, both head_dims, causal or not), then the features run with
# the switch on (kept only if the tests and the A/B say so).
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD
L=h200-2026-12-04p
R=$OUT/$L; mkdir -p $R
nvidia-smi --query-gpu=name,clocks.sm,temperature.gpu --format=csv,noheader
timeout 180 python -m pytest -q -p no:cacheprovider tests/st/test_gpu_backward_sm90.py tests/st/test_gpu_forward_sm90.py \
  -k "bwd_dropout or default_forms_dropout" > $R/$L-tests.log 2>&1
echo "tests exit $?"; tail -3 $R/$L-tests.log
S=128:0:8192:-1:0:1:0:10,128:1:8192:-1:0:1:0:10,64:0:8192:-1:0:1:0:10,64:1:8192:-1:0:1:0:10
(cd benchmarks && timeout 120 python ab_backward.py --switch GLUON_BWD_PHILOX_WIDE --variants default --dtypes bf16 \
  --shapes $S --out $R/$L-bwd-philox-wide-ab.csv > $R/$L-bwd-philox-wide-ab.log 2>&1)
echo "bwd wide exit $?"; cut -d, -f1-4,8- $R/$L-bwd-philox-wide-ab.csv | cut -c1-150
timeout 170 python - --quick --out $R/$L-features.csv > $R/$L-features.log 2>&1 <<'PY'
import runpy
from flash_attention.ops import configs
configs.GLUON_BWD_PHILOX_WIDE = True  # the switch under test (configs is read at each call)
runpy.run_module("flash_attention.bench_features", run_name="__main__", alter_sys=True)
PY
echo "features exit $?"; cut -d, -f5,12,15-20 $R/$L-features.csv | head -12
cd $OUT && tar czf $L.tgz $L && rm -rf $L
