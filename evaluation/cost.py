"""What a network costs: FLOPs, parameters, latency.

FLOPs are counted by ``torch.utils.flop_counter.FlopCounterMode`` (2 x multiply-adds for
convolutions and matrix products; element-wise ops, normalisation, pooling and
``F.interpolate`` count 0). Two additions make the count fit dynamic cells:

- ``grid_sample`` (the learned warp) is counted: each output element of a bilinear sample is a
  weighted sum of 4 input values, i.e. 4 multiply-adds, so FLOPs = 2 x 4 x N x C x H_out x
  W_out (bicubic: 16 taps; nearest: 0, a copy). The coordinate arithmetic is not counted.
- a gated module computes its ``sparse_branch`` only on a share of pixels: FLOPs counted inside
  ``module.sparse_branch`` are multiplied by ``module.last_density`` (set by its forward).
"""

from __future__ import annotations

import statistics
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from math import prod
from typing import Any

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

aten = torch.ops.aten

_GRID_SAMPLE_TAPS = {0: 4, 1: 0, 2: 16}  # interpolation_mode: bilinear, nearest, bicubic


def _grid_sampler_2d_flop(input_shape, grid_shape, mode, *args, out_shape, **kwargs) -> int:
    return 2 * _GRID_SAMPLE_TAPS[int(mode)] * prod(out_shape)


def _cudnn_grid_sampler_flop(input_shape, grid_shape, *args, out_shape, **kwargs) -> int:
    return 2 * _GRID_SAMPLE_TAPS[0] * prod(out_shape)  # cuDNN samples bilinearly only


_EXTRA_FORMULAS = {
    aten.grid_sampler_2d: _grid_sampler_2d_flop,
    aten.cudnn_grid_sampler: _cudnn_grid_sampler_flop,
}


@dataclass
class CostReport:
    """FLOPs of one call, in GFLOPs (1e9 FLOPs, FLOPs = 2 x multiply-adds)."""

    gflops: float
    """Total after scaling each gated module's sparse branch by its density."""
    dense_gflops: float
    """Total as if every gated module computed every pixel."""
    by_module: dict[str, float] = field(default_factory=dict)
    """Density-scaled GFLOPs of each top-level child (only when a module was measured), or
    of each part named to ``count_flops_of_parts``."""
    dense_by_module: dict[str, float] = field(default_factory=dict)
    """The same, as if every gated module computed every pixel."""
    by_op: dict[str, float] = field(default_factory=dict)
    """Dense GFLOPs per aten op, e.g. ``convolution``."""
    densities: dict[str, float] = field(default_factory=dict)
    """Density each gated module reported (its last call), keyed by module name."""


def _is_gated(module: nn.Module) -> bool:
    return isinstance(getattr(module, "sparse_branch", None), nn.Module) and hasattr(
        module, "last_density"
    )


class _Tally:
    """Forward hooks that attribute the counter's running total to modules.

    A gated module's sparse-branch FLOPs are settled in the gated module's own post-hook, when
    ``last_density`` holds the density of that very call.
    """

    def __init__(self, counter: FlopCounterMode) -> None:
        self.counter = counter
        self.saved = 0.0  # FLOPs the gated modules skipped
        self.gated: dict[str, nn.Module] = {}
        self.pending: dict[str, float] = defaultdict(float)  # sparse FLOPs not yet settled
        self.branch_starts: dict[str, int] = {}
        self.child_starts: dict[str, tuple[int, float]] = {}
        self.by_module: dict[str, float] = defaultdict(float)
        self.dense_by_module: dict[str, float] = defaultdict(float)
        self.densities: dict[str, float] = {}
        self.handles: list[Any] = []

    def _total(self) -> int:
        return self.counter.get_total_flops()

    def watch_gated(self, name: str, gated: nn.Module) -> None:
        self.gated[name] = gated

        def branch_pre(*_: Any) -> None:
            self.branch_starts[name] = self._total()

        def branch_post(*_: Any) -> None:
            self.pending[name] += self._total() - self.branch_starts.pop(name)

        self.handles += [
            gated.sparse_branch.register_forward_pre_hook(branch_pre),
            gated.sparse_branch.register_forward_hook(branch_post),
            gated.register_forward_hook(lambda *_: self.settle(name)),
        ]

    def settle(self, name: str) -> None:
        density = float(self.gated[name].last_density)
        if not 0.0 <= density <= 1.0:
            raise ValueError(f"{name}.last_density must lie in [0, 1], got {density}")
        self.saved += (1.0 - density) * self.pending.pop(name, 0.0)
        self.densities[name] = density

    def watch_child(self, name: str, child: nn.Module) -> None:
        def pre(*_: Any) -> None:
            self.child_starts[name] = (self._total(), self.saved)

        def post(*_: Any) -> None:
            flops, saved = self.child_starts.pop(name)
            self.dense_by_module[name] += self._total() - flops
            self.by_module[name] += (self._total() - flops) - (self.saved - saved)

        self.handles += [child.register_forward_pre_hook(pre), child.register_forward_hook(post)]


def _root_module(fn_or_module: Callable[..., Any]) -> nn.Module | None:
    """The module whose submodules we can see: the module itself, or the owner of a bound
    method such as ``net.step``."""
    if isinstance(fn_or_module, nn.Module):
        return fn_or_module
    owner = getattr(fn_or_module, "__self__", None)
    return owner if isinstance(owner, nn.Module) else None


def count_flops(fn_or_module: Callable[..., Any], *inputs: Any, **kwargs: Any) -> CostReport:
    """Run ``fn_or_module(*inputs, **kwargs)`` once without gradients and count its FLOPs.

    Gated modules and top-level children are found on the module (or the module owning a bound
    method); a plain function gets no density scaling and no per-module breakdown. A gated
    module's sparse branch must be called as a module (its forward hooks must fire), and
    gated modules must not nest.
    """
    root = _root_module(fn_or_module)
    children = dict(root.named_children()) if root is not None else {}
    return _count(fn_or_module, children, inputs, kwargs)


def count_flops_of_parts(
    fn_or_module: Callable[..., Any], parts: dict[str, nn.Module], *inputs: Any, **kwargs: Any
) -> CostReport:
    """``count_flops`` with ``by_module`` and ``dense_by_module`` keyed by ``parts`` (any
    modules the call runs, at any depth, each counted over all its calls) instead of the
    top-level children."""
    return _count(fn_or_module, parts, inputs, kwargs)


def _count(
    fn_or_module: Callable[..., Any],
    watched: dict[str, nn.Module],
    inputs: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> CostReport:
    root = _root_module(fn_or_module)
    counter = FlopCounterMode(display=False, custom_mapping=_EXTRA_FORMULAS)
    tally = _Tally(counter)
    if root is not None:
        gated = {name: m for name, m in root.named_modules() if _is_gated(m)}
        for name, module in gated.items():
            inside = {id(m) for m in module.sparse_branch.modules()}
            if any(id(other) in inside for other in gated.values()):
                raise ValueError(f"nested gated modules are not supported (in {name!r})")
            tally.watch_gated(name, module)
    for name, module in watched.items():  # after the gated hooks: they settle first
        tally.watch_child(name, module)
    try:
        with torch.no_grad(), counter:
            fn_or_module(*inputs, **kwargs)
        for name in list(tally.pending):  # a sparse branch called outside its gated module
            tally.settle(name)
    finally:
        for handle in tally.handles:
            handle.remove()

    dense = counter.get_total_flops()
    by_op = counter.get_flop_counts().get("Global", {})
    return CostReport(
        gflops=(dense - tally.saved) / 1e9,
        dense_gflops=dense / 1e9,
        by_module={name: flops / 1e9 for name, flops in tally.by_module.items()},
        dense_by_module={name: flops / 1e9 for name, flops in tally.dense_by_module.items()},
        by_op={str(op).removeprefix("aten."): flops / 1e9 for op, flops in by_op.items()},
        densities=tally.densities,
    )


def per_frame(key: float, nonkey: float, alpha: int) -> float:
    """A video network's average cost per frame: one key frame every ``alpha`` frames, the
    other ``alpha - 1`` non-key. The one formula behind every per-frame figure (a child's
    reward, the retrain report, bench/cost)."""
    return (key + (alpha - 1) * nonkey) / alpha


def count_params(module: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameters (buffers such as BatchNorm statistics are not parameters)."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)


def _infer_device(fn: Callable[..., Any], inputs: tuple[Any, ...]) -> torch.device:
    for value in inputs:
        if isinstance(value, torch.Tensor):
            return value.device
    root = _root_module(fn)
    param = next(root.parameters(), None) if root is not None else None
    return param.device if param is not None else torch.device("cpu")


def measure_latency(
    fn: Callable[..., Any],
    *inputs: Any,
    warmup: int = 3,
    repeats: int = 10,
    device: str | torch.device | None = None,
) -> float:
    """Median wall time of ``fn(*inputs)`` in milliseconds, under ``torch.inference_mode``.

    On CUDA each call is timed by CUDA events on the current stream (the kernels' time, not
    just their launch) and waited for before the next. The device is taken from the first
    tensor input (or the module's parameters) unless given.
    """
    times = call_seconds(fn, *inputs, warmup=warmup, repeats=repeats, device=device)
    return statistics.median(times) * 1e3


def call_seconds(
    fn: Callable[..., Any],
    *inputs: Any,
    warmup: int = 3,
    repeats: int = 10,
    device: str | torch.device | None = None,
    clock: Callable[[], float] = time.perf_counter,
) -> list[float]:
    """Seconds of each of ``repeats`` calls of ``fn(*inputs)`` after ``warmup`` calls, under
    ``torch.inference_mode`` (see ``measure_latency``). On the CPU ``clock`` reads the time:
    wall time by default; ``time.thread_time`` counts only this thread's CPU time, which
    other processes on a shared machine do not inflate (meaningful with one torch thread)."""
    if repeats < 1 or warmup < 0:
        raise ValueError(f"need repeats >= 1 and warmup >= 0, got {repeats}, {warmup}")
    device = torch.device(device) if device is not None else _infer_device(fn, inputs)
    with torch.inference_mode():
        for _ in range(warmup):
            fn(*inputs)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
            return [_cuda_call_seconds(fn, inputs, device) for _ in range(repeats)]
        return [_cpu_call_seconds(fn, inputs, clock) for _ in range(repeats)]


def _cpu_call_seconds(
    fn: Callable[..., Any], inputs: tuple[Any, ...], clock: Callable[[], float]
) -> float:
    start = clock()
    fn(*inputs)
    return clock() - start


def _cuda_call_seconds(
    fn: Callable[..., Any], inputs: tuple[Any, ...], device: torch.device
) -> float:
    with torch.cuda.device(device):
        start = torch.cuda.Event(enable_timing=True)
        end = torch.cuda.Event(enable_timing=True)
        start.record()
        fn(*inputs)
        end.record()
        end.synchronize()
    return start.elapsed_time(end) / 1e3
