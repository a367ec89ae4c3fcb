"""Context-parallel ring attention and the sharded seed layer.

The chunk-pair math is checked in one process (``simulate_ring``: every rank's work without transport, against the
float64 reference, for the kernels under the interpreter and the CPU path); the ring itself runs in 2 and 4
processes over gloo (``torch.multiprocessing`` spawn), forward and backward, both layouts, against the reference
and the single-device result (``flash_attention.parallel.checks``).
"""

import pytest
import torch
import torch.multiprocessing as mp

from flash_attention.parallel import layout as lay
from flash_attention.parallel.checks import LayerCase, RingCase, check_simulated_ring, default_cases, run_checks
from flash_attention.parallel.ring import pair_visible


@pytest.mark.parametrize("world", [1, 2, 3, 4])
@pytest.mark.parametrize("layout", lay.LAYOUTS)
def test_shard_unshard_roundtrip(world, layout):
    x = torch.arange(2 * 8 * world * 3).reshape(2, 8 * world, 3)
    shards = [lay.shard_sequence(x, r, world, layout) for r in range(world)]
    assert torch.equal(lay.unshard_sequence(shards, layout), x)
    for r, s in enumerate(shards):  # the chunks say where each local token sits globally
        for c in lay.chunks_of(r, world, s.shape[1], layout):
            assert torch.equal(s[:, c.local_start:c.local_start + c.length],
                               x[:, c.global_start:c.global_start + c.length])
    starts = sorted(c.global_start for r in range(world) for c in lay.chunks_of(r, world, 8, layout))
    assert starts == [i * (8 if layout == "contiguous" else 4) for i in range(lay.num_chunks(world, layout))]


def test_layout_errors():
    with pytest.raises(ValueError, match="divisible by 4"):
        lay.shard_sequence(torch.zeros(1, 10, 2), 0, 2, "zigzag")
    with pytest.raises(ValueError, match="layout must be one of"):
        lay.chunks_of(0, 2, 8, "striped")
    with pytest.raises(ValueError, match="even number"):
        lay.chunks_of(0, 2, 7, "zigzag")


def test_zigzag_balances_causal_work():
    """Visible (query, key) pairs per rank under a causal mask: zigzag is even, contiguous is not."""
    world, local = 4, 8

    def work(layout):
        out = []
        for r in range(world):
            n = 0
            for qc in lay.chunks_of(r, world, local, layout):
                for i in range(qc.global_start, qc.global_start + qc.length):
                    n += i + 1
            out.append(n)
        return out

    assert len(set(work("zigzag"))) == 1
    assert work("contiguous")[-1] > 5 * work("contiguous")[0]


def test_pair_visibility():
    a, b = lay.Chunk(0, 0, 8, 0), lay.Chunk(0, 8, 8, 1)
    assert pair_visible(b, a, True, (-1, -1)) and not pair_visible(a, b, True, (-1, -1))
    assert pair_visible(a, b, False, (-1, -1)) and not pair_visible(a, b, False, (-1, 0))
    assert not pair_visible(b, a, True, (0, 0)) and pair_visible(b, a, True, (1, 0))


SIM = [  # (world, layout, causal, window, alibi, softcap, dropout)
    (2, "contiguous", False, (-1, -1), False, 0.0, 0.0),
    (2, "zigzag", True, (-1, -1), False, 0.0, 0.0),
    (3, "contiguous", True, (10, 0), True, 0.0, 0.0),
    (3, "zigzag", False, (6, 9), True, 4.0, 0.0),
    (4, "zigzag", True, (-1, -1), True, 0.0, 0.0),
    (2, "zigzag", True, (-1, -1), False, 0.0, 0.25),
]


@pytest.mark.parametrize("world,layout,causal,window,alibi,softcap,dropout", SIM)
def test_simulated_ring_matches_reference(backend, world, layout, causal, window, alibi, softcap, dropout):
    """Every rank's chunk pairs, merged through lse, equal full attention (forward and gradients)."""
    check_simulated_ring(world, layout, causal, window, alibi, softcap, dropout, torch.float32, backend)


def _spawn(world, cases, tmp_path):
    mp.spawn(run_checks, args=(world, f"file://{tmp_path / 'store'}", "gloo", cases), nprocs=world, join=True)


@pytest.mark.parametrize("world", [2, 4])
def test_ring_gloo(world, tmp_path):
    """The real ring: batch_isend_irecv over gloo, forward and backward, every default case."""
    _spawn(world, default_cases(world), tmp_path)


def test_ring_check_catches_a_wrong_result(tmp_path, monkeypatch):
    """The distributed check fails when the ring's result is wrong (here: one chunk pair's merge is dropped)."""
    import torch.distributed as dist

    from flash_attention.parallel import checks, ring

    real = ring.merge_partial
    calls = []

    def lossy(out_acc, lse_acc, out, lse, rows):
        calls.append(1)
        if len(calls) != 2:
            real(out_acc, lse_acc, out, lse, rows)

    monkeypatch.setattr(ring, "merge_partial", lossy)
    monkeypatch.setenv("GLOO_SOCKET_IFNAME", "lo")
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1)
    try:
        with pytest.raises(AssertionError, match="out"):
            checks.check_ring_case(RingCase(seqlen=32, layout="zigzag"), torch.device("cpu"))
    finally:
        dist.destroy_process_group()


def test_layer_dp_mp_cp_gloo(tmp_path):
    """The seed layer over 4 ranks: dp x mp, mp x cp and cp alone, local shards and DTensors, vs the full layer."""
    cases = [LayerCase(dp=2, mp=2, cp=1, alibi=True), LayerCase(dp=1, mp=2, cp=2, alibi=True),
             LayerCase(dp=1, mp=1, cp=4, extra={"cp_layout": "contiguous"}),
             LayerCase(dp=2, mp=2, cp=1, dtensor=True), LayerCase(dp=1, mp=2, cp=2, dtensor=True)]
    _spawn(4, cases, tmp_path)
