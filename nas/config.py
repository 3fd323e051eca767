"""Every setting of a search, in one typed dataclass (CLI flags and --config files map onto it)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any


@dataclass
class SearchConfig:
    """A search: budget, data, controller, parallelism, proxy task, reward."""

    budget: str = "10cpu-minutes"
    """Device time spent inside children, e.g. 2gpu-days, 6gpu-hours, 90cpu-minutes."""
    dataset: str = "synthetic"
    """synthetic (embedded), camvid, cityscapes or davis."""
    data_root: str | None = None
    """Folder of a real dataset (its own layout)."""
    controller: str = "ppo"
    """ppo, random, tpe or evolution."""
    workers: int = 0
    """Children at once (0: one per GPU, else one per CPU core)."""
    gpus_per_child: float = 0.0
    """GPU share of a child (0 with GPUs present means 1)."""
    scheduler: str = "fifo"
    """fifo or asha (stops poor children after their first evaluation)."""
    teacher: str | None = None
    """A StaticSegNet safetensors file to use as teacher instead of training one."""
    pretrained_backbone: str | None = None
    """ImageNet MobileNetV2 weights (torchvision layout) to start the teacher from."""
    address: str | None = None
    """Join this Ray cluster instead of starting a local one."""
    seed: int = 0
    """Seed of the controller, the teacher and the children."""
    dashboard_host: str = "127.0.0.1"
    """Where the Ray dashboard listens (it has no authentication: keep it local)."""
    dashboard: bool = True
    """Start the Ray dashboard with a local cluster."""
    resolution: tuple[int, int] | None = None
    """Frame size H x W of the cache (None: 96x128 synthetic, 180x240 camvid, 256x512
    cityscapes, 240x427 davis)."""
    output_stride: int | None = None
    """Deep-feature stride (None: 8 for synthetic's small frames, else 16)."""
    width_mult: float | None = None
    """Slow-pathway width (None: 0.5 for synthetic, 1.0, which loads ImageNet weights, else)."""
    clip_len: int = 16
    """Frames per cached clip (>= 9 so alpha 8 has non-key frames)."""
    train_clips: int = 0
    """Clips cached for child training (0: 256 for synthetic, 48 for a real dataset). With
    48 synthetic clips children overfit them and fell below the copy baseline."""
    val_clips: int = 16
    """Held-out clips cached for child evaluation."""
    teacher_clips: int = 0
    """Train-split clips whose labelled frames the teacher learns from (0: 1024 generated
    clips for synthetic, every clip for a real dataset). The cache's few clips alone
    overfit it: 0.84 train vs 0.27 val mIoU on synthetic."""
    teacher_steps: int = 400
    """Optimiser steps of the teacher."""
    fast_steps: int = 150
    """Distillation steps of each fast encoder."""
    child_steps: int = 80
    """Optimiser steps of each child (80 vs 400 ranks 20 genotypes alike: Spearman 0.94)."""
    child_rounds: int = 3
    """Evaluations (reports) per child."""
    child_batch: int = 16
    """(key, frame) pairs per child step."""
    child_lr: float = 3e-3
    """Child learning rate."""
    target_ratio: float = 0.4
    """Reward target: per-frame cost as a share of the static network's."""
    cost_exponent: float = -0.5
    """Reward exponent w above the target (2x the target loses 29%)."""
    n_nodes: int = 4
    """Nodes of the dynamic cell."""
    max_children: int = 0
    """Stop after this many children (0: the budget alone decides)."""

    def resolved_resolution(self) -> tuple[int, int]:
        defaults = {
            "synthetic": (96, 128),
            "camvid": (180, 240),
            "cityscapes": (256, 512),
            "davis": (240, 427),
        }
        return tuple(self.resolution) if self.resolution else defaults[self.dataset]

    def resolved_output_stride(self) -> int:
        return self.output_stride or (8 if self.dataset == "synthetic" else 16)

    def resolved_width_mult(self) -> float:
        return self.width_mult or (0.5 if self.dataset == "synthetic" else 1.0)

    def resolved_train_clips(self) -> int:
        return self.train_clips or (256 if self.dataset == "synthetic" else 48)

    def resolved_teacher_clips(self) -> int | None:
        """How many train clips the teacher reads (None: all of a real dataset's)."""
        if self.teacher_clips:
            return self.teacher_clips
        return 1024 if self.dataset == "synthetic" else None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["resolution"] = list(self.resolution) if self.resolution else None
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SearchConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown search settings {unknown}; known: {sorted(known)}")
        data = dict(data)
        if data.get("resolution") is not None:
            data["resolution"] = parse_resolution(data["resolution"])
        return cls(**data)


def parse_resolution(value: Any) -> tuple[int, int]:
    """'96x128', [96, 128] -> (96, 128)."""
    if isinstance(value, str):
        parts = value.lower().replace(",", "x").split("x")
    else:
        parts = list(value)
    try:
        h, w = (int(p) for p in parts)
    except (TypeError, ValueError):
        raise ValueError(f"resolution {value!r}: write HxW, e.g. 96x128") from None
    if h < 16 or w < 16:
        raise ValueError(f"resolution {value!r} is too small: at least 16x16")
    return h, w


def load_config_file(path: str | Path) -> dict[str, Any]:
    """A --config file: YAML or JSON mapping of SearchConfig fields (dashes or underscores)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"config file {path} does not exist")
    text = path.read_text()
    if path.suffix in (".yaml", ".yml"):
        import yaml

        data = yaml.safe_load(text) or {}
    else:
        data = json.loads(text)
    if not isinstance(data, dict):
        raise ValueError(f"config file {path} must hold a mapping of settings")
    return {k.replace("-", "_"): v for k, v in data.items()}
