"""A child: genotype -> fast projection + fusion + cell + head copy, trained briefly on cached
teacher features and scored on held-out clips.

Training samples are (key frame k, frame t = k + d, 1 <= d < alpha) pairs; the loss is
cross-entropy on the ground truth where frame t is labelled, else on the teacher's labels,
plus feature distillation of the cell output to the teacher's D_t. Quality is mIoU on
non-key frames only; cost is the whole video network's average per-frame GFLOPs, and with
the run's latency table its predicted per-frame milliseconds; the reward reads one of them.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from evaluation.cost import count_flops, per_frame
from evaluation.metrics import ConfusionMatrix
from nas.cache import FeatureCache
from nas.checkpoint import save_weights
from nas.config import COSTS, ChildConfig
from nas.data.clip import IGNORE_INDEX
from nas.latency import predict
from nas.models.heads import label_map, upsample_logits
from nas.models.video import VideoSegNet
from nas.reward import RewardConfig, reward
from nas.teacher_folder import TeacherFolder
from nas.train_utils import cosine_lr, optimizer_step, set_lr
from search_spaces.genotype import Genotype, copy_genotype

TRAINED_PREFIXES = ("fast.proj.", "fast.fusion.", "cell.", "step_head.")


class ChildDiverged(FloatingPointError):
    """The child's loss became NaN or infinite."""


class PairSampler:
    """(key, frame) pairs for one alpha from a cache, as batched tensors."""

    def __init__(self, cache: FeatureCache, alpha: int, beta: str | None):
        self.cache, self.alpha, self.beta = cache, alpha, beta
        t_len = cache.clip_len
        self.pairs = np.array(
            [
                (c, k, d)
                for c in range(cache.num_clips)
                for k in range(0, t_len, alpha)
                for d in range(1, alpha)
                if k + d < t_len
            ],
            dtype=np.int64,
        )
        if len(self.pairs) == 0:
            raise ValueError(f"clips of {t_len} frames hold no non-key frame at alpha {alpha}")

    def batch(self, rows: np.ndarray) -> dict[str, torch.Tensor]:
        c, k, d = self.pairs[rows].T
        t = k + d
        arr = self.cache
        out = {
            "slow": arr.slow[c, k],
            "slow_t": arr.slow[c, t],
            "labels": arr.labels[c, t],
            "labelled": arr.labelled[c, t],
            "teacher_t": arr.logits[c, t],
            "teacher_k": arr.logits[c, k],
        }
        if self.beta is not None:
            fast = arr.fast(self.beta)
            out["fast_key"], out["fast_t"] = fast[c, k], fast[c, t]
            # the state's buffer before frame t: frames k+1 .. t-1 right-aligned in
            # alpha - 1 slots, zeros before them (the step shifts frame t in)
            slots = self.alpha - 1
            buf = np.zeros((len(rows), slots, *fast.shape[2:]), dtype=np.float16)
            for i, (ci, ki, di) in enumerate(zip(c, k, d)):
                if di > 1:
                    buf[i, slots - (di - 1) :] = fast[ci, ki + 1 : ki + di]
            out["buffer"] = buf
        tensors = {key: torch.from_numpy(np.ascontiguousarray(v)) for key, v in out.items()}
        for key in ("slow", "slow_t", "teacher_t", "teacher_k", "fast_key", "fast_t", "buffer"):
            if key in tensors:
                tensors[key] = tensors[key].float()
        labels = tensors["labels"].long()
        unlabelled = ~tensors["labelled"].bool()
        if unlabelled.any():
            teacher_t = tensors["teacher_t"][unlabelled]
            labels[unlabelled] = label_map(upsample_logits(teacher_t, labels.shape[-2:]))
        tensors["target"] = labels
        return tensors


def key_state(net: VideoSegNet, b: dict):
    """The state a key frame k leaves, with frames k+1 .. t-1 already in the buffer."""
    if net.fast is None:
        return net.key_from_features(b["slow"], None)[1]
    return b["slow"], net.fast.proj(b["fast_key"]), b["buffer"]


def deep_features(net: VideoSegNet, b: dict, state=None) -> torch.Tensor:
    """D^_t of the batch's frames t (the cell's output)."""
    state = key_state(net, b) if state is None else state
    return net.cell_features(b.get("fast_t"), state)[0]


def trained_state(net: VideoSegNet) -> dict[str, torch.Tensor]:
    """Only what the child learned (the rest is the teacher's)."""
    return {k: v for k, v in net.state_dict().items() if k.startswith(TRAINED_PREFIXES)}


class ChildRun:
    """Trains and evaluates one genotype; ``run`` calls ``report`` after every round."""

    def __init__(
        self,
        genotype: Genotype,
        teacher_dir: Path,
        train: FeatureCache,
        val: FeatureCache,
        cfg: ChildConfig = ChildConfig(),
        reward_cfg: RewardConfig = RewardConfig(),
        seed: int = 0,
        device: torch.device | str = "cpu",
        cost: str = "gflops",
        latency_table: dict | None = None,
    ):
        """``cost`` (one of nas.config.COSTS) is what the reward reads; ``latency_table``
        (nas.latency's, needed for cost "latency") adds predicted milliseconds to the cost."""
        if cost not in COSTS:
            raise ValueError(f"cost must be one of {COSTS}, got {cost!r}")
        if cost == "latency" and latency_table is None:
            raise ValueError("cost 'latency' needs the run's latency table")
        self.genotype, self.cfg, self.reward_cfg = genotype, cfg, reward_cfg
        self.cost_name = cost
        self.latency_cost = self.predict_latency(latency_table) if latency_table else {}
        torch.manual_seed(seed)
        self.rng = np.random.default_rng(seed)
        self.device = torch.device(device)
        self.net = (
            TeacherFolder(teacher_dir)
            .video_net(genotype, train.meta, train_fast_encoder=False)
            .to(self.device)
        )
        beta = genotype.beta if self.net.fast is not None else None
        self.train_pairs = PairSampler(train, genotype.alpha, beta)
        self.val_pairs = PairSampler(val, genotype.alpha, beta)
        if cfg.eval_clips:
            keep = self.val_pairs.pairs[:, 0] < cfg.eval_clips
            self.val_pairs.pairs = self.val_pairs.pairs[keep]
        self.meta = train.meta
        self.params = [p for p in self.net.parameters() if p.requires_grad]
        self.opt = torch.optim.Adam(self.params, lr=cfg.lr) if self.params else None
        self.steps_done = 0

    def _to_device(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {k: v.to(self.device, non_blocking=True) for k, v in batch.items()}

    def sample_batch(self) -> dict[str, torch.Tensor]:
        """A random training batch of (key, frame) pairs, on the child's device."""
        rows = self.rng.integers(len(self.train_pairs.pairs), size=self.cfg.batch_size)
        return self._to_device(self.train_pairs.batch(rows))

    def batch_loss(self, b: dict[str, torch.Tensor]) -> torch.Tensor:
        """Cross-entropy of the non-key head on the targets + distillation of D^_t to D_t."""
        d_hat = deep_features(self.net, b)
        logits = upsample_logits(self.net.step_head(d_hat), b["target"].shape[-2:])
        loss = F.cross_entropy(logits, b["target"], ignore_index=IGNORE_INDEX)
        return loss + self.cfg.distill_weight * F.mse_loss(d_hat, b["slow_t"])

    def train_on(self, b: dict[str, torch.Tensor]) -> float:
        """One optimiser step on batch ``b``; the loss before the step."""
        set_lr(self.opt, cosine_lr(self.steps_done, self.cfg.steps, self.cfg.lr, warmup=False))
        value = optimizer_step(
            self.batch_loss(b),
            self.opt,
            self.params,
            max_grad_norm=5.0,
            diverged=lambda v: ChildDiverged(f"loss {v} at step {self.steps_done}"),
        )
        self.steps_done += 1
        return value

    def train_steps(self, n: int) -> float:
        self.net.train()
        self.net.slow.eval()
        if self.net.fast is not None:
            self.net.fast.encoder.eval()
        loss_value = float("nan")
        for _ in range(n):
            if self.opt is None:
                break
            loss_value = self.train_on(self.sample_batch())
        return loss_value

    @torch.no_grad()
    def confusions(self) -> tuple[ConfusionMatrix, ConfusionMatrix, ConfusionMatrix, list]:
        """Confusion matrices on the held-out non-key frames of the child, the copy baseline
        and the static teacher, and the gated ops' densities met there."""
        self.net.eval()
        k = self.meta["num_classes"]
        child, copy, static = ConfusionMatrix(k), ConfusionMatrix(k), ConfusionMatrix(k)
        pairs = self.val_pairs
        densities = []
        for start in range(0, len(pairs.pairs), 64):
            b = self._to_device(pairs.batch(np.arange(start, min(start + 64, len(pairs.pairs)))))
            labelled = b["labelled"].bool()
            if not labelled.any():
                continue
            size = b["labels"].shape[-2:]
            gt = b["labels"].long()[labelled]
            for matrix, logits in (
                (child, self.net.step_head(deep_features(self.net, b))),
                (copy, b["teacher_k"]),
                (static, b["teacher_t"]),
            ):
                matrix.update(label_map(upsample_logits(logits[labelled], size)), gt)
            densities += [  # a gate that never ran (an unused node's) has no density
                m.last_density
                for op in self.net.cell.computed_ops()
                for m in op.modules()
                if hasattr(m, "sparse_branch")
            ]
        return child, copy, static, densities

    @torch.no_grad()
    def evaluate(self) -> dict:
        """mIoU on non-key frames (child, copy baseline, static teacher) and the cost."""
        child, copy, static, densities = self.confusions()
        pairs = self.val_pairs
        cost = {**self.cost(pairs), **self.latency_cost}
        quality = child.miou()
        value, target = {
            "gflops": ("gflops", "target_gflops"),
            "latency": ("latency_ms", "target_latency_ms"),
        }[self.cost_name]
        return {
            "quality": quality,
            "copy_quality": copy.miou(),
            "static_quality": static.miou(),
            "gated_density": float(np.mean(densities)) if densities else None,
            **cost,
            "reward": reward(quality, cost[value], cost[target], self.reward_cfg.exponent),
        }

    def cost(self, pairs: PairSampler) -> dict:
        """Average per-frame GFLOPs of the whole video network, measured on held-out pairs
        (gated ops counted at the density they had on them), and the copy baseline's at the
        same alpha (static network on key frames, the head alone on the others)."""
        n = min(16, len(pairs.pairs))
        b = self._to_device(pairs.batch(np.arange(n)))
        state = key_state(self.net, b)
        step = count_flops(lambda: self.net.step_head(deep_features(self.net, b, state))).gflops
        step /= n
        head = count_flops(self.net.step_head, b["slow"][:1]).gflops
        static = self.meta["static_gflops"]
        key, nonkey = static, step
        if self.net.fast is not None:
            fast = self.meta["fast_gflops"][self.genotype.beta]
            proj = count_flops(self.net.fast.proj, b["fast_key"][:1]).gflops
            key, nonkey = static + fast + proj, step + fast
        alpha = self.genotype.alpha
        avg = per_frame(key, nonkey, alpha)
        return {
            "gflops": avg,
            "gflops_key": key,
            "gflops_nonkey": nonkey,
            "static_gflops": static,
            "ratio_avg": avg / static,
            "target_gflops": self.reward_cfg.target_ratio * static,
            "copy_gflops": per_frame(static, head, alpha),
        }

    def predict_latency(self, table: dict) -> dict[str, float]:
        """Per-frame milliseconds predicted from the run's latency table (nas.latency): this
        cell's (key, non-key, averaged over alpha), the copy baseline's at its alpha, the
        static network's and the reward's target."""
        own = predict(table, self.genotype)
        g = self.genotype
        copy = predict(table, copy_genotype(g.alpha, g.beta, len(g.nodes)))
        static = table["entries"]["static"]
        return {
            "latency_ms": own.per_frame_ms,
            "latency_key_ms": own.key_ms,
            "latency_nonkey_ms": own.nonkey_ms,
            "copy_latency_ms": copy.per_frame_ms,
            "static_latency_ms": static,
            "target_latency_ms": self.reward_cfg.target_ratio * static,
        }

    def run(self, report: Callable[[dict], None], save: Callable[[], None] | None = None) -> dict:
        """Train in ``rounds`` slices, evaluating and reporting after each."""
        t0 = time.time()
        result: dict = {}
        per_round = [self.cfg.steps // self.cfg.rounds] * self.cfg.rounds
        per_round[-1] += self.cfg.steps - sum(per_round)
        for i, n in enumerate(per_round):
            loss = self.train_steps(n)
            result = {
                **self.evaluate(),
                "loss": loss,
                "steps": self.steps_done,
                "round": i + 1,
                "seconds": time.time() - t0,
            }
            if save is not None:
                save()
            report(result)
        return result


def save_child(net: VideoSegNet, path: Path) -> None:
    save_weights(trained_state(net), path)
