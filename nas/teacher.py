"""The teacher: the per-frame network, trained once per dataset (or loaded) and frozen, plus
one fast encoder per beta distilled to its deep features.

Why distilled fast encoders: a child then never runs a backbone (its fast features come from
the cache too), which is what makes a child cost seconds. Training resumes from
``<dir>/train_state.pt`` after an interruption; a teacher made for other data or settings
(its ``key`` differs) is retrained, but only its fast encoders when nothing else differs
(its ``static_key`` is the same).
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from nas.checkpoint import (
    content_key,
    load_training_state,
    load_weights,
    read_json,
    save_training_state,
    save_weights,
    write_json,
)
from nas.config import TeacherConfig
from nas.data.clip import IGNORE_INDEX, Clip
from nas.models.backbone import load_pretrained
from nas.models.backbones import DEFAULT_BACKBONE
from nas.models.config import NetConfig
from nas.models.static import StaticSegNet
from nas.models.video import ProjectedFastEncoder
from nas.teacher_folder import TeacherFolder
from nas.train_utils import cosine_lr, optimizer_step
from search_spaces.genotype import BETAS, beta_fraction


def _key(beta: str) -> str:
    return beta.replace("/", "_")


TEACHER_FORMAT = 2  # bump when the teacher's or fast encoders' shapes change
PROGRESS_SECONDS = 20.0
PRETRAINED_LR_SCALE = 0.25
"""A pretrained backbone fine-tunes at a quarter of the teacher's learning rate. Chosen on
held-in DAVIS sequences (8 training sequences -> hockey, surf; 100 steps, 240x427, static
foreground IoU): 0.21 at the full rate, 0.32 / 0.50 / 0.54 at 0.03 / 0.1 / 0.25 (at the full
rate a 600-step teacher's loss rose from 0.13 to 0.29: it ended predicting background)."""


def teacher_key(
    data_fingerprint: dict,
    net: NetConfig,
    cfg: TeacherConfig,
    seed: int,
    pretrained: str | None,
    fine_tuned: bool = False,
) -> str:
    """What the teacher depends on, hashed: a change means a different teacher."""
    sizes = net.to_dict()
    if sizes["backbone"] == DEFAULT_BACKBONE:  # as before backbones were a choice: same keys
        del sizes["backbone"]
    parts = [TEACHER_FORMAT, data_fingerprint, sizes, asdict(cfg), seed, pretrained]
    if fine_tuned:  # how a pretrained backbone fine-tunes (keys of the others unchanged)
        parts.append({"backbone_lr_scale": PRETRAINED_LR_SCALE, "frozen_bn": True})
    return content_key(parts)


class FrameSampler:
    """Random labelled frames of the training clips as float batches in [0, 1]."""

    def __init__(self, clips: Sequence[Clip], seed: int):
        self.clips = clips
        self.index = [(c, t) for c, clip in enumerate(clips) for t in np.flatnonzero(clip.labelled)]
        if not self.index:
            raise ValueError("no labelled frame in the training clips: nothing to train on")
        self.rng = np.random.default_rng(seed)

    def batch(self, size: int) -> tuple[torch.Tensor, torch.Tensor]:
        picks = self.rng.integers(len(self.index), size=size)
        frames, labels = [], []
        for i in picks:
            c, t = self.index[i]
            frame, label = self.clips[c].frames[t], self.clips[c].labels[t]
            if self.rng.random() < 0.5:  # horizontal flip
                frame, label = frame[:, ::-1], label[:, ::-1]
            frames.append(np.ascontiguousarray(frame))
            labels.append(np.ascontiguousarray(label))
        x = torch.from_numpy(np.stack(frames)).permute(0, 3, 1, 2).float().div_(255.0)
        return x, torch.from_numpy(np.stack(labels)).long()


def _train_loop(
    name: str,
    model: nn.Module,
    loss_fn: Callable,
    sampler: FrameSampler,
    steps: int,
    cfg: TeacherConfig,
    state_path: Path,
    device: torch.device,
    log: Callable[[str], None],
    frozen_norms: Sequence[nn.Module] = (),
    slow_part: nn.Module | None = None,
) -> None:
    """Adam steps with cosine decay; resumable from ``state_path`` (same ``name``).
    ``frozen_norms`` stay in eval mode with their affine parameters fixed; ``slow_part``
    (a pretrained backbone) learns at PRETRAINED_LR_SCALE x the rate of the rest."""
    for norm in frozen_norms:
        norm.requires_grad_(False)
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [{"params": params, "scale": 1.0}]
    if slow_part is not None:
        slow = {id(p) for p in slow_part.parameters()}
        groups = [
            {"params": [p for p in params if id(p) in slow], "scale": PRETRAINED_LR_SCALE},
            {"params": [p for p in params if id(p) not in slow], "scale": 1.0},
        ]
    opt = torch.optim.AdamW(groups, lr=cfg.lr, weight_decay=1e-4)
    start = 0
    if state_path.is_file():
        state = load_training_state(state_path)
        if state.get("phase") == name:
            model.load_state_dict(state["model"])
            opt.load_state_dict(state["optimizer"])
            sampler.rng = np.random.default_rng(state["rng_seed"])
            start = int(state["step"])
            log(f"[teacher] {name}: resuming at step {start}/{steps}")
    model.train()
    for norm in frozen_norms:
        norm.eval()
    t0, running = time.time(), None
    shown = t0  # a line at least every PROGRESS_SECONDS, so a slow start is never silent
    for step in range(start, steps):
        lr = cosine_lr(step, steps, cfg.lr)
        for group in opt.param_groups:
            group["lr"] = lr * group["scale"]
        x, y = sampler.batch(cfg.batch_size)
        value = optimizer_step(
            loss_fn(model, x.to(device), y.to(device)),
            opt,
            params,
            diverged=lambda v, step=step: FloatingPointError(
                f"{name} diverged at step {step} (loss {v}): lower the teacher's learning rate"
            ),
        )
        running = value if running is None else 0.9 * running + 0.1 * value
        done = step + 1
        if done % cfg.checkpoint_every == 0 or done == steps:
            save_training_state(
                state_path,
                {
                    "phase": name,
                    "step": done,
                    "model": model.state_dict(),
                    "optimizer": opt.state_dict(),
                    "rng_seed": int(sampler.rng.integers(2**31)),
                },
            )
            sampler.rng = np.random.default_rng(load_training_state(state_path)["rng_seed"])
        saved = done % cfg.checkpoint_every == 0
        if progress_due(done, steps, saved, time.time() - shown):
            shown = time.time()
            log(
                f"[teacher] {name}: step {done}/{steps} loss {running:.4f} "
                f"({shown - t0:.0f} s, {(shown - t0) / max(done - start, 1):.2f} s/step)"
            )


def progress_due(done: int, steps: int, checkpoint: bool, since: float) -> bool:
    """Whether a training line is due after step ``done``, ``since`` seconds after the last:
    the last step, PROGRESS_SECONDS without one (a slow start is never silent), or a
    checkpoint, unless a line came within PROGRESS_SECONDS / 4 (at 0.42 s a step, a timed
    line at step 49 and the checkpoint's at 50 said the same)."""
    if done == steps or since >= PROGRESS_SECONDS:
        return True
    return checkpoint and since >= PROGRESS_SECONDS / 4


def check_teacher_file(path: str | Path, num_classes: int, net: NetConfig) -> None:
    """A ``--teacher`` file must be a StaticSegNet of this backbone, width and class count:
    one ValueError naming what does not fit, before any data is loaded (loading it later
    failed after the data, with a page of key names)."""
    weights = load_weights(path)
    expected = {k: tuple(v.shape) for k, v in StaticSegNet(num_classes, net).state_dict().items()}
    missing = sorted(expected.keys() - weights.keys())
    extra = sorted(weights.keys() - expected.keys())
    reshaped = [
        k
        for k in sorted(expected.keys() & weights.keys())
        if tuple(weights[k].shape) != expected[k]
    ]
    if not (missing or extra or reshaped):
        return

    def more(names: list[str]) -> str:
        return ", ..." if len(names) > 1 else ""

    found = []
    if missing:
        found.append(
            f"{len(missing)} of its tensors are not in the file ({missing[0]}{more(missing)})"
        )
    if extra:
        found.append(f"{len(extra)} in the file are not its ({extra[0]}{more(extra)})")
    if reshaped:
        k = reshaped[0]
        found.append(
            f"{len(reshaped)} have another shape ({k}: {tuple(weights[k].shape)} in the file, "
            f"{expected[k]} expected{more(reshaped)})"
        )
    raise ValueError(
        f"{path} is not a static network of backbone {net.backbone}, width {net.width_mult:g}, "
        f"{net.deep_channels} deep channels and {num_classes} classes: {'; '.join(found)}. "
        "Give the teacher.safetensors of a search or retrain on the same dataset with the same "
        "--backbone, or leave --teacher out to train one"
    )


def ensure_teacher(
    out_dir: Path,
    train_clips: Sequence[Clip] | Callable[[], Sequence[Clip]],
    num_classes: int,
    data_fingerprint: dict,
    net: NetConfig = NetConfig(),
    cfg: TeacherConfig = TeacherConfig(),
    seed: int = 0,
    teacher_file: str | None = None,
    pretrained_backbone: str | None = None,
    device: torch.device | None = None,
    log: Callable[[str], None] = print,
) -> dict:
    """Train (or load) the teacher and the fast encoders into ``out_dir``; return its meta.

    ``train_clips``: the clips, or a function loading them (only called if there is
    training left to do). ``teacher_file``: a StaticSegNet safetensors file to use instead
    of training one.
    """
    device = device or torch.device("cuda" if torch.cuda.is_available() else "cpu")
    folder = TeacherFolder(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    source = str(Path(teacher_file).resolve()) if teacher_file else None
    fine_tuned = bool(pretrained_backbone) and not source
    key, static_key = (
        teacher_key(data_fingerprint, net, c, seed, source or pretrained_backbone, fine_tuned)
        for c in (cfg, replace(cfg, fast_steps=0))
    )
    meta_path = folder.meta_path
    meta = read_json(meta_path) if meta_path.is_file() else {}
    if meta.get("key") == key and "static_key" not in meta:  # made before static keys
        meta["static_key"] = static_key
        write_json(meta_path, meta)
    if meta.get("key") != key:
        # only the fast encoders' distillation changed: the static network stays
        keep = (
            meta.get("static_key") == static_key
            and meta.get("static_done")
            and folder.weights_path.is_file()
        )
        if meta:
            what = "fast-encoder steps: distilling them" if keep else "data or settings: retraining"
            log(f"[teacher] {out_dir} holds a teacher for other {what}")
        for stale in out_dir.glob("*"):
            if not (keep and stale == folder.weights_path):
                stale.unlink()
        old = meta
        meta = {
            "key": key,
            "static_key": static_key,
            "num_classes": num_classes,
            "net": net.to_dict(),
            "data": data_fingerprint,
            "config": asdict(cfg),
            "seed": seed,
            "fast_done": [],
            "seconds": {},
        }
        if keep:
            meta.update(static_done=True, source=old["source"])
            meta["seconds"]["static"] = old["seconds"]["static"]
        write_json(meta_path, meta)

    @functools.cache
    def clips() -> Sequence[Clip]:
        got = train_clips() if callable(train_clips) else train_clips
        log(f"[teacher] learning from {sum(map(len, got))} labelled frames")
        return got

    torch.manual_seed(seed)
    teacher = StaticSegNet(num_classes, net).to(device)
    state_path = folder.state_path
    if not meta.get("static_done"):
        t0 = time.time()
        if source:
            teacher.load_state_dict(load_weights(source))
            log(f"[teacher] loaded {source}")
        else:
            frozen = []
            if pretrained_backbone:
                load_pretrained(teacher.backbone, pretrained_backbone)
                # batches of 8 frames would only blur the ImageNet statistics
                frozen = [m for m in teacher.backbone.modules() if isinstance(m, nn.BatchNorm2d)]
            sampler = FrameSampler(clips(), seed)
            ce = lambda m, x, y: F.cross_entropy(m(x), y, ignore_index=IGNORE_INDEX)
            _train_loop(
                "static",
                teacher,
                ce,
                sampler,
                cfg.steps,
                cfg,
                state_path,
                device,
                log,
                frozen,
                teacher.backbone if pretrained_backbone else None,
            )
        save_weights(teacher, folder.weights_path)
        meta.update(static_done=True, source=source or "trained")
        meta["seconds"]["static"] = round(time.time() - t0, 1)
        write_json(meta_path, meta)
    teacher.load_state_dict(load_weights(folder.weights_path))
    teacher.eval().requires_grad_(False)

    if not meta.get("fast_done"):
        t0 = time.time()
        torch.manual_seed(seed + 1)
        students = nn.ModuleDict(
            {_key(b): ProjectedFastEncoder(beta_fraction(b), net) for b in BETAS}
        ).to(device)

        def distill(m: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            with torch.no_grad():
                target = teacher.deep_features(x)  # one teacher pass serves every beta
            xn = teacher.normalize(x)
            return sum(F.mse_loss(student(xn), target) for student in m.values())

        sampler = FrameSampler(clips(), seed + 1)
        _train_loop(
            "fast encoders",
            students,
            distill,
            sampler,
            cfg.fast_steps,
            cfg,
            state_path,
            device,
            log,
        )
        for beta in BETAS:
            save_weights(students[_key(beta)], folder.fast_path(beta))
        meta["fast_done"] = list(BETAS)
        meta["seconds"]["fast encoders"] = round(time.time() - t0, 1)
        write_json(meta_path, meta)
    state_path.unlink(missing_ok=True)
    return meta
