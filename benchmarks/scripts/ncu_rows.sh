#!/bin/bash
# Nsight Compute on a list of attention calls, each in a process of its own (benchmarks/profile_ncu.py): a full
# report's raw metrics, details page and, for its longest kernel, the SASS lines with the most stall samples.
#   bash benchmarks/scripts/ncu_rows.sh OUTDIR SPEC [SPEC ...]
# SPEC = impl:side:head_dim:causal:seqlen:cfg, impl ours|cudnn, side forward|backward, cfg "-" or NAME=0|1 for
# profile_ncu.py --set (the tag gets "-NAME-0|1").
export PYTHONUNBUFFERED=1 PYTHONPATH=${PYTHONPATH:-$PWD}
mkdir -p "${1:?output folder}"
R=$(cd "$1" && pwd); shift  # absolute: the loop runs from benchmarks/
NCU=$(command -v ncu || ls /opt/nvidia/nsight-compute/*/ncu | head -1)
cd "$(dirname "$0")/.."
for spec in "$@"; do
  IFS=: read impl side d c s cfg <<< "$spec"
  extra=(); suffix=""; if [ "$cfg" != "-" ]; then extra=(--set "$cfg"); suffix=-${cfg/=/-}; fi
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
