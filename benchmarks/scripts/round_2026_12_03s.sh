#!/bin/bash
# Prepared in the twelfth session (2026-12-03) for a later device call, not run yet: Nsight Compute on the rows
# still short of cuDNN (NOTES entries 51-53): the head_dim-128 forward at 1K keys and causal at 2K, the head_dim-64
# backward, the head_dim-64 causal forward at 4K (the tl kernel there), and the head_dim-128 causal backward in its
# default form and with every tile masked in one loop; then
# the A/Bs of the dQ staging tile's 32-byte swizzle (entry 56) and of the prescaled starting values (entry 58).
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD
L=h200-next-s
R=$OUT/$L; mkdir -p $R
NCU=$(command -v ncu || ls /opt/nvidia/nsight-compute/*/ncu | head -1)
cd benchmarks
for spec in ours:forward:128:0:1024:- ours:forward:128:1:2048:- cudnn:forward:128:1:2048:- ours:backward:64:0:8192:- ours:forward:64:1:4096:- \
            ours:backward:128:1:8192:- ours:backward:128:1:8192:GLUON_BWD_MASK_EVERY_TILE=1; do
  IFS=: read impl side d c s cfg <<< "$spec"
  extra=(); suffix=""; if [ "$cfg" != "-" ]; then extra=(--set "$cfg"); suffix=-every; fi
  tag=$impl-$side-$d-$c-$s$suffix
  timeout 100 $NCU --nvtx --nvtx-include "profiled/" --set full --import-source yes --clock-control none -f \
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
timeout 70 python ab_backward.py --switch GLUON_BWD_DQ_NARROW_SWIZZLE --variants default --shapes 128:0:8192,128:1:8192,64:0:8192 --out $R/$L-dq-narrow-swizzle-ab-bf16.csv > $R/$L-dq-narrow-swizzle-ab-bf16.log 2>&1
echo "ab exit $?"; grep -v Warning $R/$L-dq-narrow-swizzle-ab-bf16.log | cut -c1-260 | tail -12
timeout 70 python ab_backward.py --switch GLUON_BWD_PRESCALED_ROWS --set DQ_CONVERT_KERNEL=1 --variants default --shapes 128:0:8192,64:0:8192,64:1:8192 --out $R/$L-prescaled-ab-bf16.csv > $R/$L-prescaled-ab-bf16.log 2>&1
echo "ab2 exit $?"; grep -v Warning $R/$L-prescaled-ab-bf16.log | cut -c1-260 | tail -12
cd ..
cd $OUT && tar czf $L.tgz $L && rm -rf $L
