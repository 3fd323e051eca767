"""`python -m nas.retrain`: a cell trained fully on a real dataset, scored against the static
network and the copy baseline, and exported.

    python -m nas.retrain --cell cell.json --dataset camvid --data-root DIR --out runs/rt \\
        [--epochs 20] [--resolution 360x480] [--teacher FILE | --pretrained-backbone FILE]

1. The teacher (the static network) is trained, or loaded from ``--teacher``, with one fast
   encoder per beta distilled to its deep features (nas.teacher; resumable).
2. The video network: slow pathway = the teacher, frozen (backbone, neck and key-frame head:
   key frames are exactly the static network's); the fast encoder starts from the distilled
   one; fast pathway, cell and non-key head train end to end on windows of consecutive frames
   run as on a video (a key frame, then ``step`` on each following frame), with one random
   scale / crop / flip per window. Loss on the non-key frames (a loss on key frames would
   have no gradient: they are the frozen teacher's): cross-entropy on the ground truth where
   the frame is labelled, else on the teacher's own prediction for that frame, plus
   distillation of the cell output D^_t to the teacher's D_t. Checkpoint every epoch;
   ``--resume`` continues from the last one. Mixed precision on CUDA (bf16, else fp16).
3. ``report.json`` / ``report.md``: quality on the val split (mIoU; J&F for DAVIS, with the
   first-frame mask used by online fine-tuning of the heads on frame 0 of each sequence) on
   non-key frames and on all frames, and per-frame GFLOPs, for the static network, the copy
   baseline (copy_genotype at the cell's alpha) and the video network. Labels are scored at
   the evaluation resolution (resized nearest).
4. ``<out>/cell/``: cell.json + weights.safetensors, readable by nas.segment and
   nas.cellfile.build_from_cell.
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import math
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from evaluation.cost import count_flops
from evaluation.metrics import ConfusionMatrix, davis_summary, evaluate_davis_sequence
from nas.cellfile import read_cell, write_cell
from nas.checkpoint import load_weights, save_weights, write_json
from nas.data import DATASETS, class_names, load_clips, num_classes
from nas.data.clip import IGNORE_INDEX, Clip
from nas.data.davis import first_frame_mask
from nas.data.images import DatasetLayoutError, ImageReadError
from nas.models.config import NetConfig
from nas.models.heads import label_map, upsample_logits
from nas.models.video import StreamingSegmenter, VideoSegNet
from nas.teacher import TeacherConfig, ensure_teacher, fast_encoder_file
from nas.train_utils import (
    EpochCheckpoints,
    ResumeError,
    WindowSampler,
    autocast,
    cosine_lr,
    grad_scaler,
    pick_device,
)
from search_spaces.genotype import Genotype, GenotypeError, copy_genotype

NETWORKS = ("static", "copy", "video")
STEP_HEADS = ("own", "key")
Log = Callable[[str], None]


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

    def __post_init__(self) -> None:
        if self.step_head not in STEP_HEADS:
            raise ValueError(f"step_head must be one of {STEP_HEADS}, got {self.step_head!r}")


def metric_of(dataset: str) -> str:
    return "J&F" if dataset == "davis" else "mIoU"


def fingerprint(dataset: str, root: str | Path | None, split: str, clips: Sequence[Clip]) -> dict:
    """What the training data is, compact: a change means another teacher and another run."""
    names = "\n".join(f"{c.sequence}:{c.frame_ids[0]}:{len(c)}" for c in clips)
    return {
        "dataset": dataset,
        "root": str(Path(root).resolve()) if root else None,
        "split": split,
        "size": list(clips[0].frames.shape[1:3]) if clips else None,
        "frames": sum(len(c) for c in clips),
        "clips": hashlib.sha256(names.encode()).hexdigest()[:16],
    }


# ---- the networks ----------------------------------------------------------------------------
def build_video_net(
    genotype: Genotype, teacher_dir: Path, meta: dict, step_head: str = "own"
) -> VideoSegNet:
    """Slow pathway = the teacher (frozen); non-key head from the teacher's head (frozen too
    when ``step_head`` is "key"); fast encoder and projection from the distilled fast encoder
    of the cell's beta."""
    net = VideoSegNet(genotype, meta["num_classes"], NetConfig(**meta["net"]))
    net.slow.load_state_dict(load_weights(teacher_dir / "teacher.safetensors"))
    net.init_step_head()
    if net.fast is not None:
        distilled = load_weights(teacher_dir / fast_encoder_file(genotype.beta))
        net.fast.load_state_dict(distilled, strict=False)  # fusion is the cell's own
    net.slow.requires_grad_(False)
    net.step_head.requires_grad_(step_head == "own")
    return net


def frozen_parts(net: VideoSegNet) -> list[torch.nn.Module]:
    """The parts that do not train (the slow pathway; the non-key head when it is the key
    head): kept in eval mode so their BatchNorm statistics stay the teacher's."""
    parts = (net.slow, net.step_head)
    return [m for m in parts if not any(p.requires_grad for p in m.parameters())]


def copy_net(net: VideoSegNet) -> VideoSegNet:
    """The copy baseline with ``net``'s slow pathway: non-key frames get the key frame's
    logits (copy_genotype's cell passes D_k on; its head is the key head)."""
    base = VideoSegNet(copy_genotype(alpha=net.alpha), net.slow.num_classes, net.config)
    base.slow.load_state_dict(net.slow.state_dict())
    base.init_step_head()
    return base.to(next(net.parameters()).device).eval().requires_grad_(False)


# ---- training ------------------------------------------------------------------------------
def run_identity(genotype: Genotype, data: dict, teacher_key: str, cfg: RetrainConfig) -> dict:
    """What a resumed run must share with the run that saved the checkpoint (the number of
    epochs may grow). The default non-key head is left out, so runs saved before
    ``step_head`` existed still resume."""
    config = {**asdict(cfg), "epochs": None}
    if cfg.step_head == "own":
        del config["step_head"]
    return _json_safe(
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
        opt.load_state_dict(state["optimizer"])
        scaler.load_state_dict(state["scaler"])
        log(f"[retrain] resuming after epoch {start}")
    steps = cfg.steps_per_epoch or math.ceil(sampler.frames / (cfg.batch_size * sampler.clip_len))
    total = cfg.epochs * steps
    for epoch in range(start, cfg.epochs):
        rng = np.random.default_rng([cfg.seed, epoch])
        net.train()
        for part in frozen_parts(net):
            part.eval()
        t0, sums = time.time(), {"loss": 0.0, "ce": 0.0, "distill": 0.0}
        bar = tqdm(range(steps), desc=f"epoch {epoch + 1}/{cfg.epochs}", leave=False, disable=None)
        for i in bar:
            for group in opt.param_groups:
                group["lr"] = cosine_lr(epoch * steps + i, total, cfg.lr)
            frames, labels, labelled = (v.to(device) for v in sampler.batch(cfg.batch_size, rng))
            with autocast(device):
                loss, parts = window_loss(net, frames, labels, labelled, cfg.distill_weight)
            if not torch.isfinite(loss):
                raise FloatingPointError(
                    f"video training diverged at epoch {epoch + 1} step {i} (loss "
                    f"{float(loss)}); lower --lr"
                )
            opt.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.unscale_(opt)
            torch.nn.utils.clip_grad_norm_(params, 5.0)
            scaler.step(opt)
            scaler.update()
            value = float(loss.detach())
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


# ---- evaluation ----------------------------------------------------------------------------
def to_tensor(frames: np.ndarray, device: torch.device) -> torch.Tensor:
    """uint8 (T x) H x W x 3 -> float (T x) 3 x H x W in [0, 1]."""
    x = torch.from_numpy(np.ascontiguousarray(frames)).to(device)
    return x.movedim(-1, -3).float().div_(255.0)


@torch.no_grad()
def predict(
    fn: Callable[[torch.Tensor], torch.Tensor], frames: np.ndarray, device: torch.device
) -> np.ndarray:
    """Class ids T x H x W of ``fn`` (frame 1 x 3 x H x W -> logits) run frame by frame."""
    preds = []
    for frame in frames:
        with autocast(device):
            logits = fn(to_tensor(frame, device)[None])
        preds.append(label_map(logits)[0].to(torch.uint8).cpu().numpy())
    return np.stack(preds)


def online_finetune(
    net: VideoSegNet,
    frame: np.ndarray,
    mask: np.ndarray,
    steps: int,
    lr: float,
    device: torch.device,
    step_head: str = "own",
) -> VideoSegNet:
    """A copy of ``net`` whose key and non-key heads are fine-tuned on a sequence's first
    frame and its given mask (and the mirror image): how semi-supervised VOS uses the
    first-frame annotation (OSVOS-style, as the SlowFast-for-VOS study). The backbone, fast
    pathway and cell are left as trained. An own non-key head learns from the cell's output
    on frame 0 read as its own successor; with ``step_head`` "key" the key head is
    fine-tuned alone and serves non-key frames too."""
    net = copy.deepcopy(net).eval()
    x = to_tensor(np.stack([frame, frame[:, ::-1]]), device)
    y = torch.from_numpy(np.stack([mask, mask[:, ::-1]]).astype(np.int64)).to(device)
    with torch.no_grad():
        z = net.slow.normalize(x)
        slow = net.slow.neck(net.slow.backbone(z))
        fast = net.fast.encoder(z) if net.fast is not None else None
        pairs = [(net.slow.head, slow)]
        if step_head == "own":
            _, state = net.key_from_features(slow, fast)
            pairs.append((net.step_head, net.cell_features(fast, state)[0]))
    params = [p for head, _ in pairs for p in head.parameters()]
    for p in params:
        p.requires_grad_(True)
    opt = torch.optim.Adam(params, lr=lr)
    for _ in range(steps):
        loss = sum(
            F.cross_entropy(upsample_logits(head(feat), y.shape[-2:]), y, ignore_index=IGNORE_INDEX)
            for head, feat in pairs
        )
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    if step_head == "key":
        net.init_step_head()
    return net.requires_grad_(False)


class QualityMeter:
    """One network's quality on all frames and on non-key frames only: mIoU over the labelled
    frames (confusion matrix), or DAVIS J&F (semi-supervised: a sequence's first frame is
    given and, as the official tool, its last frame is not scored either)."""

    def __init__(self, metric: str, num_classes: int):
        self.metric = metric
        if metric == "mIoU":
            self.matrices = {
                "all": ConfusionMatrix(num_classes),
                "nonkey": ConfusionMatrix(num_classes),
            }
        else:
            self.sequences: dict[str, list[dict]] = {"all": [], "nonkey": []}

    def add(
        self, pred: np.ndarray, gt: np.ndarray, labelled: np.ndarray, nonkey: np.ndarray
    ) -> None:
        if self.metric == "mIoU":
            self.matrices["all"].update(pred[labelled], gt[labelled])
            self.matrices["nonkey"].update(pred[labelled & nonkey], gt[labelled & nonkey])
            return
        self.sequences["all"].append(evaluate_davis_sequence(gt, pred, semi_supervised=True))
        scored = np.zeros(len(gt), bool)
        scored[1:-1] = nonkey[1:-1]
        if scored.any():
            self.sequences["nonkey"].append(
                evaluate_davis_sequence(gt[scored], pred[scored], semi_supervised=False)
            )

    def result(self) -> dict[str, float]:
        if self.metric == "mIoU":
            return {k: m.miou() for k, m in self.matrices.items()}
        return {k: _jf(v) for k, v in self.sequences.items()}


def _jf(sequences: list[dict]) -> float:
    if not any(sequences):
        return math.nan
    return davis_summary([s for s in sequences if s])["JF"]


def evaluate_networks(
    net: VideoSegNet,
    clips: Sequence[Clip],
    metric: str,
    cfg: RetrainConfig,
    device: torch.device,
    log: Log = print,
) -> dict[str, dict[str, float]]:
    """Quality of the static network, the copy baseline and the video network on ``clips``
    (whole sequences, key frame at t % alpha == 0), on all and on non-key frames."""
    net.eval()
    meters = {name: QualityMeter(metric, net.slow.num_classes) for name in NETWORKS}
    base_copy = copy_net(net)
    for clip in tqdm(clips, desc="evaluating", leave=False, disable=None):
        video = net
        if metric == "J&F":
            video = online_finetune(
                net,
                clip.frames[0],
                first_frame_mask(clip),
                cfg.online_steps,
                cfg.online_lr,
                device,
                cfg.step_head,
            )
        runners = {
            "static": video.slow,
            "copy": StreamingSegmenter(base_copy if video is net else copy_net(video)),
            "video": StreamingSegmenter(video),
        }
        nonkey = np.arange(len(clip)) % net.alpha != 0
        for name, fn in runners.items():
            meters[name].add(predict(fn, clip.frames, device), clip.labels, clip.labelled, nonkey)
    results = {name: m.result() for name, m in meters.items()}
    log(
        "[retrain] "
        + ", ".join(
            f"{n} {metric} non-key {r['nonkey']:.4f} all {r['all']:.4f}" for n, r in results.items()
        )
    )
    return results


@torch.no_grad()
def per_frame_gflops(
    net: VideoSegNet, clips: Sequence[Clip], device: torch.device, windows: int = 3
) -> dict[str, dict[str, float]]:
    """GFLOPs per frame at the clips' resolution: key frame, non-key frame (mean over the
    frames a key frame serves, gated ops at the density they had) and the average
    (key + (alpha - 1) x non-key) / alpha, measured on the first window of a few clips."""
    net.eval()
    picks = [c for c in clips if len(c) >= 2][:windows]
    if not picks:
        raise ValueError("GFLOPs need a clip of at least 2 frames")

    def video_cost(model: VideoSegNet) -> dict[str, float]:
        keys, steps = [], []
        for clip in picks:
            x = to_tensor(clip.frames[: model.alpha], device)
            keys.append(count_flops(model.key_step, x[:1]).gflops)
            _, state = model.key_step(x[:1])
            for t in range(1, len(x)):
                steps.append(count_flops(model.step, x[t : t + 1], state).gflops)
                _, state = model.step(x[t : t + 1], state)
        key, nonkey = float(np.mean(keys)), float(np.mean(steps))
        return {
            "key": key,
            "nonkey": nonkey,
            "per_frame": (key + (model.alpha - 1) * nonkey) / model.alpha,
        }

    static = count_flops(net.slow, to_tensor(picks[0].frames[:1], device)).gflops
    costs = {
        "static": {"key": static, "nonkey": static, "per_frame": static},
        "copy": video_cost(copy_net(net)),
        "video": video_cost(net),
    }
    for cost in costs.values():
        cost["ratio"] = cost["per_frame"] / static
    return costs


# ---- report and export ---------------------------------------------------------------------
def build_report(quality: dict, gflops: dict, metric: str, **info) -> dict:
    networks = {
        name: {
            "quality_nonkey": quality[name]["nonkey"],
            "quality_all": quality[name]["all"],
            "gflops_per_frame": gflops[name]["per_frame"],
            "gflops_key": gflops[name]["key"],
            "gflops_nonkey": gflops[name]["nonkey"],
            "gflops_ratio": gflops[name]["ratio"],
        }
        for name in NETWORKS
    }
    return _json_safe({"metric": metric, "networks": networks, **info})


def _json_safe(value: object) -> object:
    """NaN -> null (JSON has no NaN); tuples -> lists."""
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def markdown_table(report: dict) -> str:
    metric = report["metric"]
    lines = [
        f"| network | {metric} non-key | {metric} all frames | GFLOPs/frame | vs static |",
        "|---|---|---|---|---|",
    ]
    fmt = lambda v: "n/a" if v is None else f"{v:.4f}"
    for name, row in report["networks"].items():
        lines.append(
            f"| {name} | {fmt(row['quality_nonkey'])} | {fmt(row['quality_all'])} | "
            f"{row['gflops_per_frame']:.3f} | {row['gflops_ratio']:.1%} |"
        )
    return "\n".join(lines)


def write_report(out: Path, report: dict) -> None:
    write_json(out / "report.json", report)
    notes = "\n".join(f"- {note}" for note in report.get("notes", []))
    text = (
        f"# Retrain report: {report.get('dataset')} ({report.get('split')}), alpha "
        f"{report['genotype']['alpha']}\n\n{markdown_table(report)}\n\n{notes}\n"
    )
    (out / "report.md").write_text(text)


def export_cell(
    folder: Path,
    net: VideoSegNet,
    names: Sequence[str],
    resolution: Sequence[int],
    metrics: dict,
    provenance: dict,
) -> None:
    """cell.json + weights.safetensors: what nas.segment and build_from_cell load."""
    save_weights(net, folder / "weights.safetensors")
    write_cell(
        folder / "cell.json",
        net.genotype,
        net.slow.num_classes,
        net.config,
        class_names=list(names),
        resolution=list(resolution),
        metrics=metrics,
        provenance=provenance,
    )


# ---- the command ---------------------------------------------------------------------------
def parse_size(text: str) -> tuple[int, int]:
    try:
        h, w = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected HxW (e.g. 360x480), got {text!r}") from None
    if h < 16 or w < 16:
        raise argparse.ArgumentTypeError(f"resolution {text} is below 16x16")
    return h, w


def add_step_head_flag(p: argparse.ArgumentParser) -> None:
    """``--step-head``, shared with bench.real."""
    p.add_argument(
        "--step-head",
        choices=STEP_HEADS,
        default=RetrainConfig.step_head,
        help="non-key head: own (trained with the cell) or key (the frozen key head itself)",
    )


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m nas.retrain",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--cell", required=True, type=Path, help="genotype or exported cell.json")
    p.add_argument("--dataset", required=True, choices=DATASETS)
    p.add_argument("--data-root", help="the dataset's folder (not needed for synthetic)")
    p.add_argument("--out", required=True, type=Path, help="run folder")
    p.add_argument("--train-split", default="train")
    p.add_argument("--val-split", default="val")
    p.add_argument(
        "--resolution",
        type=parse_size,
        help="HxW to train and evaluate at (default: the dataset's own)",
    )
    p.add_argument("--max-train-clips", type=int, help="bound the training sequences loaded")
    p.add_argument("--max-val-clips", type=int, help="bound the evaluated sequences")
    p.add_argument("--epochs", type=int, default=RetrainConfig.epochs)
    p.add_argument("--steps-per-epoch", type=int, default=0, help="0: one pass over the frames")
    p.add_argument("--batch-size", type=int, default=RetrainConfig.batch_size, help="windows")
    p.add_argument("--clip-len", type=int, default=0, help="frames per window (0: alpha)")
    p.add_argument("--lr", type=float, default=RetrainConfig.lr)
    p.add_argument(
        "--online-steps",
        type=int,
        default=RetrainConfig.online_steps,
        help="DAVIS: head fine-tuning steps on each sequence's first frame",
    )
    add_step_head_flag(p)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--teacher", help="StaticSegNet safetensors to use instead of training one")
    p.add_argument(
        "--pretrained-backbone",
        help="ImageNet MobileNetV2 weights (torchvision names) to start the teacher from",
    )
    p.add_argument("--teacher-steps", type=int, default=TeacherConfig.steps)
    p.add_argument("--teacher-fast-steps", type=int, default=TeacherConfig.fast_steps)
    p.add_argument(
        "--width-mult", type=float, help="MobileNetV2 width (default: the cell's net, else 1.0)"
    )
    p.add_argument(
        "--deep-channels", type=int, help="slow-state width (default: the cell's net, else 128)"
    )
    p.add_argument("--device", help="cpu, cuda, cuda:1 ... (default: cuda when available)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out")
    return p


def net_config(args: argparse.Namespace, cell_data: dict) -> NetConfig:
    """The cell's own sizes (an exported cell.json carries them), overridden by the flags."""
    base = NetConfig(**cell_data.get("net", {}))
    overrides = {"width_mult": args.width_mult, "deep_channels": args.deep_channels}
    return replace(base, **{k: v for k, v in overrides.items() if v is not None})


def check_inputs(args: argparse.Namespace) -> None:
    """Every input a user names exists, before anything is computed."""
    for flag, value in (
        ("--teacher", args.teacher),
        ("--pretrained-backbone", args.pretrained_backbone),
    ):
        if value and not Path(value).is_file():
            raise FileNotFoundError(f"{flag} file {value} does not exist")
    if args.dataset != "synthetic" and not args.data_root:
        raise DatasetLayoutError(f"dataset {args.dataset} needs --data-root")
    for flag in ("epochs", "batch_size", "teacher_steps", "teacher_fast_steps"):
        if getattr(args, flag) < 1:
            raise ValueError(f"--{flag.replace('_', '-')} must be >= 1")
    if args.clip_len == 1:
        raise ValueError("--clip-len 1 holds no non-key frame; use >= 2 (or 0: alpha)")
    if EpochCheckpoints(args.out / "train").exists() and not args.resume:
        raise ResumeError(
            f"{args.out} already holds a run; pass --resume to continue it or choose another --out"
        )


def run(args: argparse.Namespace, log: Log) -> dict:
    genotype, cell_data = read_cell(args.cell)
    net_cfg = net_config(args, cell_data)
    check_inputs(args)
    cfg = RetrainConfig(
        epochs=args.epochs,
        steps_per_epoch=args.steps_per_epoch,
        batch_size=args.batch_size,
        clip_len=args.clip_len or genotype.alpha,
        lr=args.lr,
        online_steps=args.online_steps,
        seed=args.seed,
        step_head=args.step_head,
    )
    device = pick_device(args.device)
    root = args.data_root if args.dataset != "synthetic" else None
    train = load_clips(
        args.dataset, root, args.train_split, size=args.resolution, max_clips=args.max_train_clips
    )
    val = load_clips(
        args.dataset, root, args.val_split, size=args.resolution, max_clips=args.max_val_clips
    )
    k = num_classes(args.dataset, root)
    resolution = list(val[0].frames.shape[1:3])
    data = fingerprint(args.dataset, root, args.train_split, train)
    log(
        f"[retrain] {len(train)} training sequences ({data['frames']} frames), {len(val)} "
        f"evaluation sequences, {resolution[0]}x{resolution[1]}, device {device}"
    )

    teacher_cfg = TeacherConfig(steps=args.teacher_steps, fast_steps=args.teacher_fast_steps)
    teacher_dir = args.out / "teacher"
    meta = ensure_teacher(
        teacher_dir,
        train,
        k,
        data,
        net_cfg,
        teacher_cfg,
        args.seed,
        args.teacher,
        args.pretrained_backbone,
        device,
        log,
    )
    torch.manual_seed(cfg.seed)
    net = build_video_net(genotype, teacher_dir, meta, cfg.step_head).to(device)
    sampler = WindowSampler(train, cfg.clip_len, tuple(train[0].frames.shape[1:3]), cfg.scale)
    identity = run_identity(genotype, data, meta["key"], cfg)
    history = train_video(net, sampler, cfg, args.out / "train", device, identity, args.resume, log)

    metric = metric_of(args.dataset)
    quality = evaluate_networks(net, val, metric, cfg, device, log)
    gflops = per_frame_gflops(net, val, device)
    notes = [
        "static = the teacher; key frames of the copy baseline and of the video network are "
        "exactly its output (the slow pathway is frozen)",
        "copy = copy_genotype at the cell's alpha: non-key frames get the key frame's logits",
        f"quality on the {args.val_split} split at {resolution[0]}x{resolution[1]} (labels "
        "resized nearest); non-key = frames with t % alpha != 0 of each sequence",
        "video training loss on non-key frames only (cross-entropy on ground truth, teacher "
        "labels where unlabelled, + D_t distillation); fast pathway, cell and "
        + (
            "non-key head trained"
            if cfg.step_head == "own"
            else "no head trained (non-key frames are read by the key head)"
        )
        + ", slow pathway frozen",
    ]
    if metric == "J&F":
        heads = "the key and non-key heads" if cfg.step_head == "own" else "the shared head"
        notes.append(
            f"DAVIS semi-supervised: first-frame mask used by online fine-tuning of "
            f"{heads} ({cfg.online_steps} Adam steps, lr "
            f"{cfg.online_lr}, frame 0 and its mirror) per sequence, for all three "
            "networks; J&F skips the first and last frame"
        )
    report = build_report(
        quality,
        gflops,
        metric,
        dataset=args.dataset,
        split=args.val_split,
        resolution=resolution,
        genotype=genotype.to_dict(),
        net=net_cfg.to_dict(),
        teacher={
            "source": meta.get("source"),
            "steps": teacher_cfg.steps,
            "fast_steps": teacher_cfg.fast_steps,
            "seconds": meta.get("seconds"),
        },
        training={**asdict(cfg), "history": history},
        notes=notes,
    )
    write_report(args.out, report)
    export_cell(
        args.out / "cell",
        net,
        class_names(args.dataset, k),
        resolution,
        metrics={n: report["networks"][n] for n in NETWORKS},
        provenance={
            "dataset": args.dataset,
            "data_root": data["root"],
            "teacher": meta["key"],
            "epochs": cfg.epochs,
            "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        },
    )
    log(
        f"\n{markdown_table(report)}\n\n[retrain] report: {args.out / 'report.md'}; cell: "
        f"{args.out / 'cell'}"
    )
    return report


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    log = lambda text: print(text, flush=True)
    try:
        run(args, log)
    except (
        GenotypeError,
        DatasetLayoutError,
        ImageReadError,
        FileNotFoundError,
        ResumeError,
        ValueError,
    ) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(
            f"interrupted: the last finished epoch is saved; continue with --resume "
            f"--out {args.out}",
            file=sys.stderr,
        )
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
