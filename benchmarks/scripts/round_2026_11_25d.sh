#!/bin/bash
# Device round: reliability (huge grids/tensors, memory, streams), a long fuzz run, and compute-sanitizer memcheck.
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,driver_version --format=csv | tee $OUT/gpu.txt
timeout 200 python -m pytest -q -s tests/st/test_gpu_reliability.py 2>&1 | tail -25 | tee $OUT/reliability.log
FLASH_ATTENTION_FUZZ_EXAMPLES=300 timeout 200 python -m pytest -q -n 3 tests/st/test_gpu_fuzz.py 2>&1 | tail -25 | tee $OUT/fuzz.log
CS=$(command -v compute-sanitizer || ls /usr/local/cuda*/bin/compute-sanitizer 2>/dev/null | head -1)
echo "compute-sanitizer: $CS" | tee $OUT/memcheck.log
if [ -n "$CS" ]; then
  FLASH_ATTENTION_FUZZ_EXAMPLES=15 timeout 170 $CS --tool memcheck --print-limit 20 --error-exitcode 3 \
    python -m pytest -q -p no:cacheprovider tests/st/test_gpu_fuzz.py 2>&1 | tail -30 | tee -a $OUT/memcheck.log
  echo "exit: ${PIPESTATUS[0]}" | tee -a $OUT/memcheck.log
fi
