"""The embedded dataset: moving, rotating, textured shapes over a panning textured background.

Every search can run on it with no download. The class of a pixel is the type of the shape
that owns it (0 = background), so a model must learn shape, not colour: every shape's colours
and texture, and the background's, are drawn from one distribution that ignores the class.
Shapes overlap in a random depth order (the nearer one owns the pixels) and bounce off the
frame borders. A clip is a pure function of (seed, index): no state, any size or length.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import cv2
import numpy as np

from nas.data.clip import Clip


def _disc(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    return u * u + v * v <= 1.0


def _square(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    return np.maximum(np.abs(u), np.abs(v)) <= 0.75


def _triangle(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    return (v >= -0.5) & (v <= 1.0 - math.sqrt(3.0) * np.abs(u))


def _ring(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    r2 = u * u + v * v
    return (r2 <= 1.0) & (r2 >= 0.3)


def _cross(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    au, av = np.abs(u), np.abs(v)
    return ((au <= 0.3) & (av <= 1.0)) | ((av <= 0.3) & (au <= 1.0))


def _star(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    return np.hypot(u, v) <= 0.55 + 0.45 * np.cos(5.0 * np.arctan2(v, u))


def _half_disc(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    return (u * u + v * v <= 1.0) & (v >= 0.0)


# Class c > 0 is SHAPES[c - 1]; each mask is in shape units (radius 1, extent <= 1.1).
SHAPES = {
    "disc": _disc,
    "square": _square,
    "triangle": _triangle,
    "ring": _ring,
    "cross": _cross,
    "star": _star,
    "half_disc": _half_disc,
}
_EXTENT = 1.1


@dataclass(frozen=True)
class SyntheticConfig:
    """What a synthetic clip looks like; (seed, clip index) fixes its content."""

    height: int = 96
    """frame height in pixels"""
    width: int = 128
    """frame width in pixels"""
    length: int = 16
    """frames per clip"""
    num_classes: int = 5
    """classes including background 0; class c > 0 is the c-th entry of SHAPES (2..8)"""
    min_shapes: int = 2
    """fewest shapes in a clip"""
    max_shapes: int = 5
    """most shapes in a clip"""
    max_speed: float = 2.0
    """largest speed of a shape's centre, pixels per frame (each draws 30-100% of it)"""
    max_rotation: float = 0.08
    """largest rotation speed of a shape, radians per frame"""
    pan_speed: float = 0.5
    """background pan speed, pixels per frame (each clip draws 50-100% of it)"""
    occlusion: bool = True
    """shapes roam the whole frame and overlap in depth order; False: each keeps to its own
    cell of a grid, so none ever hides another"""
    noise: float = 4.0
    """std of the (uniform) per-pixel sensor noise added to every frame, in grey levels"""
    seed: int = 0
    """base seed (>= 0); clip i draws from the random stream (seed, i)"""

    def __post_init__(self) -> None:
        if not 2 <= self.num_classes <= len(SHAPES) + 1:
            raise ValueError(f"num_classes must be in 2..{len(SHAPES) + 1}, got {self.num_classes}")
        if not 1 <= self.min_shapes <= self.max_shapes:
            raise ValueError(
                f"need 1 <= min_shapes <= max_shapes, got {self.min_shapes}, {self.max_shapes}"
            )
        if self.height < 8 or self.width < 8 or self.length < 1 or self.seed < 0:
            raise ValueError(f"need height, width >= 8, length >= 1, seed >= 0: {self}")


SPLITS = ("train", "val", "test")


def split_config(config: SyntheticConfig, split: str) -> SyntheticConfig:
    """The config of a split: seeds 3s, 3s+1, 3s+2 never collide across splits or base seeds."""
    if split not in SPLITS:
        raise ValueError(f"unknown synthetic split {split!r}; known: {SPLITS}")
    return replace(config, seed=3 * config.seed + SPLITS.index(split))


def class_names(num_classes: int = 5) -> tuple[str, ...]:
    return ("background", *list(SHAPES)[: num_classes - 1])


def _colours(rng: np.random.Generator, s: np.ndarray) -> np.ndarray:
    """Pattern values s in [0, 1] -> RGB between two random colours: the one colour model
    shared by every shape and the background."""
    c1, c2 = rng.uniform(0.0, 255.0, size=(2, 3)).astype(np.float32)
    return c1 + s[..., None] * (c2 - c1)


def _pattern(rng: np.random.Generator, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """A random texture in the shape's own frame (moves and turns with it), values in [0, 1]."""
    kind = rng.integers(4)
    freq, angle, phase = rng.uniform(3.0, 10.0), rng.uniform(0, math.pi), rng.uniform(0, 6.3)
    if kind == 0:  # stripes
        return 0.5 + 0.5 * np.sin(freq * (u * math.cos(angle) + v * math.sin(angle)) + phase)
    if kind == 1:  # checker
        return (np.sin(freq * u + phase) * np.sin(freq * v) > 0).astype(np.float32)
    if kind == 2:  # plaid
        return 0.5 + 0.25 * (np.sin(freq * u + phase) + np.sin(1.3 * freq * v))
    return np.full_like(u, rng.uniform())  # flat


def _background(rng: np.random.Generator, config: SyntheticConfig) -> np.ndarray:
    """T x H x W x 3 float32: two-scale smooth noise, coloured, panned sub-pixel per frame."""
    t, h, w = config.length, config.height, config.width
    speed = config.pan_speed * rng.uniform(0.5, 1.0)
    direction = rng.uniform(0, 2 * math.pi)
    shift = np.arange(t)[:, None] * speed * np.array([math.cos(direction), math.sin(direction)])
    shift -= shift.min(axis=0)
    pad_h, pad_w = int(shift[:, 1].max()) + 2, int(shift[:, 0].max()) + 2
    canvas = np.zeros((h + pad_h, w + pad_w), np.float32)
    for cell, weight in ((16, 0.7), (4, 0.3)):
        coarse = rng.random(((h + pad_h) // cell + 2, (w + pad_w) // cell + 2)).astype(np.float32)
        canvas += weight * cv2.resize(coarse, (w + pad_w, h + pad_h), interpolation=cv2.INTER_CUBIC)
    canvas = np.clip(canvas, 0.0, 1.0)
    moved = [
        cv2.warpAffine(
            canvas,
            np.float32([[1, 0, dx], [0, 1, dy]]),
            (w, h),
            flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
        )
        for dx, dy in shift
    ]
    return _colours(rng, np.stack(moved))


def _bounce(x: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Positions reflected into [lo, hi], as a ball bouncing off walls."""
    span = max(hi - lo, 1e-6)
    y = np.mod(x - lo, 2 * span)
    return lo + np.where(y > span, 2 * span - y, y)


def _boxes(rng: np.random.Generator, config: SyntheticConfig, n: int) -> list[tuple]:
    """The region (x0, y0, x1, y1) each shape roams: the frame, or one grid cell each."""
    h, w = config.height, config.width
    if config.occlusion:
        return [(0.0, 0.0, float(w), float(h))] * n
    cols = math.ceil(math.sqrt(n * w / h))
    rows = math.ceil(n / cols)
    cells = rng.permutation(rows * cols)[:n]
    ch, cw = h / rows, w / cols
    return [
        ((c % cols) * cw, (c // cols) * ch, (c % cols + 1) * cw, (c // cols + 1) * ch)
        for c in cells
    ]


def make_clip(index: int, config: SyntheticConfig = SyntheticConfig()) -> Clip:
    """Clip `index` of the stream seeded by config.seed (same arguments, same arrays)."""
    if index < 0:
        raise ValueError(f"clip index must be >= 0, got {index}")
    rng = np.random.default_rng([config.seed, index])
    t, h, w = config.length, config.height, config.width
    frames = _background(rng, config)
    labels = np.zeros((t, h, w), np.int64)
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32) + 0.5
    steps = np.arange(t, dtype=np.float32)[:, None, None]
    n = int(rng.integers(config.min_shapes, config.max_shapes + 1))
    for x0, y0, x1, y1 in _boxes(rng, config, n):  # far to near: later shapes occlude
        cls = int(rng.integers(1, config.num_classes))
        room = min(x1 - x0, y1 - y0)
        radius = rng.uniform(0.1, 0.22) * min(h, w)
        if not config.occlusion:
            radius = min(radius, 0.45 * room / _EXTENT)
        margin = radius * (_EXTENT if not config.occlusion else 0.5)
        speed = config.max_speed * rng.uniform(0.3, 1.0)
        heading = rng.uniform(0, 2 * math.pi)
        cx = _bounce(
            rng.uniform(x0, x1) + speed * math.cos(heading) * steps, x0 + margin, x1 - margin
        )
        cy = _bounce(
            rng.uniform(y0, y1) + speed * math.sin(heading) * steps, y0 + margin, y1 - margin
        )
        angle = rng.uniform(0, 2 * math.pi) + rng.uniform(-1, 1) * config.max_rotation * steps
        reach = radius * _EXTENT  # work only in the box the shape sweeps over the clip
        box = (
            slice(max(0, int(cy.min() - reach)), max(0, math.ceil(cy.max() + reach))),
            slice(max(0, int(cx.min() - reach)), max(0, math.ceil(cx.max() + reach))),
        )
        cos, sin = np.cos(angle), np.sin(angle)
        dx, dy = (xs[box] - cx) / radius, (ys[box] - cy) / radius
        u, v = cos * dx + sin * dy, cos * dy - sin * dx
        mask = SHAPES[list(SHAPES)[cls - 1]](u, v)
        frames[:, box[0], box[1]][mask] = _colours(rng, _pattern(rng, u[mask], v[mask]))
        labels[:, box[0], box[1]][mask] = cls
    if config.noise > 0:
        noise = rng.random(frames.shape, dtype=np.float32) - np.float32(0.5)
        frames += np.float32(config.noise * math.sqrt(12.0)) * noise  # uniform: 3x faster
    return Clip(
        frames=np.clip(frames, 0, 255).astype(np.uint8),
        labels=labels,
        labelled=np.ones(t, dtype=bool),
        dataset="synthetic",
        sequence=f"seed{config.seed}_clip{index}",
        frame_ids=[str(i) for i in range(t)],
        num_classes=config.num_classes,
    )


class SyntheticVideo:
    """num_clips synthetic clips as a sequence; each is generated when indexed."""

    def __init__(self, config: SyntheticConfig = SyntheticConfig(), num_clips: int = 64) -> None:
        self.config = config
        self.num_clips = num_clips

    def __len__(self) -> int:
        return self.num_clips

    def __getitem__(self, index: int) -> Clip:
        if not -self.num_clips <= index < self.num_clips:
            raise IndexError(f"clip {index} out of range for {self.num_clips} clips")
        return make_clip(index % self.num_clips, self.config)
