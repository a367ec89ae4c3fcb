#!/bin/bash
# Device round: the long GPU fuzz run after the final criterion fix, three seeds per test side by side, beside the
# GPU ring tests (after the refactor of the shared simulated-ring check).
nvidia-smi --query-gpu=name --format=csv,noheader
python -c "import torch, triton; print('torch', torch.__version__, 'triton', triton.__version__)"
PYTHONPATH=$PWD timeout 200 python -m pytest -q --tb=short -W ignore -p no:cacheprovider tests/st/test_gpu_ring.py \
  > $OUT/ring.log 2>&1 &
bash benchmarks/scripts/gpu_fuzz.sh {attention,varlen,kvcache}:400:330:{1,2,3}
wait; tail -2 $OUT/ring.log
