"""The benchmark's tools without a GPU: flop counting, the shapes grid, the CSV writer, the table printers,
make_table.py / plot.py on a synthetic CSV, the CPU correctness check and the driver with a fake timer."""

import csv
import datetime
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from flash_attention import bench
from flash_attention.testing import AttnCase

ROOT = Path(__file__).resolve().parents[2]


from flash_attention import plot as plot_module  # noqa: E402
from flash_attention import tables as make_table  # noqa: E402

ENV = {"gpu": "NVIDIA H100 80GB HBM3", "torch": "2.11.0", "triton": "3.6.0", "cuda": "12.8", "cudnn": 91000,
       "date": "2026-11-24T10:00:00"}


def _shape_row(shape: bench.Shape, impl: str, fwd_ms=None, bwd_ms=None, error=None, **extra):
    row = {"impl": impl, **shape.csv_fields(), **extra}
    if fwd_ms is not None:
        row.update(fwd_ms=fwd_ms, fwd_tflops=bench.tflops(bench.attn_flops(shape), fwd_ms))
    if bwd_ms is not None:
        row.update(bwd_ms=bwd_ms, bwd_tflops=bench.tflops(bench.bwd_flops(shape), bwd_ms))
    if error:
        row["error"] = error
    return row


def _synthetic_csv(path: Path) -> Path:
    """A small results file as the benchmark would write it: ceilings, then one row per impl per shape."""
    full = bench.Shape("bf16", 2, 16, 16, 8192, 8192, 128, False)
    causal = bench.Shape("bf16", 2, 16, 16, 8192, 8192, 128, True)
    with bench.CsvWriter(path, common=ENV) as w:
        w.write({"impl": "matmul_bf16", "dtype": "bf16", "fwd_ms": 1.5, "fwd_tflops": 733.0})
        w.write({"impl": "copy", "dtype": "bf16", "fwd_ms": 0.7, "tb_per_s": 3.07})
        # full: 4*2*16*8192^2*128 = 1.0995e12 flop -> 2.0 ms is 549.8 TFLOPS
        w.write(_shape_row(full, "ours", 2.0, 5.0, first_call_s=3.2))
        w.write(_shape_row(full, "sdpa_cudnn", 1.6, 4.0))
        w.write(_shape_row(full, "sdpa_flash", 3.0, 8.0))
        w.write(_shape_row(full, "flex", error="BackendCompilerFailed: boom"))
        w.write(_shape_row(causal, "ours", 1.1, 2.9))
        w.write(_shape_row(causal, "sdpa_cudnn", 1.0, 2.5))
    return path


# ---------------------------------------------------------------------------------------------------------------


def test_flops_and_tflops():
    s = bench.Shape("bf16", 2, 16, 16, 1024, 1024, 128, False)
    assert bench.attn_flops(s) == 4 * 2 * 16 * 1024 * 1024 * 128
    c = bench.Shape("bf16", 2, 16, 16, 1024, 1024, 128, True)
    assert bench.attn_flops(c) == bench.attn_flops(s) / 2
    assert bench.bwd_flops(s) == 2.5 * bench.attn_flops(s)
    assert bench.tflops(2e12, 1000.0) == pytest.approx(2.0)
    assert bench.tflops(1e12, None) is None
    assert bench.tflops(1e12, 0.0) is None
    assert bench.tflops(1e12, -1.0) is None


def test_shapes_grid():
    grid = bench.shapes_grid()
    assert len(grid) == 2 * 2 * 2 * 5 + 2 * 2  # dtype x D x causal x S, plus the 64K rows
    regular = [s for s in grid if s.seqlen_q != bench.LONG_SEQLEN]
    assert all(s.batch * s.seqlen_q == 16384 and s.nheads * s.head_dim == 2048 for s in regular)
    long = [s for s in grid if s.seqlen_q == bench.LONG_SEQLEN]
    assert {(s.batch, s.nheads, s.head_dim) for s in long} == {(1, 16, 128)}
    assert {(s.dtype, s.causal) for s in long} == {(d, c) for d in ("bf16", "fp16") for c in (False, True)}
    assert grid[-len(long):] == long  # the long rows run last
    assert not [s for s in bench.shapes_grid(head_dims=(64,)) if s.seqlen_q == bench.LONG_SEQLEN]


def test_resolve_grid_quick_and_overrides():
    shapes, impls = bench.resolve_grid(bench.build_parser().parse_args(["--quick"]))
    assert impls == list(bench.IMPLS)
    assert {(s.dtype, s.head_dim, s.seqlen_q) for s in shapes} == {("bf16", 128, 2048), ("bf16", 128, 8192)}
    assert len(shapes) == 4
    shapes, impls = bench.resolve_grid(bench.build_parser().parse_args(
        ["--quick", "--seqlens", "1024", "--causal", "yes", "--impls", "ours,sdpa_cudnn"]))
    assert [(s.seqlen_q, s.causal) for s in shapes] == [(1024, True)]
    assert impls == ["ours", "sdpa_cudnn"]
    shapes, _ = bench.resolve_grid(bench.build_parser().parse_args(["--no-long", "--dtypes", "fp16"]))
    assert len(shapes) == 20 and {s.dtype for s in shapes} == {"fp16"}
    with pytest.raises(SystemExit):
        bench.resolve_grid(bench.build_parser().parse_args(["--impls", "ours,nope"]))


def test_make_inputs_random_not_zero():
    s = bench.Shape("fp16", 1, 4, 2, 64, 48, 32, False)
    q, k, v, dout = bench.make_inputs(s, "cpu", seed=1)
    assert q.shape == (1, 64, 4, 32) and k.shape == v.shape == (1, 48, 2, 32) and dout.shape == q.shape
    assert all(t.dtype == torch.float16 and t.float().std() > 0.5 for t in (q, k, v, dout))
    assert torch.equal(q, bench.make_inputs(s, "cpu", seed=1)[0])


def test_csv_writer(tmp_path):
    path = _synthetic_csv(tmp_path / "sub" / "r.csv")
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        rows = list(reader)
        assert reader.fieldnames == bench.CSV_COLUMNS
    required = ["gpu", "torch", "triton", "cuda", "date", "dtype", "B", "H", "Hk", "Sq", "Sk", "D", "causal", "impl",
                "fwd_ms", "fwd_tflops", "bwd_ms", "bwd_tflops", "first_call_s", "error", "note"]
    assert set(required) <= set(bench.CSV_COLUMNS)
    assert [r["impl"] for r in rows[:2]] == ["matmul_bf16", "copy"]
    ours = rows[2]
    assert ours["gpu"] == ENV["gpu"] and ours["causal"] == "false" and ours["first_call_s"] == "3.2"
    assert float(ours["fwd_tflops"]) == pytest.approx(4 * 2 * 16 * 8192**2 * 128 / 2e-3 / 1e12, rel=1e-5)
    assert rows[5]["error"].startswith("BackendCompilerFailed") and rows[5]["fwd_ms"] == ""
    with pytest.raises(KeyError):
        with bench.CsvWriter(tmp_path / "bad.csv") as w:
            w.write({"impl": "ours", "not_a_column": 1})


def test_default_out_path(tmp_path):
    date = datetime.date(2026, 11, 24)
    p = bench.default_out_path("NVIDIA H100 80GB HBM3", date, tmp_path)
    assert p == tmp_path / "nvidia-h100-80gb-hbm3-2026-11-24.csv"
    p.write_text("x")
    again = bench.default_out_path("NVIDIA H100 80GB HBM3", date, tmp_path)
    assert again.name == "nvidia-h100-80gb-hbm3-2026-11-24-2.csv"


def test_table_printers(tmp_path, capsys):
    rows = make_table.load_rows(_synthetic_csv(tmp_path / "r.csv"))
    header, cells = bench.table_rows(rows)
    assert header[:6] == ["dtype", "D", "causal", "B", "H", "S"]
    assert "ours/cuDNN" in header and "ours/flex" in header and "ours/mem-eff" not in header
    full = cells[0]
    assert full[2] == "no" and full[6] == "550/550"  # 1.0995e12/2ms and 2.5x that / 5ms
    assert full[header.index("ours/cuDNN")] == "0.80/0.80"
    assert full[header.index("flex f/b")] == "err/err"
    assert full[header.index("% matmul f/b")] == "75/75"
    text = bench.format_table(rows)
    assert len(text.splitlines()) == 4
    bench.print_table([r for r in rows if r["impl"] not in ("matmul_bf16", "copy")],
                      [{"impl": "matmul_bf16", "fwd_tflops": 733.0}, {"impl": "copy", "tb_per_s": 3.07}])
    out = capsys.readouterr().out
    assert "733 TFLOPS" in out and "550/550" in out


def test_make_table_markdown(tmp_path):
    rows = make_table.load_rows(_synthetic_csv(tmp_path / "r.csv"))
    table = make_table.build_table(rows)
    lines = table.splitlines()
    assert "NVIDIA H100 80GB HBM3" in lines[0] and "torch 2.11.0" in lines[0] and "triton 3.6.0" in lines[0]
    assert "2026-11-24" in lines[0] and "733 TFLOPS" in lines[0]
    body = [line for line in lines if line.startswith("| bf16")]
    assert len(body) == 2
    full = [c.strip() for c in body[0].strip("|").split("|")]
    # dtype, D, causal, S | ours, cuDNN, FA2, flex, ratio, fraction of the matmul ceiling (fwd) | the same (bwd)
    assert full == ["bf16", "128", "no", "8192 (2×16)", "550", "687", "367", "error", "0.80", "75%",
                    "550", "687", "344", "error", "0.80", "75%"]
    causal = [c.strip() for c in body[1].strip("|").split("|")]
    assert causal[2] == "yes" and causal[6] == "–" and causal[8] == "0.91"


def test_make_table_readme(tmp_path, capsys):
    csv_path = _synthetic_csv(tmp_path / "r.csv")
    readme = tmp_path / "README.md"
    readme.write_text("# T\n\nbefore\n<!-- perf-table:start -->\nold table\n<!-- perf-table:end -->\nafter\n")
    assert make_table.main([str(csv_path), "--readme", str(readme)]) == 0
    text = readme.read_text()
    assert "old table" not in text and "before" in text and text.endswith("<!-- perf-table:end -->\nafter\n")
    between = text.split("<!-- perf-table:start -->")[1].split("<!-- perf-table:end -->")[0]
    assert "| bf16 | 128 | no |" in between
    assert make_table.main([str(csv_path), "--readme", str(readme)]) == 0  # idempotent
    assert readme.read_text() == text
    capsys.readouterr()

    bad = tmp_path / "BAD.md"
    bad.write_text("no markers here\n")
    assert make_table.main([str(csv_path), "--readme", str(bad)]) == 2
    assert "markers" in capsys.readouterr().err
    assert bad.read_text() == "no markers here\n"
    with pytest.raises(ValueError):
        make_table.replace_between_markers("<!-- perf-table:end -->\n<!-- perf-table:start -->\n", "t")


def test_plot(tmp_path):
    pytest.importorskip("matplotlib")
    plot = plot_module
    csv_path = _synthetic_csv(tmp_path / "r.csv")
    assert plot.main([str(csv_path), "--out-dir", str(tmp_path / "png")]) == 0
    names = sorted(p.name for p in (tmp_path / "png").iterdir())
    assert names == ["bf16-d128-causal.png", "bf16-d128-full.png"]


def test_bench_help():
    res = subprocess.run([sys.executable, "-m", "flash_attention.bench", "--help"], cwd=ROOT, capture_output=True,
                         text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert "--quick" in res.stdout and "--impls" in res.stdout


def test_cpu_check_passes(capsys):
    assert bench.run_check("cpu", bench.CPU_CHECK_CASES[:3])
    out = capsys.readouterr().out
    assert out.count("PASS") == 3 and "FAIL" not in out


def test_check_catches_a_wrong_result(monkeypatch):
    import flash_attention

    real = flash_attention.flash_attn_func

    def wrong(q, k, v, causal=False):
        return real(q, k, v, causal=not causal)

    monkeypatch.setattr(flash_attention, "flash_attn_func", wrong)
    res = bench.check_case(bench.CheckCase("fp16", AttnCase(1, 64, 64, 2, 2, 32, True)), "cpu")
    assert not res.passed and "FAIL" in res.line()

    def nan(q, k, v, causal=False):
        return torch.full_like(q, float("nan")) + 0 * (q + k.sum() + v.sum())

    monkeypatch.setattr(flash_attention, "flash_attn_func", nan)
    res = bench.check_case(bench.CheckCase("fp32", AttnCase(1, 16, 16, 2, 2, 32, False)), "cpu")
    assert not res.passed and "NaN" in res.error

    def boom(*args, **kwargs):
        raise RuntimeError("kernel exploded\nsecond line")

    monkeypatch.setattr(flash_attention, "flash_attn_func", boom)
    res = bench.check_case(bench.CheckCase("fp32", AttnCase(1, 16, 16, 2, 2, 32, False)), "cpu")
    assert not res.passed and res.error == "RuntimeError: kernel exploded"


def test_main_on_cpu_runs_check_only(capsys):
    if torch.cuda.is_available():
        pytest.skip("on a GPU main() would run the timings")
    assert bench.main(["--no-check"]) == 0
    assert "need a CUDA GPU" in capsys.readouterr().out


def test_driver_with_fake_timer(tmp_path, monkeypatch):
    """run_benchmark end to end on CPU tensors: CSV rows, errors recorded, first-call latency reported."""
    times = iter(range(1, 10_000))
    monkeypatch.setattr(bench, "time_ms", lambda fn, warmup_ms, rep_ms: (fn(), float(next(times)))[1])
    monkeypatch.setattr(bench, "measure_ceilings", lambda *a, **k: [
        {"impl": "matmul_bf16", "dtype": "bf16", "fwd_ms": 1.0, "fwd_tflops": 1e-3, "note": "fake"},
        {"impl": "copy", "dtype": "bf16", "fwd_ms": 1.0, "tb_per_s": 1.0, "note": "fake"}])
    shapes = [bench.Shape("bf16", 1, 2, 2, 64, 64, 32, True), bench.Shape("bf16", 1, 2, 2, 128, 128, 32, True)]
    first = bench.FirstCalls(fresh_cache=False)

    def broken(*a, **k):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 4 GiB\nmore")

    monkeypatch.setattr(bench, "prepare_flex", broken)
    path, ceilings, rows = bench.run_benchmark(shapes, ["ours", "flex"], tmp_path / "out.csv", 1, 1, first,
                                               check_ok=True, device="cpu")
    assert [r["impl"] for r in rows] == ["ours", "flex", "ours", "flex"]
    ours = rows[0]
    assert ours["fwd_ms"] == 1.0 and ours["fwd_bwd_ms"] == 2.0 and ours["bwd_ms"] == 1.0
    assert ours["bwd_tflops"] == pytest.approx(bench.bwd_flops(shapes[0]) / 1e-3 / 1e12)
    assert ours["fwd_frac_matmul"] == pytest.approx(ours["fwd_tflops"] / 1e-3)
    assert ours["first_call_s"] > 0 and "first_call_s" not in rows[2]  # once per (dtype, D, causal)
    assert rows[1]["error"] == "OutOfMemoryError: CUDA out of memory. Tried to allocate 4 GiB"
    with open(path, newline="") as f:
        written = list(csv.DictReader(f))
    assert [r["impl"] for r in written] == ["matmul_bf16", "copy", "ours", "flex", "ours", "flex"]
    assert written[2]["gpu"] == "cpu" and written[2]["Sq"] == "64" and written[2]["causal"] == "true"


def test_decode_table_from_committed_csv(tmp_path):
    """The README's decode table comes from a bench_decode CSV: fractions of copy bandwidth per (B, Sk)."""
    src = ROOT / "benchmarks" / "results" / "h100-2026-11-25-decode.csv"
    table = make_table.build_decode_table(make_table.load_rows(src), "x.csv")
    assert "| 1 | 16K |" in table and "| 32 | 128K |" in table and "copy bandwidth 3.00 TB/s" in table
    readme = tmp_path / "README.md"
    readme.write_text(f"a\n{make_table.DECODE_START}\nold\n{make_table.DECODE_END}\nb\n")
    assert make_table.main([str(src), "--decode", "--readme", str(readme)]) == 0
    text = readme.read_text()
    assert "old" not in text and "| 8 | 64K |" in text and text.startswith("a\n") and text.endswith("b\n")


def test_feature_runs_merge_later_wins():
    older = [{"name": "plain", "causal": "True", "date": "2026-11-24"},
             {"name": "long_64k", "causal": "True", "date": "2026-11-24"}]
    newer = [{"name": "plain", "causal": "True", "date": "2026-11-25"}]
    merged = make_table.merge_feature_runs([older, newer])
    assert [(r["name"], r["date"]) for r in merged] == [("plain", "2026-11-25"), ("long_64k", "2026-11-24")]


def test_table_header_gives_one_range_for_several_processes_ceilings():
    """Tables joined from several CSVs (one benchmark process each) show each ceiling once, as a range."""
    rows = [dict(gpu="G", torch="t", triton="tr", date="2026-12-02", impl="matmul_bf16", fwd_tflops=x)
            for x in ("708.2", "805.9")]
    rows += [dict(gpu="G", torch="t", triton="tr", date="2026-12-02", impl="copy", tb_per_s=x)
             for x in ("4.221", "4.219")]
    line = make_table.header_line(rows)
    assert "bf16 matmul 708-806 TFLOPS" in line and line.count("matmul") == 1
    assert "copy 4.22 TB/s" in line and line.count("copy") == 1


def test_ncu_summary_condenses_raw_and_source_pages(tmp_path):
    """benchmarks/ncu_summary.py on Nsight Compute CSV exports shaped like the real ones (a raw page: header, units,
    one row per kernel; a source page: one row per SASS instruction): the matching kernel's duration and stall
    shares, and the instructions with the most stall samples first."""
    raw = tmp_path / "raw.csv"
    with open(raw, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["ID", "Kernel Name", "gpu__time_duration.sum", "smsp__pcsamp_warps_issue_stalled_long_scoreboard",
                    "smsp__pcsamp_warps_issue_stalled_barrier", "smsp__pcsamp_warps_issue_stalled_barrier_not_issued"])
        w.writerow(["", "", "ms", "", "", ""])
        w.writerow(["0", "other_kernel", "0.03", "5", "5", "1"])
        w.writerow(["1", "_attn_bwd_dkdv_sm90", "4.45", "300", "100", "90"])
    sass = tmp_path / "sass.csv"
    with open(sass, "w", newline="") as fh:
        fh.write('"Kernel Name","_attn_bwd_dkdv_sm90"\n')
        w = csv.writer(fh, quoting=csv.QUOTE_ALL)
        w.writerow(["Address", "Source", "Warp Stall Sampling (All Samples)", "stall_long_sb", "stall_barrier"])
        w.writerow(["0x10", "FMUL R1, R1, 0.25", "30", "28", "2"])
        w.writerow(["0x20", "HGMMA.64x64x16.F32.BF16 R24, gdesc[UR8], R24", "70", "0", "65"])
    res = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "ncu_summary.py"), "--raw", str(raw), "--sass",
                          str(sass), "--kernel", "dkdv"], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    out = res.stdout
    assert "== _attn_bwd_dkdv_sm90" in out and "other_kernel" not in out
    assert "gpu__time_duration.sum = 4.45 ms" in out
    assert "long_scoreboard                   75.0%" in out and "barrier                           25.0%" in out
    lines = [ln.strip() for ln in out.splitlines() if ln.strip().startswith("0x")]
    assert [ln.split()[0] for ln in lines] == ["0x20", "0x10"]
    assert "70.0%" in lines[0] and "stall_barrier=65" in lines[0] and "stall_long_sb=28" in lines[1]


def test_ab_shape_specs():
    """benchmarks/sweep_helpers.parse_shapes: ``head_dim:causal:seqlen[:window[:alibi[:group[:window_right
    [:dropout_percent]]]]]`` at 16K tokens, hidden 2048."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        from sweep_helpers import parse_shapes
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    plain, window, feats = parse_shapes("128:1:8192,64:0:4096:2048,128:1:8192:-1:1:4:0:10")
    assert (plain.head_dim, plain.causal, plain.seqlen, plain.window, plain.dropout) == (128, True, 8192, (-1, -1), 0)
    assert (plain.batch, plain.nheads) == (2, 16)
    assert window.window == (2048, 0) and (window.batch, window.nheads) == (4, 32)
    assert feats.alibi and feats.group == 4 and feats.dropout == 0.1 and feats.window == (-1, -1)


def test_features_csv_rebuilt_from_a_runs_log(tmp_path):
    """``bench_features --from-log``: the CSV that a run cut short by a time limit would have written, from the rows
    it printed. Checked on the committed run w, whose CSV and log both exist: every timing agrees to the log's
    rounding (three decimals), and so every slowdown to about 0.1 percentage point."""
    from flash_attention import bench_features

    log = ROOT / "benchmarks" / "results" / "h200-2026-12-03w-features.log"
    out = tmp_path / "rebuilt.csv"
    assert bench_features.main(["--from-log", str(log), "--out", str(out), "--env", "gpu=NVIDIA H200"]) == 0
    with open(ROOT / "benchmarks" / "results" / "h200-2026-12-03w-features.csv", newline="") as f:
        written = list(csv.DictReader(f))
    with open(out, newline="") as f:
        rebuilt = list(csv.DictReader(f))
    assert len(rebuilt) == len(written) - 1  # the seed layer's example prints no row of its own
    for a, b in zip(written, rebuilt):
        assert (a["name"], a["causal"], a["gpu"]) == (b["name"], b["causal"], b["gpu"])
        for key in ("fwd_ms", "bwd_ms", "fwd_tflops", "bwd_tflops", "fwd_slowdown", "bwd_slowdown"):
            if a[key]:
                tol = 2e-3 if key.endswith("slowdown") else 0
                assert float(b[key]) == pytest.approx(float(a[key]), rel=2e-3, abs=tol), (a["name"], key)


def test_time_ms_spins_up_only_after_idle(monkeypatch):
    """``bench.time_ms`` runs ``fn`` for ``SPIN_UP_S`` when nothing was timed for ``IDLE_S``, and not otherwise."""
    import triton.testing

    calls = []
    monkeypatch.setattr(triton.testing, "do_bench", lambda fn, **k: 1.0)
    monkeypatch.setattr(bench.torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(bench, "_sync", lambda: None)
    monkeypatch.setattr(bench, "SPIN_UP_S", 0.01)
    bench._last_timed[0] = 0.0
    bench.time_ms(lambda: calls.append(1), 1, 1)
    spun = len(calls)
    assert spun > 1  # the first call, then the spin-up
    bench.time_ms(lambda: calls.append(1), 1, 1)
    assert len(calls) == spun + 1  # timed just before: only the first call
