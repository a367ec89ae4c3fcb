"""Plot one benchmark CSV: TFLOPS against seqlen, one line per implementation.

    flash-attention plot benchmarks/results/h100-2026-11-24-bf16.csv --out-dir plots/

Writes one PNG per (dtype, head_dim, causal) with a forward and a backward panel; the measured bf16 matmul
ceiling, when the CSV has it, is drawn as a dashed line.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple, Union

from .tables import CEILING_IMPLS, load_rows, parse_bool, to_float, to_int

IMPL_ORDER = ("ours", "sdpa_cudnn", "sdpa_flash", "sdpa_efficient", "flex")
LABELS = {"sdpa_cudnn": "cuDNN (SDPA)", "sdpa_flash": "FA2 (SDPA)", "sdpa_efficient": "mem-efficient (SDPA)",
          "flex": "flex_attention"}

Series = Dict[str, Dict[str, List[Tuple[int, float]]]]  # impl -> phase -> [(seqlen, TFLOPS)]


def collect(rows: List[Dict[str, str]]) -> Dict[Tuple[str, int, bool], Series]:
    """``{(dtype, D, causal): {impl: {"fwd": [(S, TFLOPS)], "bwd": [...]}}}``; failed points are left out."""
    out: Dict[Tuple[str, int, bool], Series] = {}
    for r in rows:
        if r.get("impl") in CEILING_IMPLS:
            continue
        key = (r["dtype"], to_int(r["D"]), parse_bool(r["causal"]))
        series = out.setdefault(key, {}).setdefault(r["impl"], {"fwd": [], "bwd": []})
        for phase in ("fwd", "bwd"):
            value = to_float(r.get(f"{phase}_tflops"))
            if value is not None:
                series[phase].append((to_int(r["Sq"]), value))
    return out


def plot(csv_path: Union[Path, Sequence[Path]], out_dir: Path) -> List[Path]:
    """Write the PNGs of one CSV, or of the CSVs of one session's processes taken together; return their paths."""
    import matplotlib

    matplotlib.use("Agg")  # no display needed
    import matplotlib.pyplot as plt

    paths = [csv_path] if isinstance(csv_path, (str, Path)) else list(csv_path)
    rows = [row for path in paths for row in load_rows(path)]
    matmul: Optional[float] = next((to_float(r.get("fwd_tflops")) for r in rows if r.get("impl") == "matmul_bf16"),
                                   None)
    gpu = next((r.get("gpu") for r in rows if r.get("gpu")), "")
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for (dtype, d, causal), series in sorted(collect(rows).items()):
        fig, axes = plt.subplots(1, 2, figsize=(12, 4.5), sharey=True)
        for ax, phase in zip(axes, ("fwd", "bwd")):
            seqlens = set()
            for impl in sorted(series, key=lambda i: IMPL_ORDER.index(i) if i in IMPL_ORDER else len(IMPL_ORDER)):
                points = sorted(series[impl][phase])
                if not points:
                    continue
                xs, ys = zip(*points)
                seqlens.update(xs)
                ax.plot(xs, ys, marker="o", linewidth=2.5 if impl == "ours" else 1.5, label=LABELS.get(impl, impl))
            if matmul:
                ax.axhline(matmul, linestyle="--", color="gray", linewidth=1, label="bf16 matmul (measured)")
            ax.set_xscale("log", base=2)
            if seqlens:
                ax.set_xticks(sorted(seqlens), [str(s) for s in sorted(seqlens)])
                ax.minorticks_off()
            ax.set_title(f"{'forward' if phase == 'fwd' else 'backward'}")
            ax.set_xlabel("seqlen")
            ax.grid(True, alpha=0.3)
        axes[0].set_ylabel("TFLOPS")
        axes[0].set_ylim(bottom=0)
        axes[1].legend(fontsize=8, loc="lower right")
        fig.suptitle(f"{gpu}: {dtype}, head_dim {d}, {'causal' if causal else 'not causal'}")
        fig.tight_layout()
        path = out_dir / f"{dtype}-d{d}-{'causal' if causal else 'full'}.png"
        fig.savefig(path, dpi=120)
        plt.close(fig)
        written.append(path)
    return written


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("csv", type=Path, nargs="+",
                   help="CSVs written by python -m flash_attention.bench (several: one session's processes)")
    p.add_argument("--out-dir", type=Path, default=Path("benchmarks") / "plots", help="where to write the PNGs")
    args = p.parse_args(argv)
    written = plot(args.csv, args.out_dir)
    for path in written:
        print(path)
    if not written:
        print(f"{', '.join(map(str, args.csv))}: no benchmark rows to plot", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
