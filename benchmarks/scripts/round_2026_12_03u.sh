#!/bin/bash
# Thirteenth session (2026-12-03), after round r set the policy (configs.backward_mask_every_tile on at head_dim 128
# with dQ fused, backward_gluon_dq fusing the masked head_dim-128 kernels from 2K keys, dq_convert_kernel on): the
# GPU tests of the new defaults (windows/ALiBi/dropout in both dQ modes, the default paths, the conversion kernel)
# and of the switches still off (narrow swizzle, prescaled rows), the test r's time limit cut; then the A/Bs that
# remain: one masked loop at head_dim 64, the dQ modes at 1K keys with the new forms, the narrow swizzle and the
# prescaled rows on top of the new defaults.
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD
L=h200-2026-12-03u
R=$OUT/$L; mkdir -p $R
nvidia-smi --query-gpu=name,clocks.sm,temperature.gpu --format=csv,noheader
timeout 180 python -m pytest -v -p no:cacheprovider -rfE tests/st/test_gpu_backward_sm90.py -k "window_alibi or gluon_bwd_dropout or default_path or dq_convert or narrow_swizzle or prescaled" > $R/$L-tests.log 2>&1
echo "tests exit $?"; grep -c PASSED $R/$L-tests.log; grep -E "^FAILED|^ERROR|Error|assert" $R/$L-tests.log | head -8 | cut -c1-300; tail -1 $R/$L-tests.log
cd benchmarks
ab() { name=$1; shift; timeout 75 python ab_backward.py "$@" --out $R/$L-$name.csv > $R/$L-$name.log 2>&1
  echo "$name exit $?"; grep "^{" $R/$L-$name.log | python -c "
import ast, sys
for l in sys.stdin:
    r = ast.literal_eval(l)
    print(' '.join(f'{k}={v:.4g}' if isinstance(v, float) else f'{k}={v}' for k, v in r.items() if k not in ('dtype', 'group', 'max_diff_vs_first', 'ms')))"; }
ab d64-mask-every-tile-ab-bf16 --switch GLUON_BWD_MASK_EVERY_TILE --variants default --shapes 64:1:2048,64:1:8192,64:1:8192:2048
ab dq-modes-1k-ab-bf16 --variants split,tma --shapes 128:1:1024,128:0:1024,64:1:1024
ab dq-narrow-swizzle-ab-bf16 --switch GLUON_BWD_DQ_NARROW_SWIZZLE --variants default --shapes 128:0:8192,128:1:8192,64:0:8192
ab prescaled-ab-bf16 --switch GLUON_BWD_PRESCALED_ROWS --variants default --shapes 128:0:8192,128:1:8192,64:0:8192,64:1:8192
cd ..
cd $OUT && tar czf $L.tgz $L && rm -rf $L
