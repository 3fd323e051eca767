"""A default synthetic child on one CPU core: with the feature cache vs computing the teacher
(and fast encoder) itself, side by side, same genotype, same steps.

    python bench/child_speed.py [--run runs/demo] [--steps 80] [--json FILE]

Needs a run folder holding a teacher (any finished or resumed search, e.g. `make demo`).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from nas.cache import FeatureCache  # noqa: E402
from nas.checkpoint import read_json  # noqa: E402
from nas.child import ChildConfig, ChildRun  # noqa: E402
from nas.config import SearchConfig  # noqa: E402
from nas.data import load_clips  # noqa: E402
from nas.teacher_folder import TeacherFolder  # noqa: E402
from search_spaces.genotype import Genotype  # noqa: E402


class LiveFeatures:
    """Quacks like a FeatureCache, but runs the teacher and the fast encoder on the frames
    of every batch: what a child costs without the cache."""

    def __init__(self, cache: FeatureCache, clips, teacher_dir: Path, beta: str):
        self.meta, self.clips = cache.meta, clips
        folder = TeacherFolder(teacher_dir)
        tmeta = folder.meta()
        self.teacher = folder.static(tmeta)
        self.fast_net = folder.fast(beta, tmeta)
        self.labels, self.labelled = cache.labels, cache.labelled
        self.beta = beta
        self.num_clips, self.clip_len = cache.num_clips, cache.clip_len
        self.frames = np.stack([c.frames for c in clips])  # N x T x H x W x 3
        one = self._run((np.array([0]), np.array([0])))
        self.shapes = {k: (self.num_clips, self.clip_len, *v.shape[1:]) for k, v in one.items()}

    def _run(self, index) -> dict[str, np.ndarray]:
        c, t = index
        x = torch.from_numpy(self.frames[c, t]).permute(0, 3, 1, 2).float().div_(255)
        with torch.no_grad():
            slow = self.teacher.deep_features(x)
            return {
                "slow": slow.numpy(),
                "logits": self.teacher.head(slow).numpy(),
                "fast": self.fast_net.encoder(self.teacher.normalize(x)).numpy(),
            }

    @property
    def slow(self):
        return _Lazy(self, "slow")

    @property
    def logits(self):
        return _Lazy(self, "logits")

    def fast(self, beta: str):
        return _Lazy(self, "fast")


class _Lazy:
    def __init__(self, owner: LiveFeatures, key: str):
        self.owner, self.key = owner, key
        self.shape = owner.shapes[key]

    def __getitem__(self, index):
        if isinstance(index[1], slice):  # one clip's frame range (the buffer)
            c, sl = index
            t = np.arange(sl.start, sl.stop)
            return self.owner._run((np.full(len(t), c), t))[self.key]
        return self.owner._run(index)[self.key]


def time_child(genotype: Genotype, teacher_dir: Path, train, val, steps: int) -> float:
    run = ChildRun(genotype, teacher_dir, train, val, ChildConfig(steps=steps, rounds=1))
    t0 = time.time()
    run.train_steps(steps)
    run.evaluate()
    return time.time() - t0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--run", default="runs/demo")
    p.add_argument("--steps", type=int, default=SearchConfig.child_steps)
    p.add_argument("--cell", default=str(Path(__file__).resolve().parents[1] / "docs/cell.json"))
    p.add_argument("--json")
    args = p.parse_args(argv)
    run = Path(args.run)
    if not (run / "teacher" / "teacher.json").is_file():
        print(f"{run} holds no teacher: run `make demo` (or a search) first")
        return 1
    torch.set_num_threads(1)
    genotype = Genotype.load(args.cell)
    train, val = FeatureCache(run / "cache" / "train"), FeatureCache(run / "cache" / "val")
    search = read_json(run / "search.json")
    size, clip_len = tuple(train.meta["size"]), train.clip_len
    cached = time_child(genotype, run / "teacher", train, val, args.steps)
    clips = {
        s: load_clips(search["dataset"], search.get("data_root"), s, clip_len, size, max_clips=n)
        for s, n in (("train", train.num_clips), ("val", val.num_clips))
    }
    live = {
        s: LiveFeatures(c, clips[s], run / "teacher", genotype.beta)
        for s, c in (("train", train), ("val", val))
    }
    uncached = time_child(genotype, run / "teacher", live["train"], live["val"], args.steps)
    row = {
        "steps": args.steps,
        "cached_s": cached,
        "uncached_s": uncached,
        "speedup": uncached / cached,
        "threads": 1,
        "resolution": list(size),
    }
    print(
        f"child ({args.steps} steps + evaluation, 1 CPU thread, {size[0]}x{size[1]}): "
        f"cached {cached:.1f} s, computing the teacher itself {uncached:.1f} s, "
        f"{uncached / cached:.1f}x faster with the cache"
    )
    if args.json:
        Path(args.json).write_text(json.dumps(row, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
