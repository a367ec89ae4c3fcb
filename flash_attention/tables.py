"""Turn one benchmark CSV (from ``python -m flash_attention.bench``) into a markdown table.

    python benchmarks/make_table.py benchmarks/results/nvidia-h100-80gb-hbm3-2026-11-24.csv
    python benchmarks/make_table.py RESULTS.csv --readme README.md

With ``--readme`` the table replaces whatever sits between the lines ``<!-- perf-table:start -->`` and
``<!-- perf-table:end -->`` of that file. Only the standard library is used, so this runs anywhere.
"""

from __future__ import annotations

import argparse
import csv
import math
import sys
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

START_MARKER = "<!-- perf-table:start -->"
END_MARKER = "<!-- perf-table:end -->"
CEILING_IMPLS = ("matmul_bf16", "copy")
# (impl, column label) of the TFLOPS columns, per direction; the ratio column compares ours with cuDNN.
COLUMNS = (("ours", "ours"), ("sdpa_cudnn", "cuDNN"), ("sdpa_flash", "FA2"), ("flex", "flex"))
RATIO_TO = "sdpa_cudnn"

Row = Dict[str, str]


def load_rows(path: str | Path) -> List[Row]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def parse_bool(text: str) -> bool:
    return str(text).strip().lower() in ("true", "1", "yes")


def to_float(text: Optional[str]) -> Optional[float]:
    try:
        value = float(text)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return None if math.isnan(value) else value


def to_int(text: Optional[str]) -> int:
    try:
        return int(float(text))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return 0


def _unique(rows: Iterable[Row], key: str) -> str:
    seen: List[str] = []
    for r in rows:
        value = (r.get(key) or "").strip()
        if value and value not in seen:
            seen.append(value)
    return ", ".join(seen) or "?"


def header_line(rows: Sequence[Row]) -> str:
    """The GPU, versions, date and measured ceilings the table was taken with."""
    dates = _unique(({"date": (r.get("date") or "")[:10]} for r in rows), "date")
    parts = [f"**{_unique(rows, 'gpu')}**", f"torch {_unique(rows, 'torch')}", f"triton {_unique(rows, 'triton')}"]
    cuda = _unique(rows, "cuda")
    if cuda != "?":
        parts.append(f"CUDA {cuda}")
    parts.append(dates)
    line = " · ".join(parts)
    # One measurement per benchmark process: several CSVs joined into one table give a range.
    matmul = [to_float(r.get("fwd_tflops")) for r in rows if r.get("impl") == "matmul_bf16"]
    copy = [to_float(r.get("tb_per_s")) for r in rows if r.get("impl") == "copy"]
    matmul, copy = [x for x in matmul if x], [x for x in copy if x]
    ceilings = []
    if matmul:
        lo, hi = min(matmul), max(matmul)
        ceilings.append(f"bf16 matmul {lo:.0f} TFLOPS" if round(lo) == round(hi)
                        else f"bf16 matmul {lo:.0f}-{hi:.0f} TFLOPS")
    if copy:
        lo, hi = min(copy), max(copy)
        ceilings.append(f"copy {lo:.2f} TB/s" if f"{lo:.2f}" == f"{hi:.2f}" else f"copy {lo:.2f}-{hi:.2f} TB/s")
    if ceilings:
        line += " · measured ceilings: " + ", ".join(ceilings)
    return line


ShapeKey = Tuple[str, int, bool, int, int, int, int, int]


def group_by_shape(rows: Iterable[Row]) -> Dict[ShapeKey, Dict[str, Row]]:
    """``{(dtype, D, causal, Sq, Sk, B, H, Hk): {impl: row}}``, ceilings left out."""
    out: Dict[ShapeKey, Dict[str, Row]] = {}
    for r in rows:
        if r.get("impl") in CEILING_IMPLS or not r.get("impl"):
            continue
        key = (r.get("dtype", ""), to_int(r.get("D")), parse_bool(r.get("causal", "")), to_int(r.get("Sq")),
               to_int(r.get("Sk")), to_int(r.get("B")), to_int(r.get("H")), to_int(r.get("Hk")))
        out.setdefault(key, {})[r["impl"]] = r
    return out


def _cell(row: Optional[Row], phase: str) -> str:
    if row is None:
        return "–"
    value = to_float(row.get(f"{phase}_tflops"))
    if value is None:
        return "error" if row.get("error") else "–"
    return f"{value:.0f}"


def _ratio(ours: Optional[Row], anchor: Optional[Row], phase: str) -> str:
    a = to_float(ours.get(f"{phase}_tflops")) if ours else None
    b = to_float(anchor.get(f"{phase}_tflops")) if anchor else None
    return f"{a / b:.2f}" if a is not None and b else "–"


def _frac(ours: Optional[Row], phase: str, matmul: Optional[float]) -> str:
    """Ours as a fraction of the bf16 matmul ceiling measured in the row's own process (the CSV's
    ``*_frac_matmul``), else of ``matmul`` TFLOPS."""
    if ours is None:
        return "–"
    frac = to_float(ours.get(f"{phase}_frac_matmul"))
    value = to_float(ours.get(f"{phase}_tflops"))
    if frac is None and value is not None and matmul:
        frac = value / matmul
    return f"{frac:.0%}" if frac is not None else "–"


def _seqlen_label(key: ShapeKey) -> str:
    _, _, _, sq, sk, b, h, hk = key
    s = str(sq) if sq == sk else f"{sq}/{sk}"
    heads = str(h) if h == hk else f"{h}/{hk}"
    return f"{s} ({b}×{heads})"


def build_table(rows: Sequence[Row], source: Optional[str] = None) -> str:
    """Markdown: a header line, then one table row per (dtype, D, causal, S) with forward and backward TFLOPS.

    ``source`` (the CSV's path) is named under the table so the README says where its numbers come from."""
    groups = group_by_shape(rows)
    matmul = next((to_float(r.get("fwd_tflops")) for r in rows if r.get("impl") == "matmul_bf16"), None)
    ratio_label = dict(COLUMNS)[RATIO_TO]
    head = ["dtype", "D", "causal", "S (B×H)"]
    for phase in ("fwd", "bwd"):
        head += [f"{label} {phase}" for _, label in COLUMNS] + [f"ours/{ratio_label} {phase}", f"ours/matmul {phase}"]
    lines = [
        header_line(rows),
        "",
        "TFLOPS (forward 4·B·H·S²·D, halved when causal; backward 2.5× that); FA2 = SDPA's flash backend, "
        "cuDNN = SDPA's cuDNN backend, flex = torch.compile'd flex_attention; ours/matmul = ours as a fraction of the "
        "bf16 matmul ceiling measured in the same run.",
        "",
        "| " + " | ".join(head) + " |",
        "|" + "|".join([":--"] * 4 + ["--:"] * (len(head) - 4)) + "|",
    ]
    for key in sorted(groups):
        impls = groups[key]
        dtype, d, causal = key[0], key[1], key[2]
        cells = [dtype, str(d), "yes" if causal else "no", _seqlen_label(key)]
        for phase in ("fwd", "bwd"):
            cells += [_cell(impls.get(impl), phase) for impl, _ in COLUMNS]
            cells.append(_ratio(impls.get("ours"), impls.get(RATIO_TO), phase))
            cells.append(_frac(impls.get("ours"), phase, matmul))
        lines.append("| " + " | ".join(cells) + " |")
    if source:
        lines += ["", f"Generated from `{source}` by `benchmarks/make_table.py`."]
    return "\n".join(lines)


def replace_between_markers(text: str, table: str, start_marker: str = "", end_marker: str = "") -> str:
    """``text`` with the lines between the start and end markers (the perf-table ones by default) replaced."""
    start_marker, end_marker = start_marker or START_MARKER, end_marker or END_MARKER
    lines = text.splitlines(keepends=True)
    stripped = [line.strip() for line in lines]
    if start_marker not in stripped or end_marker not in stripped:
        raise ValueError(f"markers {start_marker!r} and {end_marker!r} must each be on a line of their own")
    start = stripped.index(start_marker)
    if end_marker not in stripped[start:]:
        raise ValueError(f"{end_marker!r} must come after {start_marker!r}")
    end = stripped.index(end_marker, start)
    newline = "\r\n" if lines[start].endswith("\r\n") else "\n"
    body = table.replace("\n", newline) + newline
    return "".join(lines[: start + 1]) + newline + body + newline + "".join(lines[end:])


FEATURE_START, FEATURE_END = "<!-- features-table:start -->", "<!-- features-table:end -->"


def merge_feature_runs(runs: Sequence[Sequence[Row]]) -> List[Row]:
    """Rows of several bench_features CSVs, oldest first: a later run's (name, causal) row replaces an earlier one;
    rows only an earlier run has (say the long rows a ``--quick`` run skips) stay, in their original order."""
    merged: Dict[Tuple[str, str], Row] = {}
    for rows in runs:
        for r in rows:
            merged[(r["name"], r["causal"])] = r
    return list(merged.values())


def build_features_table(rows: Sequence[Row], source: str) -> str:
    """Markdown for ``python -m flash_attention.bench_features`` CSVs: time, TFLOPS, slowdown, peak memory."""
    dates = sorted({r["date"][:10] for r in rows})
    first = rows[0]
    lines = [f"**{first['gpu']}** · torch {first['torch']} · triton {first['triton']} · {', '.join(dates)}", "",
             "| case | causal | B×H×S, D | fwd ms | bwd ms | fwd TFLOPS | bwd TFLOPS | slowdown vs plain fwd/bwd "
             "| peak GiB (inputs+outputs+grads) | note |",
             "|:--|:--|:--|--:|--:|--:|--:|--:|--:|:--|"]
    for r in rows:
        slow = (f"{float(r['fwd_slowdown']):+.0%} / {float(r['bwd_slowdown']):+.0%}" if r.get("fwd_slowdown") else "")
        peak = f"{float(r['peak_mem_gib']):.2f} ({float(r['io_mem_gib']):.2f})" if r.get("peak_mem_gib") else ""
        fmt = lambda key, spec: format(float(r[key]), spec) if r.get(key) else ""  # noqa: E731
        note = (r.get("note") or "").split("io_mem_gib recomputed")[0].rstrip("; ")
        if len(dates) > 1:
            note = "; ".join(x for x in (note, f"run of {r['date'][:10]}") if x)
        lines.append(f"| {r['name']} | {r['causal']} | {r['B']}×{r['H']}×{r['S']}, {r['D']} | {fmt('fwd_ms', '.2f')} "
                     f"| {fmt('bwd_ms', '.2f')} | {fmt('fwd_tflops', '.0f')} | {fmt('bwd_tflops', '.0f')} | {slow} "
                     f"| {peak} | {note} |")
    lines += ["", f"Generated from `{source}` by `benchmarks/make_table.py --features` (a later run's row replaces "
              "an earlier one's)."]
    return "\n".join(lines)


DECODE_START, DECODE_END = "<!-- decode-table:start -->", "<!-- decode-table:end -->"
DECODE_COLUMNS = (("ours", "ours"), ("ours_paged", "ours paged"), ("ours_append", "ours append+attend"),
                  ("sdpa_cudnn", "cuDNN"), ("sdpa_flash", "FA2"), ("flex", "flex"))


def build_decode_table(rows: Sequence[Row], source: str) -> str:
    """Markdown for a ``python -m flash_attention.bench_decode`` CSV: achieved K/V bandwidth as % of copy."""
    copy = next((r for r in rows if r["impl"] == "copy"), None)
    bench = [r for r in rows if r["impl"] != "copy"]
    first = bench[0]
    copy_bw = f"{float(copy['tb_per_s']):.2f} TB/s" if copy else "not measured"
    lines = [f"**{first['gpu']}** · torch {first['torch']} · triton {first['triton']} · {first['date'][:10]} · "
             f"{first['dtype'].replace('torch.', '')}, {first['H']} query / {first['Hk']} kv heads, head_dim "
             f"{first['D']}, one query token · copy bandwidth {copy_bw}", "",
             "| B | cached keys | " + " | ".join(label for _, label in DECODE_COLUMNS) + " | ours/cuDNN |",
             "|--:|--:|" + "--:|" * (len(DECODE_COLUMNS) + 1)]
    shapes: Dict[Tuple[int, int], Dict[str, Row]] = {}
    for r in bench:
        shapes.setdefault((to_int(r["B"]), to_int(r["Sk"])), {})[r["impl"]] = r
    for (b, sk), by_impl in sorted(shapes.items()):
        cells = []
        for impl, _ in DECODE_COLUMNS:
            frac = to_float((by_impl.get(impl) or {}).get("frac_copy"))
            cells.append(f"{frac:.0%}" if frac is not None else "n/a")
        ours, cudnn = by_impl.get("ours", {}), by_impl.get("sdpa_cudnn", {})
        t_ours, t_cudnn = to_float(ours.get("ms")), to_float(cudnn.get("ms"))
        ratio = f"{t_cudnn / t_ours:.2f}" if t_ours and t_cudnn else ""
        lines.append(f"| {b} | {sk // 1024}K | " + " | ".join(cells) + f" | {ratio} |")
    lines += ["", "Cells: bytes of K and V read / time, as a fraction of the copy bandwidth of the same run (16 decode "
              "calls captured in one CUDA graph, as consecutive layers would run). n/a: the backend refused the shape "
              "(SDPA's efficient backend has no GQA kernel; FlexAttention's compile fails at B=32 beyond 32K).",
              "", f"Generated from `{source}` by `benchmarks/make_table.py --decode`."]
    return "\n".join(lines)


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("csv", nargs="+",
                   help="CSVs written by python -m flash_attention.bench (one table per argument; join the CSVs "
                        "of one session's processes with '+' for one table)")
    p.add_argument("--readme", type=Path, help="replace the table between the perf-table markers of this file")
    p.add_argument("--features", action="store_true",
                   help="the CSV is a bench_features CSV: write the features table (features-table markers)")
    p.add_argument("--decode", action="store_true",
                   help="the CSV is a bench_decode CSV: write the decode table (decode-table markers)")
    args = p.parse_args(argv)
    groups = [[Path(part) for part in arg.split("+")] for arg in args.csv]
    paths = [path for group in groups for path in group]
    if args.decode:
        table = build_decode_table(load_rows(paths[0]), paths[0].as_posix())
        print(table)
        if args.readme is not None:
            args.readme.write_text(replace_between_markers(args.readme.read_text(), table, DECODE_START, DECODE_END))
        return 0
    if args.features:
        rows = merge_feature_runs([load_rows(path) for path in paths])
        table = build_features_table(rows, "`, `".join(path.as_posix() for path in paths))
        print(table)
        if args.readme is not None:
            text = args.readme.read_text()
            args.readme.write_text(replace_between_markers(text, table, FEATURE_START, FEATURE_END))
        return 0
    tables = []
    for group in groups:
        rows = [row for path in group for row in load_rows(path)]
        source = "`, `".join(path.as_posix() for path in group)
        if not group_by_shape(rows):
            print(f"{source}: no benchmark rows", file=sys.stderr)
            return 1
        tables.append(build_table(rows, source=source))
    table = "\n\n".join(tables)
    print(table)
    if args.readme is not None:
        try:
            with open(args.readme, newline="") as f:  # keep the file's own line endings
                text = f.read()
            new_text = replace_between_markers(text, table)
            with open(args.readme, "w", newline="") as f:
                f.write(new_text)
        except (OSError, ValueError) as exc:
            print(f"{args.readme}: {exc}", file=sys.stderr)
            return 2
        print(f"updated {args.readme}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
