"""The per-frame (static) network: backbone -> neck -> head. It is the slow pathway and the
teacher of every child."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from nas.models.backbones import IMAGENET_MEAN, IMAGENET_STD, backbone_spec
from nas.models.config import NetConfig
from nas.models.heads import Neck, SegHead, upsample_logits


class Normalize(nn.Module):
    """Float N x 3 x H x W in [0, 1] -> the input the backbone's ImageNet weights expect
    (inside the model, so exported graphs take plain frames)."""

    def __init__(
        self,
        mean: tuple[float, float, float] = IMAGENET_MEAN,
        std: tuple[float, float, float] = IMAGENET_STD,
    ):
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1))

    def forward(self, x: Tensor) -> Tensor:
        return (x - self.mean) / self.std


class StaticSegNet(nn.Module):
    """Frame -> logits at frame size; ``deep_features`` gives the slow state D."""

    def __init__(self, num_classes: int, config: NetConfig = NetConfig()):
        super().__init__()
        self.config = config
        self.num_classes = num_classes
        spec = backbone_spec(config.backbone)
        self.normalize = Normalize(spec.mean, spec.std)
        self.backbone = spec.build(config.width_mult, config.output_stride)
        self.neck = Neck(self.backbone.out_channels, config.deep_channels)
        self.head = SegHead(config.deep_channels, num_classes, config.head_hidden)

    def deep_features(self, frame: Tensor) -> Tensor:
        return self.neck(self.backbone(self.normalize(frame)))

    def forward(self, frame: Tensor) -> Tensor:
        return upsample_logits(self.head(self.deep_features(frame)), frame.shape[-2:])
