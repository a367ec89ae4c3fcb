#!/bin/bash
# Tenth session (2026-12-03), first call: windows and ALiBi in the persistent Gluon forward, and dropout in the
# Gluon forward (8-bit draws, 7-round Philox, unpacked in the accumulator's registers): GPU tests, then the
# persistent form against the one-tile form on banded calls (FWD_GLUON_PERSISTENT forced both ways), then
# dropout's cost with its forward in Gluon and in tl.
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD
nvidia-smi --query-gpu=name --format=csv,noheader
L=h200-2026-12-03d
timeout 200 python -m pytest -q -p no:cacheprovider -rA tests/st/test_gpu_forward_sm90.py -k "persistent_forward_window_alibi or dropout" tests/st/test_gpu_features.py::test_dropout_keep_rate tests/st/test_gpu_features.py::test_dropout_exact > $OUT/$L-tests.log 2>&1
echo "tests exit $?"; grep -c PASSED $OUT/$L-tests.log; grep -E "^FAILED|Error" $OUT/$L-tests.log | head -8 | cut -c1-300; tail -1 $OUT/$L-tests.log
timeout 100 python benchmarks/ab_dropout.py --out $OUT/$L-dropout-ab-bf16.csv > $OUT/$L-dropout-ab-bf16.log 2>&1
echo "dropout ab exit $?"
python - $OUT/$L-dropout-ab-bf16.csv <<'PY'
import csv, sys
for r in csv.DictReader(open(sys.argv[1])):
    print(r["name"], r["D"], r["causal"], r["gluon_dropout"], "fwd %.0f bwd %.0f slow %.2f/%.2f" % (
        float(r["fwd_tflops"]), float(r["bwd_tflops"]), float(r["fwd_slowdown"]), float(r["bwd_slowdown"])), r.get("note", ""))
PY
timeout 200 python benchmarks/ab_forward.py --switch FWD_GLUON_PERSISTENT --tiles default --dtypes bf16 \
  --shapes 128:0:8192:-1:1,128:1:8192:-1:1,128:0:8192:2048:0:1:2048,128:1:8192:2048,128:1:2048:-1:1,64:0:8192:-1:1,64:1:8192:-1:1,64:0:8192:2048:0:1:2048,64:1:8192:2048,128:1:16384:4096 \
  --out $OUT/$L-persistent-bands-ab-bf16.csv > $OUT/$L-persistent-bands-ab-bf16.log 2>&1
echo "ab exit $?"
python - $OUT/$L-persistent-bands-ab-bf16.csv <<'PY'
import csv, sys, collections
g = collections.defaultdict(list)
for r in csv.DictReader(open(sys.argv[1])):
    g[(r["d"], r["causal"], r["seqlen"], r["window"], r["alibi"], r["FWD_GLUON_PERSISTENT"])].append(
        "%.0f(%.1e)" % (float(r["fwd_tflops"]), float(r["max_diff"])))
for k, v in g.items():
    print(k, v)
PY
grep -iE "error|exception" $OUT/$L-persistent-bands-ab-bf16.log | head -5 | cut -c1-300
