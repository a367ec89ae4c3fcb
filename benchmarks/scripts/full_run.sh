#!/bin/bash
# The full benchmark in two device calls of under 500 s each (run z's single 585 s call left two rows and the
# features CSV behind, NOTES entry 66). Run part a, then part b right after it returns (warm machine, same run):
#   bash benchmarks/scripts/full_run.sh h200-YYYY-MM-DDx a   # bf16 + fp16 head_dim 128 (bf16 with the check)
#   bash benchmarks/scripts/full_run.sh h200-YYYY-MM-DDx b   # bf16 + fp16 head_dim 64, then the features
# Outputs land in $OUT as <tag>-<dtype>-d<head_dim>.{csv,log} and <tag>-features.{csv,log}.
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD
B=${1:?tag, e.g. h200-2026-12-04a}
S=$SECONDS
nvidia-smi --query-gpu=name,clocks.sm --format=csv,noheader
run() {  # seconds, name, bench arguments...
  local t=$1 name=$2; shift 2
  timeout $t python -m flash_attention.bench "$@" --out $OUT/$B-$name.csv > $OUT/$B-$name.log 2>&1
  echo "$name exit $? at $((SECONDS - S)) s"; grep -c PASS $OUT/$B-$name.log; grep "FAIL\|Error" $OUT/$B-$name.log | head -3
}
case ${2:?part a or b} in
  a) run 260 bf16-d128 --dtypes bf16 --head-dims 128
     run 220 fp16-d128 --dtypes fp16 --head-dims 128 --no-check ;;
  b) run 150 bf16-d64 --dtypes bf16 --head-dims 64 --no-long --no-check
     run 150 fp16-d64 --dtypes fp16 --head-dims 64 --no-long --no-check
     timeout 170 python -m flash_attention.bench_features --quick --out $OUT/$B-features.csv > $OUT/$B-features.log 2>&1
     echo "features exit $? at $((SECONDS - S)) s" ;;
esac
for f in $OUT/$B-*d*.csv; do python benchmarks/make_table.py $f 2>&1 | grep "^| [bf]" | cut -c1-40,60-200; done
