#!/bin/bash
# Device round: each GPU fuzz test alone, stop at the first failure, no shrinking (so the report comes back).
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 FLASH_ATTENTION_FUZZ_NO_SHRINK=1 FLASH_ATTENTION_FUZZ_EXAMPLES=300
for t in attention varlen kvcache; do
  timeout 140 python -m pytest -q -x --tb=short -W ignore -p no:cacheprovider \
    tests/st/test_gpu_fuzz.py::test_gpu_fuzz_$t > $OUT/fuzz-$t.log 2>&1
  echo "$t exit $?"; grep -E "passed|failed" $OUT/fuzz-$t.log | tail -1
  grep -B2 -A30 "Falsifying example" $OUT/fuzz-$t.log | head -60
  grep -E "^E " $OUT/fuzz-$t.log | head -8
done
