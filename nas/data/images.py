"""Reading frames and label maps from disk, with errors that name the file and the fix."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from PIL import Image, UnidentifiedImageError

from nas.data.clip import IGNORE_INDEX


class DatasetLayoutError(ValueError):
    """A dataset root that does not hold the layout its loader expects."""


class ImageReadError(ValueError):
    """An image file that is missing, corrupt or in a form we cannot use."""


def _open(path: Path) -> Image.Image:
    try:
        image = Image.open(path)
        image.load()
    except FileNotFoundError as e:
        raise ImageReadError(f"image file {path} does not exist") from e
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        raise ImageReadError(f"cannot read image {path} (corrupt or not an image): {e}") from e
    return image


def read_rgb(path: str | Path) -> np.ndarray:
    """A frame as uint8 H x W x 3 RGB, whatever its file mode."""
    return np.asarray(_open(Path(path)).convert("RGB"), dtype=np.uint8)


def read_label(path: str | Path) -> np.ndarray:
    """A label map as uint8 H x W of raw values (palette indices for mode P, not colours).

    Mode LA (a few real DAVIS masks) keeps its first channel. Colour-coded label images are
    refused: their values are colours, not class indices.
    """
    path = Path(path)
    image = _open(path)
    if image.mode in ("L", "P"):
        return np.asarray(image, dtype=np.uint8)
    if image.mode == "LA":
        return np.asarray(image, dtype=np.uint8)[..., 0].copy()
    if image.mode in ("I", "I;16", "I;16B", "I;16L"):
        values = np.asarray(image)
        if values.min() < 0 or values.max() > 255:
            raise ImageReadError(f"label image {path} has values outside 0..255")
        return values.astype(np.uint8)
    raise ImageReadError(
        f"label image {path} has mode {image.mode}; expected single-channel class indices "
        "(mode L or P), not colour-coded labels"
    )


def label_lut(mapping: dict[int, int], default: int = IGNORE_INDEX) -> np.ndarray:
    """A 256-entry int64 table from raw label values to training labels."""
    lut = np.full(256, default, dtype=np.int64)
    for raw, target in mapping.items():
        lut[raw] = target
    return lut


def resize_frames(frames: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """T x H x W x 3 uint8 frames to size (H, W): area when shrinking, bilinear otherwise."""
    height, width = size
    if frames.shape[1:3] == (height, width):
        return frames
    shrink = height <= frames.shape[1] and width <= frames.shape[2]
    interpolation = cv2.INTER_AREA if shrink else cv2.INTER_LINEAR
    return np.stack([cv2.resize(f, (width, height), interpolation=interpolation) for f in frames])


def resize_labels(labels: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """... x H x W labels to size (H, W) by nearest neighbour at pixel centres (no new values)."""
    height, width = size
    h, w = labels.shape[-2:]
    if (h, w) == (height, width):
        return labels
    rows = np.minimum(((np.arange(height) + 0.5) * h / height).astype(np.int64), h - 1)
    cols = np.minimum(((np.arange(width) + 0.5) * w / width).astype(np.int64), w - 1)
    return labels[..., rows[:, None], cols[None, :]]
