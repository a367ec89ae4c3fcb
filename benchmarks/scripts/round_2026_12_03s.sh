#!/bin/bash
# Prepared in the twelfth session (2026-12-03) for a later device call, not run yet: Nsight Compute on the rows
# still short of cuDNN (NOTES entries 57, 61): the head_dim-128 forward at 1K keys and causal at 2K (ours and
# cuDNN's), the head_dim-64 backward, the head_dim-64 causal forward at 4K (the tl kernel there), and the
# head_dim-128 causal backward in its default form (one masked loop since the thirteenth session) and in the
# two-loop form. Run in the fifteenth session with the forward rows only (the backward rows now meet cuDNN
# but for head_dim 64 at 0.96-1.00x), ours beside cuDNN's for each. Its A/Bs of the narrow swizzle and the prescaled rows ran in round u (NOTES 59) and are gone.
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD
L=h200-2026-12-03s
R=$OUT/$L; mkdir -p $R
NCU=$(command -v ncu || ls /opt/nvidia/nsight-compute/*/ncu | head -1)
cd benchmarks
for spec in ours:forward:128:0:1024:- cudnn:forward:128:0:1024:- ours:forward:128:1:2048:- cudnn:forward:128:1:2048:- \
            ours:forward:64:1:4096:- cudnn:forward:64:1:4096:-; do
  IFS=: read impl side d c s cfg <<< "$spec"
  extra=(); suffix=""; if [ "$cfg" != "-" ]; then extra=(--set "$cfg"); suffix=-two-loops; fi
  tag=$impl-$side-$d-$c-$s$suffix
  timeout 75 $NCU --nvtx --nvtx-include "profiled/" --set full --import-source yes --clock-control none -f \
    -o $R/$tag python profile_ncu.py --impl $impl --side $side --shape $d:$c:$s "${extra[@]}" > $R/$tag-ncu.log 2>&1
  echo "== $tag exit $?"
  $NCU -i $R/$tag.ncu-rep --page raw --csv > $R/$tag-raw.csv 2>&1
  $NCU -i $R/$tag.ncu-rep --page details > $R/$tag-details.txt 2>&1
  python ncu_summary.py --raw $R/$tag-raw.csv --kernel "attn|sdpa|flash|cudnn|fprop|bprop" | cut -c1-160
  K=$(python - "$R/$tag-raw.csv" <<'PY'
import csv, re, sys
rows = list(csv.reader(open(sys.argv[1])))
i = next(i for i, r in enumerate(rows) if "Kernel Name" in r)
c, d = rows[i].index("Kernel Name"), rows[i].index("gpu__time_duration.sum")
best = max((r for r in rows[i + 2:] if len(r) == len(rows[i])), key=lambda r: float(r[d].replace(",", "")))
print(re.escape(best[c].split("(")[0].split("<")[0].strip().split(" ")[-1])[:60])
PY
)
  echo "longest kernel: $K"
  $NCU -i $R/$tag.ncu-rep --page source --csv --print-source sass -k "regex:$K" > $R/$tag-sass.csv 2>&1
  python ncu_summary.py --sass $R/$tag-sass.csv --top 25 | cut -c1-200 | tail -26
  rm -f $R/$tag.ncu-rep
done
cd ..
cd $OUT && tar czf $L.tgz $L && rm -rf $L
