"""Backbones as a table: name -> how to build it, how its input is normalised, its stages.

The static network builds its backbone and input normalisation from here, and the fast
encoder scales the same stage widths by beta, so a new backbone is one entry (and a module
that follows :class:`nas.models.backbone.Backbone`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

from nas.models.backbone import (
    MBV2_SETTING,
    Backbone,
    MobileNetV2Backbone,
    load_pretrained,
)
from nas.models.efficientnet_lite import LITE0_SETTING, EfficientNetLite0Backbone, lite0_stages

DEFAULT_BACKBONE = "mobilenet_v2"
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class BackboneSpec:
    """One backbone: ``build(width_mult, output_stride)``, the mean and std its ImageNet
    weights expect of [0, 1] frames, and its stem width and (channels, stride) per stage."""

    build: Callable[[float, int], Backbone]
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    stem: int
    stages: tuple[tuple[int, int], ...]
    bundled: bool = False
    """Its ImageNet weights ship inside a dependency ("imagenet" needs no file)."""


BACKBONES: dict[str, BackboneSpec] = {
    "mobilenet_v2": BackboneSpec(
        MobileNetV2Backbone,
        IMAGENET_MEAN,
        IMAGENET_STD,
        stem=32,
        stages=tuple((c, s) for _, c, _, s in MBV2_SETTING),
    ),
    # TensorFlow's Lite preprocessing, (255 x - 127) / 128: it classifies far better than
    # ImageNet mean/std with the converted weights
    "efficientnet_lite0": BackboneSpec(
        EfficientNetLite0Backbone,
        (127 / 255,) * 3,
        (128 / 255,) * 3,
        stem=32,
        stages=tuple((c, s) for _, c, _, s, _ in LITE0_SETTING),
        bundled=True,
    ),
    # Lite0 cut at stride 16 (blocks 0-10, 112 ch): the stride-32 stages and the 1280-wide
    # head conv left out, as DeepLab-style segmenters on small data often do
    "efficientnet_lite0_s16": BackboneSpec(
        partial(EfficientNetLite0Backbone, last_stride=16),
        (127 / 255,) * 3,
        (128 / 255,) * 3,
        stem=32,
        stages=tuple((c, s) for _, c, _, s, _ in lite0_stages(16)),
        bundled=True,
    ),
}


def backbone_spec(name: str) -> BackboneSpec:
    """The table's entry for ``name``; an unknown name lists the known ones."""
    if name not in BACKBONES:
        raise ValueError(f"unknown backbone {name!r}; known backbones: {', '.join(BACKBONES)}")
    return BACKBONES[name]


def build_backbone(name: str, width_mult: float = 1.0, output_stride: int = 16) -> Backbone:
    return backbone_spec(name).build(width_mult, output_stride)


def check_pretrained(name: str, width_mult: float, output_stride: int, source: str | None) -> None:
    """Load ``source`` (imagenet, a file, or None: nothing to check) into a fresh backbone
    once, so that a missing package or file, or another backbone's weights, fail with their
    one clear error before any data is loaded or anything trained."""
    if source is None:
        return
    if source == "imagenet" and width_mult != 1.0:
        raise ValueError(
            f"ImageNet weights of {name} exist at width 1.0 only, not {width_mult}: use "
            "--width-mult 1.0, or --pretrained-backbone none to train from scratch"
        )
    load_pretrained(build_backbone(name, width_mult, output_stride), source)


__all__ = [
    "BACKBONES",
    "DEFAULT_BACKBONE",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "BackboneSpec",
    "backbone_spec",
    "build_backbone",
    "check_pretrained",
    "load_pretrained",
]
