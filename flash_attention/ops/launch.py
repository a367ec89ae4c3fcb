"""Relaunching a compiled kernel without Triton's per-call argument binding.

``kernel[grid](*args)`` specializes every argument (pointer alignment, integers equal to 1 or divisible by 16,
descriptor block shapes and layouts), hashes the result and looks the compiled kernel up, on every call; our
launchers also build host tensor descriptors and check strides on every call. On the H200 machine's host that is
~40-80 us per launch of a Gluon kernel (benchmarks/results/diagnostics/h200-2026-12-02-host-breakdown.log), while a
short attention's whole GPU time is ~100-300 us, and a benchmark (or a training step) waits on it.

A ``Plan`` remembers one launch: the compiled kernel, the grid and every argument, with the tensors (plain or under
a tensor descriptor) marked as slots. ``Plan.launch`` relaunches it with other tensors in those slots, straight
through the compiled kernel's launcher. It is only correct for a call whose specialization is the same, so the
callers keep plans under a key that fixes it: every shape, stride, dtype, scalar argument and configuration switch
that reaches the kernel, and the 16-byte alignment of each tensor. ``FLASH_ATTENTION_PLANS=0`` turns plans off.
"""

from __future__ import annotations

import inspect
import os
from typing import Any, Dict, Hashable, List, Optional, Sequence, Tuple

import torch
from triton import knobs
from triton.runtime.driver import driver

ENABLED = os.environ.get("FLASH_ATTENTION_PLANS", "1") != "0"
MAX_PLANS = 512  # per cache: each distinct shape of a model's attention adds one


class _Desc:
    """What Triton's launcher reads of a host tensor descriptor (base, shape, strides, padding), without the
    validation of building a new ``TensorDescriptor``: the shape and strides are the recorded ones."""

    __slots__ = ("base", "shape", "strides", "padding")

    def __init__(self, base: torch.Tensor, shape: List[int], strides: List[int], padding: str) -> None:
        self.base, self.shape, self.strides, self.padding = base, shape, strides, padding


def _is_descriptor(a: Any) -> bool:
    return hasattr(a, "block_shape") and hasattr(a, "base") and isinstance(a.base, torch.Tensor)


class Plan:
    """A recorded launch of one compiled kernel whose tensors can be swapped (see the module docstring)."""

    __slots__ = ("kernel", "grid", "values", "slots", "device", "roles")

    def __init__(self, kernel: Any, grid: Tuple[int, int, int], values: List[Any],
                 slots: List[Tuple[int, str, Optional[Tuple[List[int], List[int], str]]]], device: int) -> None:
        self.kernel, self.grid, self.values, self.slots, self.device = kernel, grid, values, slots, device
        self.roles = frozenset(role for _, role, _ in slots)

    def uses(self, role: str) -> bool:
        """Whether the recorded launch has a slot for the tensor of ``role``."""
        return role in self.roles

    def launch(self, tensors: Dict[str, torch.Tensor]) -> None:
        """Relaunch with the tensors of this call by role (the names given to ``launch``); each must match the
        recorded one in shape, strides, dtype and alignment, which the caller's key guarantees."""
        values = list(self.values)
        for pos, role, desc in self.slots:
            t = tensors[role]
            values[pos] = t if desc is None else _Desc(t, *desc)
        kernel = self.kernel
        stream = driver.active.get_current_stream(self.device)
        enter, leave = knobs.runtime.launch_enter_hook, knobs.runtime.launch_exit_hook
        if enter.calls or leave.calls:  # a profiler's hooks: as the JIT calls them
            meta = kernel.launch_metadata(self.grid, stream, *values)
        else:
            meta = enter = leave = None
        kernel.run(*self.grid, stream, kernel.function, kernel.packed_metadata, meta, enter, leave, *values)


def launch(jitfn: Any, grid: Tuple[int, ...], args: Sequence[Any], kwargs: Dict[str, Any],
           roles: Optional[Dict[str, torch.Tensor]] = None) -> Optional[Plan]:
    """Launch ``jitfn[grid](*args, **kwargs)`` through the JIT. With ``roles`` (name -> tensor, every tensor the
    arguments hold, directly or under a descriptor), also return the launch's ``Plan``: None when plans are off,
    when two roles are the same tensor (a relaunch could not tell them apart), when an argument holds a tensor
    of no role, or when this Triton's compiled kernels lack what a plan needs."""
    kernel = jitfn[grid](*args, **kwargs)
    if roles is None or not ENABLED or kernel is None:
        return None
    try:
        if len({id(t) for t in roles.values()}) != len(roles):
            return None
        role_of = {id(t): name for name, t in roles.items()}
        if hasattr(kernel, "result"):
            kernel = kernel.result()
        sig = inspect.signature(jitfn.fn)
        bound = sig.bind(*args, **{k: v for k, v in kwargs.items() if k in sig.parameters})
        bound.apply_defaults()
        values = list(bound.arguments.values())
        slots: List[Tuple[int, str, Optional[Tuple[List[int], List[int], str]]]] = []
        for pos, a in enumerate(values):
            if isinstance(a, torch.Tensor):
                slots.append((pos, role_of[id(a)], None))
            elif _is_descriptor(a):
                desc = ([int(x) for x in a.shape], [int(x) for x in a.strides], a.padding)
                slots.append((pos, role_of[id(a.base)], desc))
            else:
                continue
            values[pos] = None  # the plan must not keep this call's tensors alive
        kernel.run, kernel.function, kernel.packed_metadata  # noqa: B018 -- loads the module; fails early if absent
        full = (tuple(grid) + (1, 1))[:3]
        return Plan(kernel, full, values, slots, driver.active.get_current_device())
    except Exception:  # a tensor of no role, or a Triton whose internals differ: keep the JIT path
        return None


class PlanCache:
    """Plans (or tuples of them) by key, bounded (the oldest is dropped when full)."""

    def __init__(self) -> None:
        self.plans: Dict[Hashable, Any] = {}

    def get(self, key: Hashable) -> Any:
        return self.plans.get(key) if ENABLED else None

    def put(self, key: Hashable, plan: Any) -> None:
        if plan is None or not ENABLED:
            return
        if len(self.plans) >= MAX_PLANS:
            self.plans.pop(next(iter(self.plans)))
        self.plans[key] = plan

    def clear(self) -> None:
        self.plans.clear()
