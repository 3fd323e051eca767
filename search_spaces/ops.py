"""Candidate operations of the dynamic cell: one table of factories, one signature.

``OPS[name](channels) -> nn.Module`` whose ``forward(x, ctx)`` maps an N x C x h x w tensor
to the same shape. ``ctx`` is the cell's :class:`CellContext` (slow state, fused fast
features, fast features of this frame and of the key frame, all C channels), which the
motion-aware ops read: gated conv, learned warp and temporal difference.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class CellContext(NamedTuple):
    """What every op may read besides its own input (all N x C x h x w)."""

    slow: Tensor
    fused_fast: Tensor
    fast: Tensor
    fast_key: Tensor


class Zero(nn.Module):
    """``none``: contributes nothing (and costs nothing)."""

    def forward(self, x: Tensor, ctx: CellContext) -> Tensor:
        return torch.zeros_like(x)


class Identity(nn.Module):
    """``skip``: passes its input on."""

    def forward(self, x: Tensor, ctx: CellContext) -> Tensor:
        return x


class ReLUConvBN(nn.Module):
    """ReLU -> (dilated) conv -> BN, DARTS order; ``separable`` uses depthwise + 1x1."""

    def __init__(self, c: int, k: int, dilation: int = 1, separable: bool = False):
        super().__init__()
        pad = dilation * (k - 1) // 2
        layers: list[nn.Module] = [nn.ReLU(inplace=False)]
        if separable:
            layers += [
                nn.Conv2d(c, c, k, padding=pad, dilation=dilation, groups=c, bias=False),
                nn.Conv2d(c, c, 1, bias=False),
            ]
        else:
            layers.append(nn.Conv2d(c, c, k, padding=pad, dilation=dilation, bias=False))
        layers.append(nn.BatchNorm2d(c))
        self.op = nn.Sequential(*layers)

    def forward(self, x: Tensor, ctx: CellContext) -> Tensor:
        return self.op(x)


class GlobalPool(nn.Module):
    """``gap``: global average pooling -> 1x1 conv, broadcast back over the map."""

    def __init__(self, c: int):
        super().__init__()
        self.proj = nn.Sequential(nn.Conv2d(c, c, 1, bias=False), nn.ReLU(inplace=False))

    def forward(self, x: Tensor, ctx: CellContext) -> Tensor:
        return self.proj(x.mean(dim=(2, 3), keepdim=True)).expand_as(x)


class GatedConv(nn.Module):
    """``gated_conv``: y = x + m * conv3x3(x), m a learned per-pixel gate on |fast - fast_key|.

    The gate has no bias, so an unchanged pixel (fast == fast_key) gets m = 0 exactly and
    y = x: on a frame identical to the key frame, the op returns its input (the slow-state
    path when x is the slow state). At inference m is hard (m_soft > 0.5); in training a
    straight-through estimator keeps the same forward. ``last_density`` is the share of pixels
    computed in the last forward; cost counting scales ``sparse_branch`` by it.
    """

    def __init__(self, c: int, threshold: float = 0.5):
        super().__init__()
        self.gate = nn.Conv2d(c, 1, 1, bias=False)
        self.sparse_branch = ReLUConvBN(c, 3)
        self.threshold = threshold
        self.last_density = 1.0

    def gate_mask(self, ctx: CellContext) -> Tensor:
        soft = torch.tanh(F.relu(self.gate((ctx.fast - ctx.fast_key).abs())))
        hard = (soft > self.threshold).to(soft.dtype)
        return hard + soft - soft.detach() if self.training else hard

    def forward(self, x: Tensor, ctx: CellContext) -> Tensor:
        mask = self.gate_mask(ctx)
        if not torch.jit.is_tracing():
            self.last_density = float(mask.detach().mean())
        return x + mask * self.sparse_branch(x, ctx)


class LearnedWarp(nn.Module):
    """``warp``: predict a displacement field (pixels) from (fast, fast_key) and
    ``grid_sample`` the input with it: motion without optical flow. The last conv starts at
    zero, so an untrained warp is the identity."""

    def __init__(self, c: int, hidden: int = 32):
        super().__init__()
        self.offset = nn.Sequential(
            nn.Conv2d(2 * c, hidden, 3, padding=1),
            nn.ReLU(inplace=False),
            nn.Conv2d(hidden, 2, 3, padding=1),
        )
        nn.init.zeros_(self.offset[-1].weight)
        nn.init.zeros_(self.offset[-1].bias)

    def forward(self, x: Tensor, ctx: CellContext) -> Tensor:
        n, _, h, w = x.shape
        flow = self.offset(torch.cat([ctx.fast, ctx.fast_key], dim=1))  # N x 2 x h x w, pixels
        ys = torch.linspace(-1.0, 1.0, h, device=x.device, dtype=x.dtype)
        xs = torch.linspace(-1.0, 1.0, w, device=x.device, dtype=x.dtype)
        gy, gx = torch.meshgrid(ys, xs, indexing="ij")
        shift = torch.stack(
            [flow[:, 0] * (2.0 / max(w - 1, 1)), flow[:, 1] * (2.0 / max(h - 1, 1))], dim=-1
        )  # pixels -> grid_sample's [-1, 1] units
        # .to: a no-op here, but torch's TorchScript-based ONNX exporter writes linspace in
        # float64 whatever its dtype, and onnxruntime has no float32-input/float64-grid kernel
        grid = (torch.stack([gx, gy], dim=-1).unsqueeze(0) + shift).to(x.dtype)
        return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=True)


class TemporalDifference(nn.Module):
    """``tdiff``: a bias-free 1x1 conv of (fast - fast_key); exactly zero on an unchanged
    frame. It reads the context only: what changed since the key frame."""

    def __init__(self, c: int):
        super().__init__()
        self.proj = nn.Conv2d(c, c, 1, bias=False)

    def forward(self, x: Tensor, ctx: CellContext) -> Tensor:
        return self.proj(ctx.fast - ctx.fast_key)


OPS: dict[str, Callable[[int], nn.Module]] = {
    "none": lambda c: Zero(),
    "skip": lambda c: Identity(),
    "conv1x1": lambda c: ReLUConvBN(c, 1),
    "conv3x3": lambda c: ReLUConvBN(c, 3),
    "sep3x3": lambda c: ReLUConvBN(c, 3, separable=True),
    "sep5x5": lambda c: ReLUConvBN(c, 5, separable=True),
    "dil3x3_r3": lambda c: ReLUConvBN(c, 3, dilation=3),
    "dil3x3_r6": lambda c: ReLUConvBN(c, 3, dilation=6),
    "sepdil5x5_r6": lambda c: ReLUConvBN(c, 5, dilation=6, separable=True),
    "gap": lambda c: GlobalPool(c),
    "gated_conv": lambda c: GatedConv(c),
    "warp": lambda c: LearnedWarp(c),
    "tdiff": lambda c: TemporalDifference(c),
}
OP_NAMES: tuple[str, ...] = tuple(OPS)
OPS_READING_FAST = frozenset({"gated_conv", "warp", "tdiff"})
OPS_IGNORING_INPUT = frozenset({"none", "tdiff"})
"""Ops whose output does not depend on their input's values (``none`` takes its shape only):
a node read by these alone does not reach the cell's output and is not computed."""


def build_op(name: str, channels: int) -> nn.Module:
    """Build op ``name`` for ``channels`` channels; KeyError lists the known ops."""
    if name not in OPS:
        raise KeyError(f"unknown op {name!r}; known ops: {list(OPS)}")
    return OPS[name](channels)
