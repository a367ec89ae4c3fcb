#!/bin/bash
# Device round: the GPU fuzz run again after the criterion fix (D-term magnitude for dq/dk), same example order.
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 FLASH_ATTENTION_FUZZ_NO_SHRINK=1
for spec in varlen:60:130 attention:100:200 kvcache:150:100; do
  IFS=: read t n lim <<< "$spec"
  FLASH_ATTENTION_FUZZ_EXAMPLES=$n timeout $lim python -m pytest -q -x --tb=short -W ignore -p no:cacheprovider \
    --hypothesis-show-statistics tests/st/test_gpu_fuzz.py::test_gpu_fuzz_$t > $OUT/fuzz-$t.log 2>&1
  echo "$t ($n examples) exit $?"; grep -E "passed|failed|passing|Stopped because" $OUT/fuzz-$t.log | tail -4
  grep -E "^E " $OUT/fuzz-$t.log | head -24
done
