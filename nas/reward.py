"""Quality and cost -> the scalar reward the controller maximises (MnasNet-style).

reward = quality * (cost / target) ** w when cost > target, else quality. The default
w = -0.5 makes cost matter: a cell at twice the target loses 1 - 2**-0.5 = 29% of its reward
(MnasNet's soft w = -0.07 would lose 5%).
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class RewardConfig:
    """How cost weighs against quality."""

    target_ratio: float = 0.4
    """Target per-frame cost as a share of the static network's per-frame GFLOPs."""
    exponent: float = -0.5
    """w: the reward is multiplied by (cost / target) ** w above the target."""


def reward(quality: float, gflops: float, target_gflops: float, exponent: float = -0.5) -> float:
    """Quality scaled down by how far the cost exceeds the target; NaN quality -> NaN."""
    if not math.isfinite(quality) or not math.isfinite(gflops):
        return float("nan")
    if target_gflops <= 0:
        raise ValueError("target_gflops must be positive")
    if gflops <= target_gflops:
        return quality
    return quality * (gflops / target_gflops) ** exponent
