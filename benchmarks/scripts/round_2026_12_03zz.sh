#!/bin/bash
# Prepared in the fourteenth session (2026-12-03) for a later device call, not run yet (under 560 s): the tl
# forward's launch plans timed off and on (NOTES 69) with their GPU test; the A/B of
# the forward's early dropout draws (NOTES 68, configs.GLUON_FWD_DROPOUT_EARLY) and its GPU test; the GPU tests not
# run under the new backward defaults (NOTES 66: the default path with dropout, the dQ conversion kernel's default
# path, the prescaled rows' split-dQ cases); and where the short rows' noise comes from (NOTES 64: our bf16
# head_dim-64 causal 1K forward read 229-325 TFLOPS in one process, cuDNN 327-336), timed eagerly and from a CUDA
# graph. Then the full run: benchmarks/scripts/full_run.sh (two calls), and the profiles of round_2026_12_03s.sh.
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD
L=h200-2026-12-03zz
R=$OUT/$L; mkdir -p $R
nvidia-smi --query-gpu=name,clocks.sm,temperature.gpu --format=csv,noheader
(cd benchmarks && timeout 100 python ab_forward.py --switch GLUON_FWD_DROPOUT_EARLY --tiles default --shapes 128:0:8192:-1:0:1:-1:10,128:1:8192:-1:0:1:-1:10,64:0:8192:-1:0:1:-1:10,64:1:8192:-1:0:1:-1:10 --out $R/$L-fwd-dropout-early-ab-bf16.csv > $R/$L-fwd-dropout-early-ab-bf16.log 2>&1)
echo "ab dropout early exit $?"; grep "^{" $R/$L-fwd-dropout-early-ab-bf16.log | cut -c1-220
for plans in 0 1; do  # the tl forward's launch plans (NOTES 69) off, then on: host time out of the short rows?
  (cd benchmarks && timeout 75 python timing_spread.py --shapes 64:1:1024,64:1:2048,128:1:1024 --repeats 5 --set TL_FORWARD_PLANS=$plans --out $R/$L-timing-spread-plans$plans.csv > $R/$L-timing-spread-plans$plans.log 2>&1)
  echo "spread plans=$plans exit $?"; grep "^{" $R/$L-timing-spread-plans$plans.log | cut -c1-150
done
timeout 260 python -m pytest -v -p no:cacheprovider -rfE tests/st/test_gpu_forward_sm90.py tests/st/test_gpu_plans.py tests/st/test_gpu_backward_sm90.py -k "dropout_early or tl_forward_plan or default_path_dropout or dq_convert_kernel_default_path or (prescaled and split_dq)" > $R/$L-tests.log 2>&1
echo "tests exit $?"; grep -c PASSED $R/$L-tests.log; grep -E "^FAILED|^ERROR" $R/$L-tests.log | head -8 | cut -c1-300
cd $OUT && tar czf $L.tgz $L && rm -rf $L
