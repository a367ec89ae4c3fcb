#!/bin/bash
# Twelfth session (2026-12-03), first call: GPU tests of what the eleventh session changed after its last call
# (forward_sm90.ptx_select shared by the dropout keep mask and the backward's masks; testing.DROPOUT_CASES in the
# forward suite), then Nsight Compute profiles of the head_dim-128 backward (ours, causal or not, and cuDNN's) to
# see where its time goes.
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD
L=h200-2026-12-03n
nvidia-smi --query-gpu=name,clocks.sm,temperature.gpu --format=csv,noheader
timeout 150 python -m pytest -v -x -p no:cacheprovider -rA tests/st/test_gpu_backward_sm90.py tests/st/test_gpu_forward_sm90.py -k "dropout or window_alibi" > $OUT/$L-ptx-select-tests.log 2>&1
echo "tests exit $?"; grep -c PASSED $OUT/$L-ptx-select-tests.log; grep -E "^FAILED|Error|assert" $OUT/$L-ptx-select-tests.log | head -8 | cut -c1-300; tail -1 $OUT/$L-ptx-select-tests.log
NCU=$(command -v ncu || ls /opt/nvidia/nsight-compute/*/ncu | head -1)
echo "ncu: $NCU"
cd benchmarks
for spec in ours:128:0:8192 ours:128:1:8192 cudnn:128:0:8192 cudnn:128:1:8192; do
  impl=${spec%%:*}; shape=${spec#*:}; tag=$impl-${shape//:/-}
  timeout 150 $NCU --nvtx --nvtx-include "profiled/" --set full --import-source yes --clock-control none -f \
    -o $OUT/$L-$tag python profile_ncu.py --impl $impl --shape $shape > $OUT/$L-$tag-ncu.log 2>&1
  echo "$tag exit $?"; tail -3 $OUT/$L-$tag-ncu.log | cut -c1-200
  $NCU -i $OUT/$L-$tag.ncu-rep --page details > $OUT/$L-$tag-details.txt 2>&1
  $NCU -i $OUT/$L-$tag.ncu-rep --page source --csv --print-source sass > $OUT/$L-$tag-sass.csv 2>&1
  echo "details $(wc -l < $OUT/$L-$tag-details.txt) lines, sass $(wc -l < $OUT/$L-$tag-sass.csv) lines"
done
ls -la $OUT
