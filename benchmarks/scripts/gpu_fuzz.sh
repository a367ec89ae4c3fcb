#!/bin/bash
# One GPU fuzz round: gpu_fuzz.sh TEST:EXAMPLES:LIMIT_S[:SEED] ...  (TEST = attention, varlen or kvcache).
# Each spec runs tests/st/test_gpu_fuzz.py::test_gpu_fuzz_TEST alone, stopping at its first failure, without
# shrinking (so a report comes back within the limit), its log in $OUT/fuzz-TEST[-seedSEED].log. Specs with a
# seed run side by side (kernel compiles are CPU-bound) with derandomization off; the others run one by one.
# Cut-off runs print no summary, so the report counts the examples tried ("Test case" lines, verbose mode).
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 FLASH_ATTENTION_FUZZ_NO_SHRINK=1
for spec in "$@"; do
  IFS=: read t n lim seed <<< "$spec"
  log=$OUT/fuzz-$t${seed:+-seed$seed}.log
  cmd=(timeout "$lim" python -m pytest -q -x --tb=short -W ignore -p no:cacheprovider --hypothesis-show-statistics
       -s --hypothesis-verbosity=verbose tests/st/test_gpu_fuzz.py::test_gpu_fuzz_$t)
  if [ -n "$seed" ]; then
    FLASH_ATTENTION_FUZZ_RANDOM=1 FLASH_ATTENTION_FUZZ_EXAMPLES=$n "${cmd[@]}" --hypothesis-seed="$seed" > "$log" 2>&1 &
  else
    FLASH_ATTENTION_FUZZ_EXAMPLES=$n "${cmd[@]}" > "$log" 2>&1
  fi
done
wait
for f in $OUT/fuzz-*.log; do
  echo "== $(basename $f): $(grep -c "Test case" $f) examples tried"
  grep -E "passed|failed|passing|Stopped because" $f | tail -3
  grep -E "^E " $f | head -12
  grep -A25 "Falsifying example\|Failing test case" $f | head -30
done
