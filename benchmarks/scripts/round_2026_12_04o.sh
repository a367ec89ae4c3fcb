#!/bin/bash
# Eighteenth session (2026-12-04): the dropout policy of round l (wide Philox multiplies everywhere, the pair form at
# head_dim 64) through the GPU tests against the float64 reference (the default forms, both Gluon forms, the
# backward redrawing the pattern), then dropout with windows one tile / persistent (round n's second part, now with
# the new dropout forms), then the features run (dropout's slowdown over plain attention).
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD
L=h200-2026-12-04o
R=$OUT/$L; mkdir -p $R
nvidia-smi --query-gpu=name,clocks.sm,temperature.gpu --format=csv,noheader
timeout 150 python -m pytest -q -p no:cacheprovider tests/st/test_gpu_forward_sm90.py \
  -k "(test_gluon_forward_dropout and not early and not pairs_wide) or default_forms_dropout" > $R/$L-tests.log 2>&1
echo "tests exit $?"; tail -3 $R/$L-tests.log
(cd benchmarks && timeout 100 python ab_forward.py --switch FWD_GLUON_PERSISTENT --tiles default --dtypes bf16 \
  --shapes 128:1:8192:2048:0:1:0:10,64:0:8192:2048:0:1:2048:10 --out $R/$L-dropout-window-persistent-ab.csv \
  > $R/$L-dropout-window-persistent-ab.log 2>&1)
echo "dropout windows exit $?"; cut -d, -f1-5,7,8,11,12 $R/$L-dropout-window-persistent-ab.csv
timeout 170 python -m flash_attention.bench_features --quick --out $R/$L-features.csv > $R/$L-features.log 2>&1
echo "features exit $?"; cat $R/$L-features.csv | cut -c1-150
cd $OUT && tar czf $L.tgz $L && rm -rf $L
