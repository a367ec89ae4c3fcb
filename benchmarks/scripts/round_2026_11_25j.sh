#!/bin/bash
# Device round: GPU ring tests alone, then more of the fixed-length fuzz (the slowest: every example compiles a
# new forward/backward specialization), six seeds side by side.
PYTHONPATH=$PWD timeout 150 python -m pytest -q --tb=short -W ignore -p no:cacheprovider tests/st/test_gpu_ring.py \
  > $OUT/ring.log 2>&1
echo "ring exit $?"; tail -2 $OUT/ring.log
bash benchmarks/scripts/gpu_fuzz.sh attention:400:300:{4..9}
