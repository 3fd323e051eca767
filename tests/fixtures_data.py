"""Tiny datasets written in each benchmark's own layout, and the documented cell: the shared
builders tests import (plain functions, so a test can build several or pass options).

CamVid (SegNet layout), Cityscapes (leftImg8bit / gtFine / leftImg8bit_sequence), DAVIS 2016
and 2017 at H x W = 24 x 32 with known contents, for loader and metric tests; ``make_davis``, a
32 x 48 DAVIS-2016 layout of a square moving right, for tests that train on it.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
CELL = REPO / "docs" / "cell.json"
"""The documented example cell (a genotype JSON file)."""

H, W = 24, 32


def write_png(path: Path, array: np.ndarray, mode: str | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array, mode=mode).save(path)
    return path


def frame(seed: int) -> np.ndarray:
    """A random H x W x 3 uint8 image, the same for the same seed."""
    return np.random.default_rng(seed).integers(0, 256, (H, W, 3), dtype=np.uint8)


# --- CamVid -------------------------------------------------------------------------------
CAMVID = {
    # list files deliberately out of frame order; 0006R0 names carry the 'f'
    "train": [
        "0001TP_006720",
        "0001TP_006690",
        "0006R0_f00960",
        "0006R0_f00930",
        "0016E5_00390",
        "0016E5_00420",
        "0016E5_02400",
    ],
    "val": ["0016E5_07959", "0016E5_07961", "0016E5_07963"],
}
CAMVID_VIDEO = ["0001TP_006700", "0001TP_006710", "0001TP_006800", "0006R0_f00945"]


def camvid_label(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 12, (H, W), dtype=np.uint8)  # 11 = void


def make_camvid(tmp_path: Path, video: bool = False) -> Path:
    """<tmp>/camvid/CamVid/ in the SegNet layout; returns <tmp>/camvid."""
    root = tmp_path / "camvid" / "CamVid"
    for split, names in CAMVID.items():
        lines = []
        for i, name in enumerate(names):
            write_png(root / split / f"{name}.png", frame(i))
            write_png(root / f"{split}annot" / f"{name}.png", camvid_label(i))
            lines.append(
                f"/SegNet/CamVid/{split}/{name}.png /SegNet/CamVid/{split}annot/{name}.png"
            )
        (root / f"{split}.txt").write_text("\n".join(lines) + "\n")
    if video:
        for i, name in enumerate(CAMVID_VIDEO):
            write_png(root / "frames" / name.split("_")[0] / f"{name}.png", frame(100 + i))
    return root.parent


# --- Cityscapes -----------------------------------------------------------------------------
CITY_FRAMES = ["aachen_000000_000019", "bochum_000000_000313"]


def cityscapes_label_ids() -> np.ndarray:
    """Label ids: road (7 -> train 0), sky (23 -> 10), car (26 -> 13), unlabeled (0 -> 255)."""
    ids = np.full((H, W), 7, np.uint8)
    ids[:6] = 23
    ids[10:16, 4:12] = 26
    ids[-2:] = 0
    return ids


def make_cityscapes(tmp_path: Path, snippet_len: int = 30, label_index: int = 19) -> Path:
    root = tmp_path / "cityscapes"
    for k, frame_id in enumerate(CITY_FRAMES):
        city, seq, number = frame_id.split("_")
        write_png(root / "leftImg8bit/val" / city / f"{frame_id}_leftImg8bit.png", frame(k))
        write_png(
            root / "gtFine/val" / city / f"{frame_id}_gtFine_labelIds.png", cityscapes_label_ids()
        )
        for t in range(snippet_len):
            n = int(number) - label_index + t
            name = f"{city}_{seq}_{n:06d}_leftImg8bit.png"
            write_png(root / "leftImg8bit_sequence/val" / city / name, frame(1000 * k + t))
    return root


# --- DAVIS ----------------------------------------------------------------------------------
def davis_mask(t: int) -> np.ndarray:
    mask = np.zeros((H, W), np.uint8)
    mask[4 + t : 12 + t, 6 + t : 16 + t] = 255
    return mask


def make_davis2016(tmp_path: Path) -> Path:
    """<tmp>/davis/DAVIS: 'blob' (4 frames, one LA mask, one empty) and 'odd' (frames 0, 2, 10)."""
    root = tmp_path / "davis" / "DAVIS"
    lines = {"train": [], "val": []}
    for split, seq, names in (
        ("train", "blob", ["00000", "00001", "00002", "00003"]),
        ("val", "odd", ["10", "2", "0"]),
    ):
        for t, name in enumerate(names):
            image = root / "JPEGImages/480p" / seq / f"{name}.jpg"
            image.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(frame(t)).save(image, quality=95)
            mask = davis_mask(int(name) % 5)
            if seq == "blob" and t == 2:
                write_png(
                    root / "Annotations/480p" / seq / f"{name}.png",
                    np.stack([mask, np.full_like(mask, 255)], -1),
                    mode="LA",
                )
            else:
                empty = seq == "blob" and t == 3
                write_png(root / "Annotations/480p" / seq / f"{name}.png", mask * (not empty))
            lines[split].append(
                f"/JPEGImages/480p/{seq}/{name}.jpg /Annotations/480p/{seq}/{name}.png"
            )
    for split, split_lines in lines.items():
        (root / "ImageSets/480p").mkdir(parents=True, exist_ok=True)
        (root / "ImageSets/480p" / f"{split}.txt").write_text("\n".join(split_lines) + "\n")
    return root.parent


def palette_png(path: Path, ids: np.ndarray) -> Path:
    image = Image.fromarray(ids, mode="P")
    image.putpalette([0, 0, 0, 128, 0, 0, 0, 128, 0] + [255] * (253 * 3))
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path)
    return path


def davis2017_ids(t: int) -> np.ndarray:
    ids = np.zeros((H, W), np.uint8)
    ids[2 + t : 10 + t, 2:10] = 1
    ids[12:20, 14 + t : 24 + t] = 2
    ids[0, :] = 255  # void
    return ids


def make_davis2017(tmp_path: Path, frames: int = 4, first_only: str = "") -> Path:
    """2017 layout: sequences 'two' (2 objects) and first_only (only the first mask)."""
    root = tmp_path / "davis2017"
    names = ["two"] + ([first_only] if first_only else [])
    for seq in names:
        for t in range(frames):
            image = root / "JPEGImages/480p" / seq / f"{t:05d}.jpg"
            image.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(frame(t)).save(image)
            if seq == "two" or t == 0:
                palette_png(root / "Annotations/480p" / seq / f"{t:05d}.png", davis2017_ids(t))
    (root / "ImageSets/2017").mkdir(parents=True)
    (root / "ImageSets/2017/val.txt").write_text("\n".join(names) + "\n")
    return root


def make_davis(
    root: Path, sequences: int = 2, frames: int = 6, names: tuple[str, ...] = ()
) -> Path:
    """A DAVIS-2016 layout at ``root`` (32 x 48): a bright square moving right over noise,
    masks 0/255, every sequence in both train and val lists; sequences ``seq0``, ``seq1``, ...
    or ``names``; returns ``root``."""
    rng = np.random.default_rng(0)
    lines = []
    for seq in names or [f"seq{s}" for s in range(sequences)]:
        for t in range(frames):
            image = rng.integers(0, 80, (32, 48, 3)).astype(np.uint8)
            mask = np.zeros((32, 48), np.uint8)
            mask[8:24, 4 + 3 * t : 20 + 3 * t] = 255
            image[mask > 0] = 220
            jpg = root / "JPEGImages/480p" / seq / f"{t:05d}.jpg"
            png = root / "Annotations/480p" / seq / f"{t:05d}.png"
            jpg.parent.mkdir(parents=True, exist_ok=True)
            png.parent.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(jpg), image)
            cv2.imwrite(str(png), mask)
            lines.append(f"/JPEGImages/480p/{seq}/{t:05d}.jpg /Annotations/480p/{seq}/{t:05d}.png")
    (root / "ImageSets/480p").mkdir(parents=True)
    for split in ("train", "val"):
        (root / "ImageSets/480p" / f"{split}.txt").write_text("\n".join(lines) + "\n")
    return root
