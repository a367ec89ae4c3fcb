#!/bin/bash
# Device round: GPU fuzz failures in detail, then compute-sanitizer memcheck over a smaller fuzz budget.
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
FLASH_ATTENTION_FUZZ_EXAMPLES=300 timeout 220 python -m pytest -q -n 3 -p no:randomly --tb=short -W ignore \
  tests/st/test_gpu_fuzz.py > $OUT/fuzz-full.log 2>&1
tail -5 $OUT/fuzz-full.log
grep -A40 "Falsifying example" $OUT/fuzz-full.log | head -150
FLASH_ATTENTION_FUZZ_EXAMPLES=8 timeout 250 /usr/local/cuda/bin/compute-sanitizer --tool memcheck --print-limit 20 \
  --error-exitcode 3 python -m pytest -q -p no:cacheprovider -W ignore tests/st/test_gpu_fuzz.py > $OUT/memcheck.log 2>&1
echo "memcheck exit: $?" | tee -a $OUT/memcheck.log
tail -15 $OUT/memcheck.log
