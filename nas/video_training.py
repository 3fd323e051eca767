"""Training a cell's video network end to end on windows of consecutive frames.

Slow pathway = the teacher, frozen (key frames are exactly the static network's); the fast
encoder starts from the distilled one and, by default, keeps its BatchNorm statistics
(RetrainConfig.fast_encoder); fast pathway, cell and non-key head train on windows
run as on a video (a key frame, then ``step`` on each following frame), one random scale /
crop / flip per window. Loss on the non-key frames only (a key frame's loss would have no
gradient): cross-entropy on the ground truth where the frame is labelled, else on the
teacher's own prediction, plus distillation of D^_t to the teacher's D_t. A checkpoint every
epoch; a stopped run resumes from the last one. Mixed precision on CUDA.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from nas.checkpoint import json_safe
from nas.config import RetrainConfig
from nas.data.clip import IGNORE_INDEX
from nas.models.heads import label_map, upsample_logits
from nas.models.video import VideoSegNet
from nas.train_utils import (
    EpochCheckpoints,
    ResumeError,
    WindowSampler,
    autocast,
    cosine_lr,
    grad_scaler,
    optimizer_step,
    set_lr,
)
from search_spaces.genotype import Genotype

Log = Callable[[str], None]


def frozen_parts(net: VideoSegNet, fast_encoder: str) -> list[torch.nn.Module]:
    """The parts whose BatchNorm statistics stay the teacher's (eval mode): the slow pathway,
    the non-key head when it is the key head, and the fast encoder unless ``fast_encoder`` is
    "train"."""
    parts = [
        m for m in (net.slow, net.step_head) if not any(p.requires_grad for p in m.parameters())
    ]
    if net.fast is not None and fast_encoder != "train":
        parts.append(net.fast.encoder)
    return parts


def run_identity(genotype: Genotype, data: dict, teacher_key: str, cfg: RetrainConfig) -> dict:
    """What a resumed run must share with the run that saved the checkpoint (the number of
    epochs may grow). A non-key head "own" and a fast encoder "train", what every run had
    before ``step_head`` and ``fast_encoder`` existed, are left out, so those runs still
    resume."""
    config = {**asdict(cfg), "epochs": None}
    for key, default in (("step_head", "own"), ("fast_encoder", "train")):
        if config[key] == default:
            del config[key]
    return json_safe(
        {"genotype": genotype.to_dict(), "data": data, "teacher": teacher_key, "config": config}
    )


def window_features(
    net: VideoSegNet, frames: torch.Tensor
) -> tuple[torch.Tensor, list[tuple[int, torch.Tensor]]]:
    """D_t of every frame of N windows (frames N x T x 3 x H x W; the frozen teacher's, no
    gradient) and the cell's D^_t of every non-key frame t, computed as the network runs on
    video: a key frame every alpha, ``step`` on the others (key_from_features / cell_features
    are key_step / step with each encoder batched over all frames)."""
    n, t = frames.shape[:2]
    x = net.slow.normalize(frames.flatten(0, 1))
    with torch.no_grad():
        slow = net.slow.neck(net.slow.backbone(x)).unflatten(0, (n, t))
    fast = net.fast.encoder(x).unflatten(0, (n, t)) if net.fast is not None else None
    out = []
    for k in range(0, t, net.alpha):
        _, state = net.key_from_features(slow[:, k], None if fast is None else fast[:, k])
        for i in range(k + 1, min(k + net.alpha, t)):
            d_hat, state = net.cell_features(None if fast is None else fast[:, i], state)
            out.append((i, d_hat))
    if not out:
        raise ValueError(f"windows of {t} frames hold no non-key frame at alpha {net.alpha}")
    return slow, out


def window_loss(
    net: VideoSegNet,
    frames: torch.Tensor,
    labels: torch.Tensor,
    labelled: torch.Tensor,
    distill_weight: float,
) -> tuple[torch.Tensor, dict[str, float]]:
    """Mean over the non-key frames of cross-entropy (ground truth where labelled, else the
    teacher's prediction) + ``distill_weight`` x MSE(D^_t, D_t)."""
    size = frames.shape[-2:]
    slow, nonkey = window_features(net, frames)
    ce = distill = 0.0
    for i, d_hat in nonkey:
        with torch.no_grad():
            pseudo = label_map(upsample_logits(net.slow.head(slow[:, i]), size))
        target = torch.where(labelled[:, i, None, None], labels[:, i], pseudo)
        logits = upsample_logits(net.step_head(d_hat), size)
        ce = ce + F.cross_entropy(logits, target, ignore_index=IGNORE_INDEX)
        distill = distill + F.mse_loss(d_hat, slow[:, i])
    ce, distill = ce / len(nonkey), distill / len(nonkey)
    loss = ce + distill_weight * distill
    return loss, {"ce": float(ce.detach()), "distill": float(distill.detach())}


def train_video(
    net: VideoSegNet,
    sampler: WindowSampler,
    cfg: RetrainConfig,
    run_dir: Path,
    device: torch.device,
    identity: dict,
    resume: bool = False,
    log: Log = print,
) -> list[dict]:
    """Train ``net``'s fast pathway, cell and non-key head; a checkpoint after every epoch;
    with ``resume``, continue from the last one. Returns the per-epoch history."""
    params = [p for p in net.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=1e-4)
    scaler = grad_scaler(device)
    checkpoints = EpochCheckpoints(run_dir)
    start, history = 0, []
    if resume and checkpoints.exists():
        start, weights, state, history = checkpoints.load(identity)
        net.load_state_dict(weights)
        try:
            opt.load_state_dict(state["optimizer"])
        except ValueError as exc:  # torch: the saved groups hold other parameters
            raise ResumeError(
                f"{run_dir}: its optimizer state does not fit this network's trained "
                f"parameters ({exc}); a checkpoint of a version up to 2026-12-01, which also "
                "built a fusion only tdiff or unused nodes read? Use another --out"
            ) from None
        scaler.load_state_dict(state["scaler"])
        log(f"[retrain] resuming after epoch {start}")
    steps = cfg.steps_per_epoch or math.ceil(sampler.frames / (cfg.batch_size * sampler.clip_len))
    total = cfg.epochs * steps
    for epoch in range(start, cfg.epochs):
        rng = np.random.default_rng([cfg.seed, epoch])
        net.train()
        for part in frozen_parts(net, cfg.fast_encoder):
            part.eval()
        t0, sums = time.time(), {"loss": 0.0, "ce": 0.0, "distill": 0.0}
        bar = tqdm(range(steps), desc=f"epoch {epoch + 1}/{cfg.epochs}", leave=False, disable=None)
        for i in bar:
            set_lr(opt, cosine_lr(epoch * steps + i, total, cfg.lr))
            frames, labels, labelled = (v.to(device) for v in sampler.batch(cfg.batch_size, rng))
            with autocast(device):
                loss, parts = window_loss(net, frames, labels, labelled, cfg.distill_weight)
            value = optimizer_step(
                loss,
                opt,
                params,
                max_grad_norm=5.0,
                scaler=scaler,
                diverged=lambda v, epoch=epoch, i=i: FloatingPointError(
                    f"video training diverged at epoch {epoch + 1} step {i} (loss {v}); lower --lr"
                ),
            )
            for key, part in (("loss", value), *parts.items()):
                sums[key] += part
            bar.set_postfix(loss=f"{value:.3f}")
        row = {k: round(v / steps, 5) for k, v in sums.items()}
        history.append({"epoch": epoch + 1, **row, "seconds": round(time.time() - t0, 1)})
        checkpoints.save(
            epoch + 1,
            net,
            {"optimizer": opt.state_dict(), "scaler": scaler.state_dict()},
            history,
            identity,
        )
        log(
            f"[retrain] epoch {epoch + 1}/{cfg.epochs} loss {row['loss']:.4f} (ce "
            f"{row['ce']:.4f}, distill {row['distill']:.4f}) {history[-1]['seconds']:.0f} s"
        )
    return history
