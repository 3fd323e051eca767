"""The teacher feature cache shared by every child of a search.

For each frame the search uses: the teacher's slow state D (C x h x w), its logits at the deep
resolution (K x h x w), every fast encoder's output (Cf x h x w), in float16 and memory-mapped,
plus the labels (uint8, 255 ignore) and the labelled flags. Children read it and never run a
backbone. A cache made by another teacher, dataset or setting is rebuilt; an interrupted build
resumes at the first clip not written.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch

from evaluation.cost import count_flops
from nas.checkpoint import content_key, read_json, write_json
from nas.data.clip import Clip
from nas.models.config import NetConfig
from nas.teacher_folder import TeacherFolder
from search_spaces.genotype import BETAS


def _beta_name(beta: str) -> str:
    return "fast_" + beta.replace("/", "_")


def plan_shapes(
    meta_teacher: dict,
    n_clips: int,
    clip_len: int,
    size: tuple[int, int],
    fast_channels: dict[str, int],
) -> dict[str, tuple[tuple[int, ...], str]]:
    """Every array of the cache: name -> (shape, dtype)."""
    net = NetConfig(**meta_teacher["net"])
    h, w = size
    dh, dw = -(-h // net.output_stride), -(-w // net.output_stride)
    k = meta_teacher["num_classes"]
    shapes = {
        "slow": ((n_clips, clip_len, net.deep_channels, dh, dw), "float16"),
        "logits": ((n_clips, clip_len, k, dh, dw), "float16"),
        "labels": ((n_clips, clip_len, h, w), "uint8"),
        "labelled": ((n_clips, clip_len), "bool"),
    }
    for beta, cf in fast_channels.items():
        shapes[_beta_name(beta)] = ((n_clips, clip_len, cf, dh, dw), "float16")
    return shapes


def cache_bytes(shapes: dict) -> int:
    return sum(int(np.prod(s)) * np.dtype(d).itemsize for s, d in shapes.values())


class FeatureCache:
    """Read-only view of a built cache (arrays memory-mapped)."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.meta = read_json(self.path / "meta.json")
        if not self.meta.get("complete"):
            raise RuntimeError(f"cache {self.path} is incomplete: rerun the search to finish it")
        self.arrays = {
            name: np.load(self.path / f"{name}.npy", mmap_mode="r") for name in self.meta["arrays"]
        }
        self.slow = self.arrays["slow"]
        self.logits = self.arrays["logits"]
        self.labels = self.arrays["labels"]
        self.labelled = self.arrays["labelled"]

    def fast(self, beta: str) -> np.ndarray:
        return self.arrays[_beta_name(beta)]

    @property
    def num_clips(self) -> int:
        return self.slow.shape[0]

    @property
    def clip_len(self) -> int:
        return self.slow.shape[1]


def ensure_cache(
    path: Path,
    teacher_dir: Path,
    clips: Sequence[Clip],
    fingerprint: dict,
    device: torch.device | None = None,
    log: Callable[[str], None] = print,
) -> FeatureCache:
    """Build (or resume, or reuse) the cache of ``clips`` at ``path``."""
    device = device or torch.device("cuda" if torch.cuda.is_available() else "cpu")
    folder = TeacherFolder(teacher_dir)
    tmeta = folder.meta()
    teacher = folder.static(tmeta)
    fast = {beta: folder.fast(beta, tmeta) for beta in BETAS}
    n_clips, clip_len = len(clips), len(clips[0])
    size = tuple(clips[0].frames.shape[1:3])
    key = content_key([tmeta["key"], fingerprint, n_clips, clip_len, size])
    meta_path = path / "meta.json"
    meta = read_json(meta_path) if meta_path.is_file() else {}
    if meta.get("key") == key and meta.get("complete"):
        return FeatureCache(path)
    shapes = plan_shapes(
        tmeta, n_clips, clip_len, size, {b: f.encoder.out_channels for b, f in fast.items()}
    )
    resume = meta.get("key") == key
    if not resume:
        if meta:
            log(f"[cache] {path} was built for another teacher, dataset or setting: rebuilding")
        shutil.rmtree(path, ignore_errors=True)
        path.mkdir(parents=True)
        need = cache_bytes(shapes)
        free = shutil.disk_usage(path).free
        log(
            f"[cache] {path}: {n_clips} clips x {clip_len} frames at {size[0]}x{size[1]} -> "
            f"{need / 2**20:.1f} MiB on disk ({free / 2**30:.1f} GiB free)"
        )
        if need * 1.1 > free:
            raise OSError(
                f"the feature cache needs {need / 2**30:.2f} GiB but {path} has "
                f"{free / 2**30:.2f} GiB free: lower --cache-clips or --resolution"
            )
        meta = {
            "key": key,
            "teacher_key": tmeta["key"],
            "fingerprint": fingerprint,
            "arrays": list(shapes),
            "done": 0,
            "complete": False,
            "bytes": need,
            "size": list(size),
            "num_classes": tmeta["num_classes"],
            "net": tmeta["net"],
        }
        for name, (shape, dtype) in shapes.items():
            np.lib.format.open_memmap(path / f"{name}.npy", "w+", np.dtype(dtype), shape).flush()
        write_json(meta_path, meta)
    else:
        log(f"[cache] resuming {path} at clip {meta['done']}/{n_clips}")
    arrays = {name: np.load(path / f"{name}.npy", mmap_mode="r+") for name in shapes}
    teacher.to(device)
    t0 = time.time()
    with torch.inference_mode():
        for c in range(meta["done"], n_clips):
            clip = clips[c]
            x = torch.from_numpy(clip.frames).permute(0, 3, 1, 2).float().div_(255).to(device)
            slow = teacher.deep_features(x)
            arrays["slow"][c] = slow.half().cpu().numpy()
            arrays["logits"][c] = teacher.head(slow).half().cpu().numpy()
            xn = teacher.normalize(x)
            for beta, f in fast.items():
                arrays[_beta_name(beta)][c] = f.to(device).encoder(xn).half().cpu().numpy()
            arrays["labels"][c] = np.where(clip.labels == 255, 255, clip.labels).astype(np.uint8)
            arrays["labelled"][c] = clip.labelled
            for a in arrays.values():
                a.flush()
            meta["done"] = c + 1
            write_json(meta_path, meta)
    frame = torch.rand(1, 3, *size)
    meta["static_gflops"] = count_flops(teacher.cpu(), frame).gflops
    meta["fast_gflops"] = {b: count_flops(f.cpu().encoder, frame).gflops for b, f in fast.items()}
    meta["build_seconds"] = round(time.time() - t0, 1) + meta.get("build_seconds", 0.0)
    meta["complete"] = True
    write_json(meta_path, meta)
    log(f"[cache] built {path} in {time.time() - t0:.0f} s")
    return FeatureCache(path)
