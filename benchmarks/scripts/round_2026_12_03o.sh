#!/bin/bash
# Twelfth session (2026-12-03), second call: lse2/delta staged through shared memory by the Gluon backward's
# producer (configs.GLUON_BWD_STAGED_ROWS): A/B in one process, GPU tests, then Nsight Compute source-level stall
# samples of the head_dim-128 backward with the switch off and on, and of cuDNN's backward.
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD
L=h200-2026-12-03o
R=$OUT/$L; mkdir -p $R
nvidia-smi --query-gpu=name,clocks.sm,temperature.gpu --format=csv,noheader
cd benchmarks
timeout 150 python ab_backward.py --switch GLUON_BWD_STAGED_ROWS --variants default --shapes 128:0:8192,128:1:8192,128:1:2048,64:0:8192,64:1:8192 --out $R/$L-staged-rows-ab-bf16.csv > $R/$L-staged-rows-ab-bf16.log 2>&1
echo "ab exit $?"; python - <<PY
import csv
rows = list(csv.DictReader(open("$R/$L-staged-rows-ab-bf16.csv")))
for r in rows:
    print(r["d"], r["causal"], r["seqlen"], r["GLUON_BWD_STAGED_ROWS"], r["rep"], "%.3f ms %.0f TF cudnn %.0f diff %s" % (float(r["ms"]), float(r["bwd_tflops"]), float(r["cudnn_bwd_tflops"]), r["max_diff_vs_first"]))
PY
NCU=$(command -v ncu || ls /opt/nvidia/nsight-compute/*/ncu | head -1)
for spec in ours:1:128:0:8192 ours:0:128:0:8192 cudnn:1:128:0:8192; do
  IFS=: read impl on d c s <<< "$spec"; tag=$impl-$on-$d-$c-$s
  timeout 110 $NCU --nvtx --nvtx-include "profiled/" --set full --import-source yes --clock-control none -f \
    -o $R/$tag python profile_ncu.py --impl $impl --shape $d:$c:$s --config GLUON_BWD_STAGED_ROWS=$on > $R/$tag-ncu.log 2>&1
  echo "== $tag exit $?"; grep -v "^==PROF==" $R/$tag-ncu.log | tail -2 | cut -c1-200
  $NCU -i $R/$tag.ncu-rep --page raw --csv > $R/$tag-raw.csv 2>&1
  $NCU -i $R/$tag.ncu-rep --page details > $R/$tag-details.txt 2>&1
  python ncu_summary.py --raw $R/$tag-raw.csv --kernel "dkdv|bprop|sdpa|flash|cudnn|dgrad|bwd"
  K=$(python - <<PY
import csv, re
rows = list(csv.reader(open("$R/$tag-raw.csv")))
i = next(i for i, r in enumerate(rows) if "Kernel Name" in r); c = rows[i].index("Kernel Name"); d = rows[i].index("gpu__time_duration.sum")
best = max((r for r in rows[i + 2:] if len(r) == len(rows[i])), key=lambda r: float(r[d].replace(",", "")))
print(re.escape(best[c].split("(")[0].split("<")[0].strip().split(" ")[-1])[:60])
PY
)
  echo "longest kernel: $K"
  $NCU -i $R/$tag.ncu-rep --page source --csv --print-source sass -k "regex:$K" > $R/$tag-sass.csv 2>&1
  python ncu_summary.py --sass $R/$tag-sass.csv --top 45 | cut -c1-220
  rm -f $R/$tag.ncu-rep
done
cd ..
timeout 150 python -m pytest -v -x -p no:cacheprovider -rA tests/st/test_gpu_backward_sm90.py -k "gluon_dkdv or dropout" > $R/$L-staged-rows-tests.log 2>&1
echo "tests exit $?"; grep -c PASSED $R/$L-staged-rows-tests.log; grep -E "^FAILED|Error|assert" $R/$L-staged-rows-tests.log | head -8 | cut -c1-300; tail -1 $R/$L-staged-rows-tests.log
cd $OUT && tar czf $L.tgz $L && rm -rf $L && ls -la $OUT
