"""The per-frame (static) network: backbone -> neck -> head. It is the slow pathway and the
teacher of every child."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from nas.models.backbone import MobileNetV2Backbone
from nas.models.config import NetConfig
from nas.models.heads import Neck, SegHead, upsample_logits

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class Normalize(nn.Module):
    """Float N x 3 x H x W in [0, 1] -> ImageNet-normalised (inside the model, so exported
    graphs take plain frames)."""

    def __init__(self):
        super().__init__()
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))

    def forward(self, x: Tensor) -> Tensor:
        return (x - self.mean) / self.std


class StaticSegNet(nn.Module):
    """Frame -> logits at frame size; ``deep_features`` gives the slow state D."""

    def __init__(self, num_classes: int, config: NetConfig = NetConfig()):
        super().__init__()
        self.config = config
        self.num_classes = num_classes
        self.normalize = Normalize()
        self.backbone = MobileNetV2Backbone(config.width_mult, config.output_stride)
        self.neck = Neck(self.backbone.out_channels, config.deep_channels)
        self.head = SegHead(config.deep_channels, num_classes, config.head_hidden)

    def deep_features(self, frame: Tensor) -> Tensor:
        return self.neck(self.backbone(self.normalize(frame)))

    def forward(self, frame: Tensor) -> Tensor:
        return upsample_logits(self.head(self.deep_features(frame)), frame.shape[-2:])
