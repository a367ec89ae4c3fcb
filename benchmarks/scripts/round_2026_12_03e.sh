#!/bin/bash
# Tenth session (2026-12-03), second call: dropout's generator, 16-bit draws / 10 rounds (the setting until now)
# against 8-bit draws (16 keys per Philox call) with 10 and 7 rounds, each in its own process (module constants).
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD
L=h200-2026-12-03e
S=flash_attention/ops/scores.py
for v in "16 10" "8 10" "8 7"; do
  set -- $v
  sed -i "s/^DROPOUT_BITS = tl.constexpr([0-9]*)/DROPOUT_BITS = tl.constexpr($1)/; s/^DROPOUT_ROUNDS = tl.constexpr([0-9]*)/DROPOUT_ROUNDS = tl.constexpr($2)/" $S
  grep "^DROPOUT_[BR]" $S | tr '\n' ' '; echo
  timeout 170 python benchmarks/ab_dropout.py --out $OUT/$L-dropout-ab-$1x$2.csv > $OUT/$L-dropout-ab-$1x$2.log 2>&1
  echo "exit $?"
  python - $OUT/$L-dropout-ab-$1x$2.csv <<'PY'
import csv, sys
for r in csv.DictReader(open(sys.argv[1])):
    print(r["name"], r["D"], r["causal"], r["bits"], r["rounds"], "fwd %.0f bwd %.0f slow %.2f/%.2f" % (
        float(r["fwd_tflops"]), float(r["bwd_tflops"]), float(r["fwd_slowdown"]), float(r["bwd_slowdown"])))
PY
done
