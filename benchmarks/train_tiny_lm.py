"""Train a small random-init Llama twice, under transformers' sdpa and under our kernels, and compare the loss curves.

Both runs start from the same weights and see the same batches in the same order, so their curves should lie on
top of each other (up to bf16 rounding); the per-step times compare the two attention implementations inside a
real training step (attention is only part of it).

The synthetic task has two stages, so the curve shows both: every sequence is a block of ``period`` tokens (drawn
per sequence) repeated to the full length, and each block is a walk on a fixed random Markov chain where every
token has 4 possible successors. Learning the chain (embeddings/MLP) brings the loss from ln(vocab) towards
ln(4); copying from one period back (an induction head: needs attention) brings the tokens after the first block
towards 0, so the loss heads for ``loss_floor()``.

    python benchmarks/train_tiny_lm.py --out-csv results/train.csv --out-png results/train.png    # GPU
    python benchmarks/train_tiny_lm.py --device cpu --tiny --steps 5 --out-csv /tmp/t.csv --out-png /tmp/t.png
"""

from __future__ import annotations

import argparse
import copy
import csv
import math
import os
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional, Tuple

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # random init only: never reach for the hub

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing
from flash_attention.integrations.transformers import register  # noqa: E402

FULL = dict(hidden=512, heads=8, kv_heads=4, layers=4, seq=1024, batch=8, vocab=256)
BRANCHES = 4  # successors per token in the Markov chain that draws each block
MIN_PERIOD = 4
TINY = dict(hidden=64, heads=4, kv_heads=2, layers=2, seq=64, batch=4, vocab=64)


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--device", default="cuda", help="cuda (default), cuda:N, or cpu (with --tiny, a smoke test)")
    p.add_argument("--tiny", action="store_true", help="a toy model and sequence length, for a CPU smoke test")
    p.add_argument("--impls", default="sdpa,ours",
                   help="comma-separated attn implementations; 'ours' is this package's registered backend")
    p.add_argument("--lr", type=float, default=3e-4)
    p.add_argument("--warmup", type=int, default=30, help="linear warmup steps, then cosine decay to 10%%")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--dtype", choices=["bf16-autocast", "bf16", "fp32"], default="bf16-autocast",
                   help="bf16-autocast: fp32 weights and optimizer, bf16 matmuls/attention; bf16: bf16 weights")
    p.add_argument("--padding", action="store_true",
                   help="right-pad each sequence to a random length in [seq/2, seq] (exercises the mask path)")
    for key in FULL:
        p.add_argument(f"--{key.replace('_', '-')}", type=int, default=None,
                       help=f"default {FULL[key]} ({TINY[key]} with --tiny)")
    p.add_argument("--out-csv", type=Path, default=Path("train_tiny_lm.csv"))
    p.add_argument("--out-png", type=Path, default=Path("train_tiny_lm.png"))
    args = p.parse_args(argv)
    sizes = TINY if args.tiny else FULL
    for key, default in sizes.items():
        if getattr(args, key) is None:
            setattr(args, key, default)
    return args


def check_device(args: argparse.Namespace) -> torch.device:
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        sys.exit("error: --device cuda but CUDA is not available (torch "
                 f"{torch.__version__}); for a CPU smoke test run with --device cpu --tiny --steps 5")
    if device.type == "cpu" and not args.tiny:
        print("warning: the full-size model on CPU is very slow; add --tiny for a smoke test", file=sys.stderr)
    return device


def successor_table(args: argparse.Namespace) -> torch.Tensor:
    """The fixed ``(vocab, BRANCHES)`` table of allowed next tokens of the Markov chain that draws the blocks."""
    g = torch.Generator().manual_seed(args.seed + 12345)
    return torch.randint(0, args.vocab, (args.vocab, BRANCHES), generator=g)


def make_batch(step: int, args: argparse.Namespace, successors: torch.Tensor
               ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Batch ``step`` of the copy task: (input_ids, attention_mask, labels), identical for every implementation."""
    g = torch.Generator().manual_seed(args.seed * 1_000_003 + step)
    periods = torch.randint(MIN_PERIOD, max_period(args) + 1, (args.batch,), generator=g)
    # One Markov walk per row, long enough for the longest block; row b uses its first periods[b] tokens.
    walk = torch.empty(args.batch, int(periods.max()), dtype=torch.long)
    walk[:, 0] = torch.randint(0, args.vocab, (args.batch,), generator=g)
    branch = torch.randint(0, BRANCHES, walk.shape, generator=g)
    for t in range(1, walk.shape[1]):
        walk[:, t] = successors[walk[:, t - 1], branch[:, t]]
    ids = torch.empty(args.batch, args.seq, dtype=torch.long)
    for b, period in enumerate(periods.tolist()):
        ids[b] = walk[b, :period].repeat(math.ceil(args.seq / period))[: args.seq]
    mask = torch.ones_like(ids)
    if args.padding:
        lengths = torch.randint(args.seq // 2, args.seq + 1, (args.batch,), generator=g)
        mask = (torch.arange(args.seq)[None, :] < lengths[:, None]).long()
        ids = ids.masked_fill(mask == 0, 0)
    labels = ids.masked_fill(mask == 0, -100)  # transformers shifts labels itself
    return ids, mask, labels


def max_period(args: argparse.Namespace) -> int:
    return max(2 * MIN_PERIOD, args.seq // 8)


def loss_floor(args: argparse.Namespace) -> float:
    """Loss of a perfect model: the first block costs ln(BRANCHES) per token (its first token ln(vocab), but that
    one is never a label), every later token is a copy."""
    mean_period = (MIN_PERIOD + max_period(args)) / 2
    return math.log(BRANCHES) * (mean_period - 1) / (args.seq - 1)


def build_config(args: argparse.Namespace, attn_name: str = "sdpa"):
    from transformers import LlamaConfig

    return LlamaConfig(
        attn_implementation=attn_name,
        vocab_size=args.vocab, hidden_size=args.hidden, intermediate_size=int(args.hidden * 8 / 3) // 64 * 64 or 64,
        num_hidden_layers=args.layers, num_attention_heads=args.heads, num_key_value_heads=args.kv_heads,
        max_position_embeddings=args.seq, attention_dropout=0.0, tie_word_embeddings=False,
    )


def lr_at(step: int, args: argparse.Namespace) -> float:
    if step < args.warmup:
        return args.lr * (step + 1) / args.warmup
    progress = (step - args.warmup) / max(1, args.steps - args.warmup)
    return args.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress))))


def train(impl: str, attn_name: str, init_state: Dict[str, torch.Tensor], args: argparse.Namespace,
          device: torch.device) -> List[dict]:
    from transformers import LlamaForCausalLM

    model = LlamaForCausalLM(build_config(args, attn_name))
    model.load_state_dict(init_state)
    if args.dtype == "bf16":
        model = model.to(torch.bfloat16)
    model = model.to(device).train()
    assert model.config._attn_implementation == attn_name, model.config._attn_implementation
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, betas=(0.9, 0.95), weight_decay=0.1,
                            fused=device.type == "cuda")
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=args.dtype == "bf16-autocast")
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    successors = successor_table(args)
    rows = []
    for step in range(args.steps):
        ids, mask, labels = (t.to(device, non_blocking=True) for t in make_batch(step, args, successors))
        for group in opt.param_groups:
            group["lr"] = lr_at(step, args)
        sync()
        start = time.perf_counter()
        with autocast:
            loss = model(input_ids=ids, attention_mask=mask if args.padding else None, labels=labels).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        sync()
        step_ms = (time.perf_counter() - start) * 1e3
        value = loss.item()
        if not math.isfinite(value):
            raise RuntimeError(f"{impl}: loss is {value} at step {step}")
        rows.append(dict(step=step, impl=impl, loss=value, step_ms=step_ms))
        if step % max(1, args.steps // 10) == 0 or step == args.steps - 1:
            print(f"{impl:>5} step {step:4d}  loss {value:.4f}  {step_ms:7.1f} ms", flush=True)
    del model, opt
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return rows


def write_csv(rows: List[dict], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["step", "impl", "loss", "step_ms"])
        writer.writeheader()
        for r in rows:
            writer.writerow(dict(r, loss=f"{r['loss']:.6f}", step_ms=f"{r['step_ms']:.3f}"))


def plot(runs: Dict[str, List[dict]], args: argparse.Namespace, device_name: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax, ax_diff) = plt.subplots(2, 1, figsize=(8, 7), sharex=True, gridspec_kw=dict(height_ratios=[3, 1]))
    for impl, rows in runs.items():
        ax.plot([r["step"] for r in rows], [r["loss"] for r in rows], label=impl, lw=1.2, alpha=0.85)
    floor = loss_floor(args)
    ax.axhline(floor, color="grey", ls=":", lw=1, label=f"task floor ≈ {floor:.2f} (no padding)")
    ax.set_ylabel("training loss")
    ax.set_title(f"Llama {args.layers}L h{args.hidden} {args.heads}q/{args.kv_heads}kv heads, seq {args.seq}, "
                 f"batch {args.batch}, {args.dtype}\n{device_name}", fontsize=10)
    ax.legend()
    ax.grid(alpha=0.3)
    impls = list(runs)
    if len(impls) >= 2:
        base = runs[impls[0]]
        for impl in impls[1:]:
            diff = [r["loss"] - b["loss"] for r, b in zip(runs[impl], base)]
            ax_diff.plot([r["step"] for r in base], diff, lw=1, label=f"{impl} − {impls[0]}")
        ax_diff.axhline(0, color="grey", lw=0.8)
        ax_diff.legend(fontsize=8)
    ax_diff.set_xlabel("step")
    ax_diff.set_ylabel("loss difference")
    ax_diff.grid(alpha=0.3)
    fig.tight_layout()
    args.out_png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out_png, dpi=120)
    plt.close(fig)


def summarize(runs: Dict[str, List[dict]]) -> None:
    for impl, rows in runs.items():
        last = rows[-min(10, len(rows)):]
        # the first steps include Triton compilation and allocator warm-up
        times = sorted(r["step_ms"] for r in rows[min(10, len(rows) // 2):])
        print(f"{impl:>5}: final loss (mean of last {len(last)}) {sum(r['loss'] for r in last) / len(last):.4f}, "
              f"median step {times[len(times) // 2]:.1f} ms")
    impls = list(runs)
    for impl in impls[1:]:
        diffs = [abs(a["loss"] - b["loss"]) for a, b in zip(runs[impl], runs[impls[0]])]
        print(f"max |loss({impl}) - loss({impls[0]})| over {len(diffs)} steps: {max(diffs):.4g}")


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    device = check_device(args)
    ours = register()
    names = {"ours": ours}
    impls = [s.strip() for s in args.impls.split(",") if s.strip()]

    from transformers import LlamaForCausalLM

    torch.manual_seed(args.seed)
    init_state = copy.deepcopy(LlamaForCausalLM(build_config(args)).state_dict())
    device_name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    import transformers

    print(f"{device_name}, torch {torch.__version__}, transformers {transformers.__version__}; "
          f"{args.steps} steps per implementation", flush=True)

    runs = {impl: train(impl, names.get(impl, impl), init_state, args, device) for impl in impls}
    write_csv([r for rows in runs.values() for r in rows], args.out_csv)
    plot(runs, args, device_name)
    summarize(runs)
    print(f"wrote {args.out_csv} and {args.out_png}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
