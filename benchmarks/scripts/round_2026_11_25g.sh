#!/bin/bash
# Device round: the long GPU fuzz run (each test alone, stop at the first failure, no shrinking).
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 FLASH_ATTENTION_FUZZ_NO_SHRINK=1
for spec in kvcache:200:100 varlen:150:150 attention:150:230; do
  IFS=: read t n lim <<< "$spec"
  FLASH_ATTENTION_FUZZ_EXAMPLES=$n timeout $lim python -m pytest -q -x --tb=short -W ignore -p no:cacheprovider \
    --hypothesis-show-statistics tests/st/test_gpu_fuzz.py::test_gpu_fuzz_$t > $OUT/fuzz-$t.log 2>&1
  echo "$t ($n examples) exit $?"; grep -E "passed|failed|passing examples|failing examples|Stopped because" $OUT/fuzz-$t.log | tail -4
  grep -A22 "Falsifying example\|Failing test case" $OUT/fuzz-$t.log | head -40
  grep -E "^E |Error" $OUT/fuzz-$t.log | head -6
done
