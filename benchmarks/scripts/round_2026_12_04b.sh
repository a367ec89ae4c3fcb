#!/bin/bash
# Sixteenth session (2026-12-04), ~200 s: the new default (head_dim 128 causal persistent up to 4K keys) under the GPU
# policy test; the persistent form's dynamic schedule at head_dim 128 under a causal mask from 4K keys, where tiles
# handed out by rounds leave programs on different heads (GLUON_DYNAMIC_SCHEDULE off/on with the persistent form
# forced); and the Gluon forward at head_dim 64 causal 2K-4K (FWD_GLUON off/on, GLUON_D64_MIN_SEQLEN = 8192).
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD
L=h200-2026-12-04b
R=$OUT/$L; mkdir -p $R
nvidia-smi --query-gpu=name,clocks.sm,temperature.gpu --format=csv,noheader
timeout 150 python -m pytest -v -p no:cacheprovider -rfE tests/st/test_gpu_forward_sm90.py -k "default_forms or persistent_dynamic" > $R/$L-tests.log 2>&1
echo "tests exit $?"; grep -c PASSED $R/$L-tests.log; grep -E "^FAILED|^ERROR" $R/$L-tests.log | head -8 | cut -c1-300
ab() {  # name, ab_forward arguments...
  local name=$1; shift
  (cd benchmarks && timeout 100 python ab_forward.py --tiles default --dtypes bf16,fp16 "$@" --out $R/$L-$name.csv > $R/$L-$name.log 2>&1)
  echo "$name exit $?"; python - $R/$L-$name.csv <<'P'
import csv, sys, collections
g = collections.defaultdict(list)
for r in csv.DictReader(open(sys.argv[1])):
    g[(r["dtype"], r["d"], r["causal"], r["seqlen"], list(r.values())[6])].append(float(r["fwd_tflops"]))
for k, v in g.items(): print(k, " ".join(f"{x:.0f}" for x in v))
P
}
ab causal-dynamic-ab --switch GLUON_DYNAMIC_SCHEDULE --set FWD_GLUON_PERSISTENT=1 --shapes 128:1:4096,128:1:8192,128:1:16384
ab d64-causal-gluon-ab --switch FWD_GLUON --shapes 64:1:2048,64:1:4096
cd $OUT && tar czf $L.tgz $L && rm -rf $L
