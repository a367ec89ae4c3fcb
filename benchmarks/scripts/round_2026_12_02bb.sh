#!/bin/bash
# Prepared in the seventh session of 2026-12-02 for the next device call (not run yet): windows and ALiBi in the
# Gluon backward (configs.GLUON_BWD_BANDS, off until this passes): GPU tests in both dQ modes, then the features
# benchmark with the switch on (to set against results/h200-2026-12-02-bands-features.csv, the switch off).
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD
nvidia-smi --query-gpu=name --format=csv,noheader
L=h200-next-bwd-bands
timeout 150 python -m pytest -q -x -p no:cacheprovider tests/st/test_gpu_backward_sm90.py -k window_alibi > $OUT/$L-tests.log 2>&1
echo "tests exit $?"; tail -3 $OUT/$L-tests.log | cut -c1-400
timeout 150 python - --quick --out $OUT/$L-features.csv > $OUT/$L-features.log 2>&1 <<'PY'
import runpy, sys
from flash_attention.ops import configs
configs.GLUON_BWD_BANDS = True
sys.argv = ["bench_features"] + sys.argv[1:]
runpy.run_module("flash_attention.bench_features", run_name="__main__")
PY
echo "features exit $?"; grep -A25 "^name" $OUT/$L-features.log
