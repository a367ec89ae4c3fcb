#!/bin/bash
# Twelfth session (2026-12-03), third call: configs.backward_staged_rows (lse2/delta staged by the producer, except
# head_dim-128 causal with dQ fused). A/B of the switch on the feature kernels (ALiBi, window, dropout) and on the
# long causal row, the dQ mode under staging for ALiBi and dropout, then GPU tests of the masked/dropout paths.
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD
L=h200-2026-12-03p
R=$OUT/$L; mkdir -p $R
nvidia-smi --query-gpu=name,clocks.sm,temperature.gpu --format=csv,noheader
show() { python - "$1" <<'PY'
import csv, sys
for r in csv.DictReader(open(sys.argv[1])):
    print(r["d"], r["causal"], r["seqlen"], "w" + r["window"], "a" + r["alibi"], "p" + r["dropout"], r["variant"],
          r.get("GLUON_BWD_STAGED_ROWS", "-"), r["rep"], "%.3f ms %.0f TF cudnn %s" % (float(r["ms"]), float(r["bwd_tflops"]), r["cudnn_bwd_tflops"][:5]))
PY
}
cd benchmarks
timeout 200 python ab_backward.py --switch GLUON_BWD_STAGED_ROWS --variants default --shapes 128:1:16384,128:0:8192:-1:1,128:0:8192:2048,128:1:8192:2048,128:0:8192:-1:0:1:0:10,128:1:8192:-1:0:1:0:10,64:0:8192:-1:0:1:0:10 --out $R/$L-staged-features-ab-bf16.csv > $R/$L-staged-features-ab-bf16.log 2>&1
echo "ab1 exit $?"; show $R/$L-staged-features-ab-bf16.csv
timeout 100 python ab_backward.py --variants split,tma --shapes 128:0:8192:-1:1,128:1:8192:-1:0:1:0:10 --out $R/$L-staged-dq-modes-ab-bf16.csv > $R/$L-staged-dq-modes-ab-bf16.log 2>&1
echo "ab2 exit $?"; show $R/$L-staged-dq-modes-ab-bf16.csv
cd ..
timeout 170 python -m pytest -v -x -p no:cacheprovider -rA tests/st/test_gpu_backward_sm90.py -k "window_alibi or dropout or grid or default_path" > $R/$L-staged-rows-tests.log 2>&1
echo "tests exit $?"; grep -c PASSED $R/$L-staged-rows-tests.log; grep -E "^FAILED|Error|assert" $R/$L-staged-rows-tests.log | head -8 | cut -c1-300; tail -1 $R/$L-staged-rows-tests.log
cd $OUT && tar czf $L.tgz $L && rm -rf $L
