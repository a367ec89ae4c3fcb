#!/bin/bash
# Device round: GPU ring tests alone, then more of the fixed-length fuzz (the slowest: every example compiles a
# new forward/backward specialization), six seeds side by side, each stopping at its first failure.
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 FLASH_ATTENTION_FUZZ_NO_SHRINK=1 FLASH_ATTENTION_FUZZ_RANDOM=1
timeout 150 python -m pytest -q --tb=short -W ignore -p no:cacheprovider tests/st/test_gpu_ring.py > $OUT/ring.log 2>&1
echo "ring exit $?"; tail -2 $OUT/ring.log
for seed in 4 5 6 7 8 9; do
  FLASH_ATTENTION_FUZZ_EXAMPLES=400 timeout 300 python -m pytest -q -x --tb=short -W ignore -p no:cacheprovider \
    --hypothesis-seed=$seed -s --hypothesis-verbosity=verbose \
    tests/st/test_gpu_fuzz.py::test_gpu_fuzz_attention > $OUT/fuzz-attention-seed$seed.log 2>&1 &
done
wait
for f in $OUT/fuzz-*.log; do
  echo "== $(basename $f): $(grep -c "Test case" $f) examples"; grep -E "passed|failed|passing|Stopped because" $f | tail -3
  grep -E "^E " $f | head -12
done
