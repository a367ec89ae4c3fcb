"""Helpers shared by the sweep, A/B and diagnosis scripts in benchmarks/: shape specs
(``head_dim:causal:seqlen[:window[:alibi[:group[:window_right[:dropout_percent]]]]]`` at 16K tokens and hidden
2048, as in the benchmark grid), SDPA anchor timings in the same process, and the CSV writer."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import torch

from flash_attention.features import Features


@dataclass(frozen=True)
class AbShape:
    head_dim: int
    causal: bool
    seqlen: int
    window: Tuple[int, int]
    alibi: bool = False
    group: int = 1  # query heads per key/value head (GQA)
    dropout: float = 0.0

    @property
    def batch(self) -> int:
        return 16384 // self.seqlen

    @property
    def nheads(self) -> int:
        return 2048 // self.head_dim

    def features(self) -> Features:
        slopes = None
        if self.alibi:  # the usual geometric slopes, float32 as flash_attn takes them
            slopes = torch.tensor([2.0 ** (-8.0 * (h + 1) / self.nheads) for h in range(self.nheads)],
                                  device="cuda", dtype=torch.float32)
        return Features(self.head_dim ** -0.5, self.causal, window_size=self.window, alibi_slopes=slopes,
                        dropout_p=self.dropout, seed=1234, offset=0)

    def fwd_flops(self) -> float:
        """Forward flops of the visible pairs: causal halves them, a window keeps ~left + right + 1 keys per query
        (edges ignored)."""
        s = self.seqlen
        if self.window[0] >= 0:
            frac = min(self.window[0] + max(self.window[1], 0) + 1, s) / s
        else:
            frac = 0.5 if self.causal else 1.0
        return 4.0 * self.batch * self.nheads * s * s * self.head_dim * frac

    def randn(self, n: int, dtype: torch.dtype = torch.bfloat16) -> List[torch.Tensor]:
        """``n`` tensors of shape (batch, seqlen, nheads, head_dim) on the GPU, seeded; with GQA the second and
        third (k, v) have ``nheads // group`` heads."""
        torch.manual_seed(0)
        return [torch.randn(self.batch, self.seqlen, self.nheads // (self.group if i in (1, 2) else 1),
                            self.head_dim, device="cuda", dtype=dtype) for i in range(n)]


def parse_shapes(text: str) -> List[AbShape]:
    out = []
    for spec in text.split(","):
        parts = [int(x) for x in spec.split(":")]
        window = (parts[3], parts[6] if len(parts) > 6 else 0) if len(parts) > 3 and parts[3] >= 0 else (-1, -1)
        out.append(AbShape(parts[0], bool(parts[1]), parts[2], window, len(parts) > 4 and bool(parts[4]),
                           parts[5] if len(parts) > 5 else 1, parts[7] / 100 if len(parts) > 7 else 0.0))
    return out


def write_csv(path: str, rows: Sequence[Dict[str, Any]]) -> None:
    """One CSV per script run; the columns are the union of the rows' keys, in first-seen order."""
    fields: List[str] = []
    for row in rows:
        fields += [k for k in row if k not in fields]
    with open(path, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=fields)
        w.writeheader()
        w.writerows(rows)


def sdpa_anchor_ms(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, grad: torch.Tensor, causal: bool,
                   backend: Any, bench: Callable[[Callable[[], Any]], float],
                   with_backward: bool = True) -> Tuple[float, Optional[float]]:
    """``(forward ms, forward+backward ms)`` of SDPA restricted to ``backend`` on (batch, heads, seqlen, head_dim)
    tensors as given (leaves with ``requires_grad``), timed by ``bench``; the second is None without backward."""
    from torch.nn.attention import sdpa_kernel

    with sdpa_kernel(backend):
        def fwd() -> torch.Tensor:
            return torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=causal)

        t_f = bench(fwd)
        t_fb = bench(lambda: torch.autograd.grad(fwd(), (q, k, v), grad)) if with_backward else None
    return t_f, t_fb


def graphed(fn: Callable[[], Any]) -> Callable[[], None]:
    """``fn`` captured once in a CUDA graph (after three calls on a side stream, as capture requires); the result
    replays it. Raises where ``fn`` cannot be captured."""
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        for _ in range(3):
            fn()
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        fn()
    return graph.replay


def forward_pair(sh: AbShape) -> Tuple[Dict[str, Callable[[], Any]], float]:
    """Our public forward and SDPA's cuDNN forward on the same bf16 inputs of ``sh`` (the anchor on contiguous
    (batch, heads, seqlen, head_dim) copies, its preferred layout), each called once; and the forward flops."""
    from flash_attention.interface import flash_attn_func
    from torch.nn.attention import SDPBackend, sdpa_kernel

    q, k, v = sh.randn(3, torch.bfloat16)
    qt, kt, vt = (x.transpose(1, 2).contiguous() for x in (q, k, v))

    def cudnn() -> torch.Tensor:
        with sdpa_kernel(SDPBackend.CUDNN_ATTENTION):
            return torch.nn.functional.scaled_dot_product_attention(qt, kt, vt, is_causal=sh.causal)

    fns: Dict[str, Callable[[], Any]] = {"ours": lambda: flash_attn_func(q, k, v, causal=sh.causal), "cudnn": cudnn}
    for fn in fns.values():
        fn()
    torch.cuda.synchronize()
    return fns, sh.fwd_flops()
