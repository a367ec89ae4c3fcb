#!/bin/bash
# Device round 2026-12-02 (fourth session), call 5 (the device time left): the Gluon backward's GPU tests after the
# register work, fused-dQ cases and the GQA/strided ones (run as one command line; the log stops where the time did).
export PYTHONPATH=$PWD
nvidia-smi --query-gpu=name --format=csv,noheader
timeout 190 python -m pytest -q -p no:cacheprovider tests/st/test_gpu_backward_sm90.py -k "fused_dq or gqa" \
  > $OUT/h200-2026-12-02-gluon-bwd-tests-c.log 2>&1
echo "exit $?"; tail -n 6 $OUT/h200-2026-12-02-gluon-bwd-tests-c.log
