"""Launch plans (ops/launch.py) on the CPU: recording and relaunching against a stand-in JIT function and compiled
kernel, so the slot bookkeeping is checked without a GPU (tests/st/test_gpu_plans.py runs the real kernels)."""

import gc
import weakref
from types import SimpleNamespace
from unittest import mock

import pytest
import torch
from triton.tools.tensor_descriptor import TensorDescriptor

from flash_attention.ops import launch


def _kernel_fn(X, XDesc, Y, n, scale, BLOCK: int = 16):  # the stand-in kernel's signature
    pass


class FakeKernel:
    function = "fn"
    packed_metadata = "meta"

    def __init__(self):
        self.calls = []

    def run(self, *args):
        self.calls.append(args)

    def launch_metadata(self, grid, stream, *args):
        return "launch-metadata"


class FakeJIT:
    fn = staticmethod(_kernel_fn)

    def __init__(self):
        self.kernel = FakeKernel()
        self.jit_calls = 0

    def __getitem__(self, grid):
        def call(*args, **kwargs):
            self.jit_calls += 1
            return self.kernel
        return call


@pytest.fixture
def fake_driver():
    active = SimpleNamespace(get_current_device=lambda: 0, get_current_stream=lambda device: 1234)
    with mock.patch.object(launch, "driver", SimpleNamespace(active=active)):
        yield


def _args(x, y):
    desc = TensorDescriptor(y, list(y.shape), list(y.stride()), [1, 16])
    return (x, desc, y, 7, 0.5), dict(BLOCK=16, num_warps=4)


def test_record_and_relaunch_swaps_tensors(fake_driver):
    jit = FakeJIT()
    x, y = torch.randn(4, 16), torch.randn(8, 32)
    args, kwargs = _args(x, y)
    plan = launch.launch(jit, (3, 2), args, kwargs, roles={"x": x, "y": y})
    assert jit.jit_calls == 1 and plan is not None
    x2, y2 = torch.randn(4, 16), torch.randn(8, 32)
    plan.launch({"x": x2, "y": y2})
    assert jit.jit_calls == 1  # not through the JIT
    grid_x, grid_y, grid_z, stream, function, meta, launch_meta, enter, leave, *values = jit.kernel.calls[-1]
    assert (grid_x, grid_y, grid_z, stream, function, meta) == (3, 2, 1, 1234, "fn", "meta")
    assert launch_meta is None and enter is None and leave is None  # no profiler hooks installed
    assert values[0] is x2 and values[2] is y2 and values[3:] == [7, 0.5, 16]
    desc = values[1]
    assert desc.base is y2 and desc.shape == [8, 32] and desc.strides == [32, 1] and desc.padding == "zero"
    assert plan.uses("x") and plan.uses("y") and not plan.uses("sched")


def test_plan_keeps_no_tensor_alive(fake_driver):
    jit = FakeJIT()
    x, y = torch.randn(4, 16), torch.randn(8, 32)
    args, kwargs = _args(x, y)
    plan = launch.launch(jit, (1,), args, kwargs, roles={"x": x, "y": y})
    ref = weakref.ref(y)
    del x, y, args
    gc.collect()
    assert plan is not None and ref() is None


def test_no_plan_for_aliased_or_unknown_tensors(fake_driver):
    jit = FakeJIT()
    x = torch.randn(8, 32)
    args, kwargs = _args(x, x)
    assert launch.launch(jit, (1,), args, kwargs, roles={"x": x, "y": x}) is None  # one tensor, two roles
    y = torch.randn(8, 32)
    args, kwargs = _args(x, y)
    assert launch.launch(jit, (1,), args, kwargs, roles={"x": x}) is None  # y has no role
    assert launch.launch(jit, (1,), args, kwargs) is None  # no roles: a plain launch
    assert jit.jit_calls == 3


def test_plans_off(fake_driver):
    jit = FakeJIT()
    x, y = torch.randn(4, 16), torch.randn(8, 32)
    args, kwargs = _args(x, y)
    cache = launch.PlanCache()
    with mock.patch.object(launch, "ENABLED", False):
        assert launch.launch(jit, (1,), args, kwargs, roles={"x": x, "y": y}) is None
        cache.put("k", "plan")
        assert cache.get("k") is None
    assert jit.jit_calls == 1


def test_profiler_hooks_get_launch_metadata(fake_driver):
    from triton import knobs

    jit = FakeJIT()
    x, y = torch.randn(4, 16), torch.randn(8, 32)
    args, kwargs = _args(x, y)
    plan = launch.launch(jit, (1,), args, kwargs, roles={"x": x, "y": y})
    seen = []
    knobs.runtime.launch_enter_hook.add(seen.append)
    try:
        plan.launch({"x": x, "y": y})
    finally:
        knobs.runtime.launch_enter_hook.remove(seen.append)
    _, _, _, _, _, _, launch_meta, enter, _, *_ = jit.kernel.calls[-1]
    assert launch_meta == "launch-metadata" and enter is knobs.runtime.launch_enter_hook


def test_cache_is_bounded():
    cache = launch.PlanCache()
    with mock.patch.object(launch, "MAX_PLANS", 3):
        for i in range(5):
            cache.put(i, f"plan{i}")
    assert list(cache.plans) == [2, 3, 4]  # the oldest went first
    cache.put("none", None)
    assert "none" not in cache.plans


def test_tl_forward_plan_key_covers_only_calls_without_their_own_tensors(monkeypatch):
    """``forward.tl_plan_key``: off unless ``configs.TL_FORWARD_PLANS``; None for ALiBi, bias, mask, dropout and packed
    sequences (tensors or a seed of their own per call); otherwise it changes with what fixes the launch."""
    import torch

    from flash_attention.features import Features
    from flash_attention.ops import configs, forward

    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    q = torch.randn(2, 100, 4, 64)
    f = Features(0.125, True)
    assert forward.tl_plan_key(q, q, q, f) is None  # off by default until measured
    monkeypatch.setattr(configs, "TL_FORWARD_PLANS", True)
    key = forward.tl_plan_key(q, q, q, f)
    assert key is not None and key == forward.tl_plan_key(q, q, q, Features(0.125, True))
    assert key != forward.tl_plan_key(q, q, q, Features(0.125, False))
    assert key != forward.tl_plan_key(q, q, q, Features(0.125, True, softcap=20.0))
    assert key != forward.tl_plan_key(q[:, :50], q[:, :50], q[:, :50], f)
    monkeypatch.setattr(configs, "ONE_LOOP", not configs.ONE_LOOP)
    assert key != forward.tl_plan_key(q, q, q, f)
    for own in (dict(alibi_slopes=torch.ones(4)), dict(attn_bias=torch.zeros(1)), dict(dropout_p=0.1),
                dict(attn_mask=torch.ones(1, dtype=torch.bool)),
                dict(cu_seqlens_q=torch.zeros(3, dtype=torch.int32))):
        assert forward.tl_plan_key(q, q, q, Features(0.125, True, **own)) is None, own
