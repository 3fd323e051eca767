"""Scoring networks on whole sequences: the static network, the copy baseline and a video
network, on all frames and on non-key frames, and their per-frame GFLOPs.

Quality is mIoU over the labelled frames, or DAVIS J&F semi-supervised: each sequence's
first-frame mask is used by online fine-tuning of the heads on frame 0 (OSVOS-style), for
all three networks alike.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from evaluation.cost import count_flops, per_frame
from evaluation.metrics import ConfusionMatrix, davis_summary, evaluate_davis_sequence
from nas.config import RetrainConfig
from nas.data.clip import IGNORE_INDEX, Clip, to_tensor
from nas.data.davis import first_frame_mask
from nas.models.heads import label_map, upsample_logits
from nas.models.video import StreamingSegmenter, VideoSegNet
from nas.train_utils import autocast
from search_spaces.genotype import copy_genotype

NETWORKS = ("static", "copy", "video")
Log = Callable[[str], None]


METRICS = ("mIoU", "J&F", "J&F unsupervised")
"""mIoU; DAVIS J&F semi-supervised (the first frame's mask is given, used by online
fine-tuning; the first and last frames are not scored, as the official tool); DAVIS J&F
unsupervised (no mask given: foreground vs background from the frames alone, every frame
scored)."""


def metric_of(dataset: str, unsupervised: bool = False) -> str:
    if dataset != "davis":
        return "mIoU"
    return "J&F unsupervised" if unsupervised else "J&F"


def copy_net(net: VideoSegNet) -> VideoSegNet:
    """The copy baseline with ``net``'s slow pathway: non-key frames get the key frame's
    logits (copy_genotype's cell passes D_k on; its head is the key head)."""
    base = VideoSegNet(copy_genotype(alpha=net.alpha), net.slow.num_classes, net.config)
    base.slow.load_state_dict(net.slow.state_dict())
    base.init_step_head()
    return base.to(next(net.parameters()).device).eval().requires_grad_(False)


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
    pathway and cell are left as trained. An own non-key head learns from the cell's outputs
    on frame 0 held still for alpha - 1 steps: the states a non-key frame meets (1 to alpha - 1
    frames in the fast pathway's buffer), each with the mask exact since the frame does not
    change (frame 0 read once as its own successor showed the head only the one-frame
    buffer, unlike the frames it then serves). With ``step_head`` "key" the key head is
    fine-tuned alone and serves non-key frames too."""
    net = copy.deepcopy(net).eval()
    x = to_tensor(np.stack([frame, frame[:, ::-1]]), device)
    y = torch.from_numpy(np.stack([mask, mask[:, ::-1]]).astype(np.int64)).to(device)
    with torch.no_grad():
        z = net.slow.normalize(x)
        slow = net.slow.neck(net.slow.backbone(z))
        fast = net.fast.encoder(z) if net.fast is not None else None
        pairs = [(net.slow.head, slow, y)]
        if step_head == "own":
            _, state = net.key_from_features(slow, fast)
            held = []
            # without a fast pathway every non-key state is the key frame's: one is all of them
            for _ in range(net.alpha - 1 if net.fast is not None else 1):
                d_hat, state = net.cell_features(fast, state)
                held.append(d_hat)
            pairs.append((net.step_head, torch.cat(held), y.repeat(len(held), 1, 1)))
    params = [p for head, _, _ in pairs for p in head.parameters()]
    for p in params:
        p.requires_grad_(True)
    opt = torch.optim.Adam(params, lr=lr)
    for _ in range(steps):
        loss = sum(
            F.cross_entropy(
                upsample_logits(head(feat), target.shape[-2:]), target, ignore_index=IGNORE_INDEX
            )
            for head, feat, target in pairs
        )
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    if step_head == "key":
        net.init_step_head()
    return net.requires_grad_(False)


class QualityMeter:
    """One network's quality on all frames and on non-key frames only, in one of METRICS."""

    def __init__(self, metric: str, num_classes: int):
        if metric not in METRICS:
            raise ValueError(f"metric must be one of {METRICS}, got {metric!r}")
        self.metric = metric
        self.semi_supervised = metric == "J&F"
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
        semi = self.semi_supervised
        self.sequences["all"].append(evaluate_davis_sequence(gt, pred, semi_supervised=semi))
        scored = nonkey.copy()
        if semi:  # the given first frame and, as the official tool, the last are not scored
            scored[[0, -1]] = False
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
        return {"key": key, "nonkey": nonkey, "per_frame": per_frame(key, nonkey, model.alpha)}

    static = count_flops(net.slow, to_tensor(picks[0].frames[:1], device)).gflops
    costs = {
        "static": {"key": static, "nonkey": static, "per_frame": static},
        "copy": video_cost(copy_net(net)),
        "video": video_cost(net),
    }
    for cost in costs.values():
        cost["ratio"] = cost["per_frame"] / static
    return costs
