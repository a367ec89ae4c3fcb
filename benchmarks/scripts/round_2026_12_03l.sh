#!/bin/bash
# Eleventh session (2026-12-03), fifth call: the Gluon backward's causal and window masks as PTX compare + select
# (configs.GLUON_BWD_PTX_MASKS). GPU tests of the masked paths (windows/ALiBi, grid, causal GQA), then the A/B.
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD
L=h200-2026-12-03l
timeout 110 python -m pytest -v -x -p no:cacheprovider -rA tests/st/test_gpu_backward_sm90.py -k "window_alibi or grid" > $OUT/$L-bwd-masks-tests.log 2>&1
echo "tests exit $?"; grep -c PASSED $OUT/$L-bwd-masks-tests.log; grep -E "^FAILED|Error|assert" $OUT/$L-bwd-masks-tests.log | head -8 | cut -c1-300; tail -1 $OUT/$L-bwd-masks-tests.log
cd benchmarks
timeout 130 python ab_backward.py --switch GLUON_BWD_PTX_MASKS --variants default --shapes 128:1:1024,128:1:2048,64:1:2048,128:0:8192:2048,128:1:8192:2048 --out $OUT/$L-ptx-masks-ab-bf16.csv > $OUT/$L-ptx-masks-ab-bf16.log 2>&1
echo "ab exit $?"; grep -v Warning $OUT/$L-ptx-masks-ab-bf16.log | tail -24 | cut -c1-200
