"""Widths and strides of the networks, in one place."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class NetConfig:
    """Sizes shared by the static network, the fast encoder and the cell."""

    width_mult: float = 1.0
    """MobileNetV2 width multiplier of the slow pathway (1.0 loads ImageNet weights)."""
    output_stride: int = 16
    """Stride of the deep features (16: last stage dilated, DeepLab-style)."""
    deep_channels: int = 128
    """Width of the slow state D and of every cell state."""
    head_hidden: int = 128
    """Hidden width of the 1x1 segmentation head."""

    def to_dict(self) -> dict:
        return asdict(self)
