#!/bin/bash
# Device round: decode benchmark with the paged config, GPU tests of dropout and the KV cache.
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
python -c "import xdist; print('xdist', xdist.__version__)" && XD="-n 6" || XD=""
timeout 260 python -m flash_attention.bench_decode --out $OUT/decode.csv 2>&1 | tail -60 | tee $OUT/decode.log
timeout 300 python -m pytest -q $XD tests/st -k "dropout or kvcache" 2>&1 | tail -30 | tee $OUT/st.log
