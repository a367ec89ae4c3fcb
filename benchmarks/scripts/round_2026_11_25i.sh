#!/bin/bash
# Device round: the long GPU fuzz run after the final criterion fix. Three seeds per test run side by side
# (kernel compiles are CPU-bound, the machine has 16 cores); each stops at its first failure, no shrinking.
# Then the GPU ring tests (after the refactor of the shared simulated-ring check).
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 FLASH_ATTENTION_FUZZ_NO_SHRINK=1 FLASH_ATTENTION_FUZZ_RANDOM=1
nvidia-smi --query-gpu=name --format=csv,noheader
python -c "import torch, triton; print('torch', torch.__version__, 'triton', triton.__version__)"
for t in attention varlen kvcache; do
  for seed in 1 2 3; do
    FLASH_ATTENTION_FUZZ_EXAMPLES=400 timeout 330 python -m pytest -q -x --tb=short -W ignore -p no:cacheprovider \
      --hypothesis-seed=$seed --hypothesis-show-statistics -s --hypothesis-verbosity=verbose \
      tests/st/test_gpu_fuzz.py::test_gpu_fuzz_$t > $OUT/fuzz-$t-seed$seed.log 2>&1 &
  done
done
timeout 200 python -m pytest -q --tb=short -W ignore -p no:cacheprovider tests/st/test_gpu_ring.py > $OUT/ring.log 2>&1
echo "ring exit $?"; tail -2 $OUT/ring.log
wait
for f in $OUT/fuzz-*.log; do
  echo "== $(basename $f): $(grep -c "Test case" $f) examples tried"; grep -E "passed|failed|passing|Stopped because" $f | tail -3
  grep -E "^E " $f | head -12
  grep -A25 "Falsifying example" $f | head -30
done
