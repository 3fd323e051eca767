"""Widths and strides of the networks, in one place."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from nas.models.backbones import DEFAULT_BACKBONE, backbone_spec


@dataclass(frozen=True)
class NetConfig:
    """Sizes shared by the static network, the fast encoder and the cell."""

    width_mult: float = 1.0
    """Width multiplier of the slow pathway's backbone (1.0 loads ImageNet weights)."""
    output_stride: int = 16
    """Stride of the deep features (16: last stage dilated, DeepLab-style)."""
    deep_channels: int = 128
    """Width of the slow state D and of every cell state."""
    head_hidden: int = 128
    """Hidden width of the 1x1 segmentation head."""
    backbone: str = DEFAULT_BACKBONE
    """Per-frame backbone, a name in nas.models.backbones.BACKBONES (last: cell and teacher
    files written before it existed lack it and mean MobileNetV2)."""

    def __post_init__(self):
        backbone_spec(self.backbone)  # an unknown name fails here, listing the known ones

    def to_dict(self) -> dict:
        return asdict(self)
