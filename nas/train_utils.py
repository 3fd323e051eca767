"""Shared training helpers: clip windows with consistent augmentation, mixed precision, cosine
schedule, and weights-only epoch checkpoints that a stopped run resumes from.

Why clip-consistent augmentation: the video network propagates the key frame's features to
the following frames, so every frame of a training window must see the same scale, crop and
flip, or the motion it learns would be the augmentation's, not the video's.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Sequence
from pathlib import Path

import cv2
import numpy as np
import torch

from nas.checkpoint import (
    load_training_state,
    load_weights,
    read_json,
    save_training_state,
    save_weights,
    write_json,
)
from nas.data.clip import IGNORE_INDEX, Clip


def pick_device(name: str | None = None) -> torch.device:
    """The requested device, else CUDA when available, else the CPU."""
    if name:
        return torch.device(name)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def amp_dtype(device: torch.device) -> torch.dtype | None:
    """bf16 on GPUs that have it, else fp16 on CUDA; None (fp32) on the CPU."""
    if device.type != "cuda":
        return None
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def autocast(device: torch.device) -> contextlib.AbstractContextManager:
    """Mixed precision on CUDA, a no-op elsewhere."""
    dtype = amp_dtype(device)
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=dtype)


def grad_scaler(device: torch.device) -> torch.amp.GradScaler:
    """A loss scaler that is active only for fp16 (bf16 and fp32 need none)."""
    return torch.amp.GradScaler(device.type, enabled=amp_dtype(device) == torch.float16)


def cosine_lr(step: int, total: int, peak: float, warmup: bool = True) -> float:
    """Linear warm-up over the first 5% of the steps (at least one; none without
    ``warmup``), then cosine decay to zero."""
    warm = max(1, total // 20) if warmup else 0
    if step < warm:
        return peak * (step + 1) / warm
    return 0.5 * peak * (1 + math.cos(math.pi * (step - warm) / max(1, total - warm)))


def set_lr(opt: torch.optim.Optimizer, lr: float) -> None:
    for group in opt.param_groups:
        group["lr"] = lr


def optimizer_step(
    loss: torch.Tensor,
    opt: torch.optim.Optimizer,
    params: Sequence[torch.nn.Parameter],
    *,
    diverged: Callable[[float], Exception],
    max_grad_norm: float | None = None,
    scaler: torch.amp.GradScaler | None = None,
) -> float:
    """One step of every training loop here: refuse a non-finite loss (``diverged(value)``
    is raised, before any weight moves), backward (through ``scaler`` under fp16), clip the
    gradient norm, step. Returns the loss."""
    value = float(loss.detach())
    if not math.isfinite(value):
        raise diverged(value)
    opt.zero_grad(set_to_none=True)
    if scaler is None:
        loss.backward()
    else:
        scaler.scale(loss).backward()
        scaler.unscale_(opt)
    if max_grad_norm is not None:
        torch.nn.utils.clip_grad_norm_(params, max_grad_norm)
    if scaler is None:
        opt.step()
    else:
        scaler.step(opt)
        scaler.update()
    return value


def augment_window(
    frames: np.ndarray,
    labels: np.ndarray,
    size: tuple[int, int],
    rng: np.random.Generator,
    scale: tuple[float, float] = (0.75, 1.25),
) -> tuple[np.ndarray, np.ndarray]:
    """One random scale, crop and flip applied to every frame of a window.

    frames uint8 T x H x W x 3, labels int64 T x H x W -> the same at ``size``; where the
    scaled frames are smaller than ``size`` they are padded with black and ignored labels.
    """
    t, h, w = labels.shape
    s = rng.uniform(*scale)
    sh, sw = max(1, round(h * s)), max(1, round(w * s))
    out_h, out_w = size
    ph, pw = max(sh, out_h), max(sw, out_w)
    img = np.zeros((t, ph, pw, 3), np.uint8)
    lab = np.full((t, ph, pw), IGNORE_INDEX, np.int64)
    for i in range(t):
        img[i, :sh, :sw] = cv2.resize(frames[i], (sw, sh), interpolation=cv2.INTER_LINEAR)
        small = cv2.resize(labels[i].astype(np.uint8), (sw, sh), interpolation=cv2.INTER_NEAREST)
        lab[i, :sh, :sw] = small
    y0 = int(rng.integers(ph - out_h + 1))
    x0 = int(rng.integers(pw - out_w + 1))
    img, lab = img[:, y0 : y0 + out_h, x0 : x0 + out_w], lab[:, y0 : y0 + out_h, x0 : x0 + out_w]
    if rng.random() < 0.5:
        img, lab = img[:, :, ::-1], lab[:, :, ::-1]
    return np.ascontiguousarray(img), np.ascontiguousarray(lab)


class WindowSampler:
    """Random windows of ``clip_len`` consecutive frames of the training clips, augmented
    consistently within a window; every start position is a candidate, so the key frame
    (the window's first) falls on every frame of a sequence over an epoch."""

    def __init__(
        self,
        clips: Sequence[Clip],
        clip_len: int,
        size: tuple[int, int],
        scale: tuple[float, float] = (0.75, 1.25),
    ):
        self.clips, self.clip_len, self.size, self.scale = clips, clip_len, size, scale
        self.starts = [
            (c, s) for c, clip in enumerate(clips) for s in range(len(clip) - clip_len + 1)
        ]
        if not self.starts:
            longest = max((len(c) for c in clips), default=0)
            raise ValueError(
                f"no training clip holds {clip_len} frames (longest: {longest}); lower --clip-len"
            )
        self.frames = sum(len(c) for c in clips)

    def batch(
        self, size: int, rng: np.random.Generator
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """frames float N x T x 3 x H x W in [0, 1], labels int64 N x T x H x W,
        labelled bool N x T."""
        frames, labels, labelled = [], [], []
        for i in rng.integers(len(self.starts), size=size):
            c, s = self.starts[i]
            clip, stop = self.clips[c], s + self.clip_len
            img, lab = augment_window(
                clip.frames[s:stop], clip.labels[s:stop], self.size, rng, self.scale
            )
            frames.append(img)
            labels.append(lab)
            labelled.append(clip.labelled[s:stop])
        x = torch.from_numpy(np.stack(frames)).permute(0, 1, 4, 2, 3).float().div_(255.0)
        return x, torch.from_numpy(np.stack(labels)), torch.from_numpy(np.stack(labelled))


class ResumeError(ValueError):
    """A checkpoint folder that does not belong to the run being resumed."""


class EpochCheckpoints:
    """``epoch_<e>.safetensors`` (weights) + ``epoch_<e>.state.pt`` (optimizer, read back with
    weights_only=True) + ``progress.json`` (epoch, history, run identity), written last: a
    kill at any moment leaves the previous epoch intact."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self.progress = self.folder / "progress.json"

    def exists(self) -> bool:
        return self.progress.is_file()

    def save(
        self,
        epoch: int,
        model: torch.nn.Module,
        train_state: dict,
        history: list[dict],
        identity: dict,
    ) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        weights, state = f"epoch_{epoch}.safetensors", f"epoch_{epoch}.state.pt"
        save_weights(model, self.folder / weights)
        save_training_state(self.folder / state, {"epoch": epoch, **train_state})
        write_json(
            self.progress,
            {
                "epoch": epoch,
                "weights": weights,
                "state": state,
                "history": history,
                "identity": identity,
            },
        )
        for old in self.folder.glob("epoch_*"):
            if old.name not in (weights, state):
                old.unlink()

    def load(self, identity: dict) -> tuple[int, dict, dict, list[dict]]:
        """(epoch, weights, train state, history) of the last saved epoch; ResumeError if it
        was saved by a run with another identity."""
        progress = read_json(self.progress)
        saved = progress.get("identity", {})
        changed = sorted(k for k in set(saved) | set(identity) if saved.get(k) != identity.get(k))
        if changed:
            raise ResumeError(
                f"{self.folder} holds a run with other settings ({', '.join(changed)} differ); "
                "use another --out or the original settings"
            )
        state = load_training_state(self.folder / progress["state"])
        if int(state["epoch"]) != int(progress["epoch"]):
            raise ResumeError(f"{self.folder}: optimizer state and progress.json disagree")
        weights = load_weights(self.folder / progress["weights"])
        return int(progress["epoch"]), weights, state, progress["history"]
