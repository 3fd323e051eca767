"""From indexed sequences on disk to clips: windowing, even sub-sampling, lazy reading.

Loaders only index files (a `SequenceSpec` per sequence); nothing is decoded until a clip is
read, so `max_clips` and `size` bound memory even on Cityscapes-sized data.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from nas.data.clip import IGNORE_INDEX, Clip
from nas.data.images import read_label, read_rgb, resize_frames, resize_labels


@dataclass(frozen=True, eq=False)
class SequenceSpec:
    """Consecutive frames of one sequence, as files; `label_paths[i]` is None if unlabelled.

    lut: 256-entry int64 table from the raw values stored in a label file to training labels.
    """

    dataset: str
    sequence: str
    frame_ids: tuple[str, ...]
    frame_paths: tuple[Path, ...]
    label_paths: tuple[Path | None, ...]
    num_classes: int
    lut: np.ndarray

    def __len__(self) -> int:
        return len(self.frame_ids)

    def window(self, start: int, stop: int) -> SequenceSpec:
        return replace(
            self,
            frame_ids=self.frame_ids[start:stop],
            frame_paths=self.frame_paths[start:stop],
            label_paths=self.label_paths[start:stop],
        )


def frame_number(name: str) -> int:
    """The last run of digits in a frame name (`0006R0_f00930` -> 930, `00012` -> 12)."""
    digits = re.findall(r"\d+", name)
    if not digits:
        raise ValueError(f"frame name {name!r} has no frame number")
    return int(digits[-1])


def windows(
    spec: SequenceSpec, clip_len: int | None, require_label: bool = True
) -> list[SequenceSpec]:
    """Non-overlapping windows of clip_len frames from the start of the sequence (a short tail
    is dropped); with require_label, only windows holding at least one labelled frame."""
    if clip_len is None:
        parts = [spec]
    else:
        if clip_len < 1:
            raise ValueError(f"clip_len must be >= 1, got {clip_len}")
        starts = range(0, len(spec) - clip_len + 1, clip_len)
        parts = [spec.window(s, s + clip_len) for s in starts]
    if require_label:
        parts = [p for p in parts if any(path is not None for path in p.label_paths)]
    return parts


def spread(items: list, count: int | None) -> list:
    """`count` items evenly spaced over the list (all when count is None or larger), so a
    small max_clips still covers every sequence instead of the first one."""
    if count is None or count >= len(items):
        return list(items)
    if count < 1:
        raise ValueError(f"max_clips must be >= 1, got {count}")
    picks = np.linspace(0, len(items) - 1, count).round().astype(int)
    return [items[i] for i in picks]


def read_clip(spec: SequenceSpec, size: tuple[int, int] | None = None) -> Clip:
    """Decode a spec's frames and labels, resized to size (H, W) when given."""
    frames = labels = None
    for t, (frame_path, label_path) in enumerate(zip(spec.frame_paths, spec.label_paths)):
        frame = read_rgb(frame_path)
        label = None if label_path is None else read_label(label_path)
        if label is not None and label.shape != frame.shape[:2]:
            raise ValueError(
                f"label {label_path} is {label.shape[1]}x{label.shape[0]} but frame "
                f"{frame_path} is {frame.shape[1]}x{frame.shape[0]}"
            )
        if size is not None:
            frame = resize_frames(frame[None], size)[0]
            label = None if label is None else resize_labels(label, size)
        if frames is None:  # one allocation per clip: no stacking copies of large frames
            frames = np.empty((len(spec), *frame.shape), np.uint8)
            labels = np.full(frames.shape[:3], IGNORE_INDEX, np.int64)
        elif frame.shape != frames.shape[1:]:
            raise ValueError(
                f"frame {frame_path} is {frame.shape[1]}x{frame.shape[0]}, unlike the frames "
                f"before it in {spec.sequence} ({frames.shape[2]}x{frames.shape[1]}); "
                "pass size=(H, W) to resize"
            )
        frames[t] = frame
        if label is not None:
            labels[t] = spec.lut[label]
    return Clip(
        frames=frames,
        labels=labels,
        labelled=np.array([p is not None for p in spec.label_paths]),
        dataset=spec.dataset,
        sequence=spec.sequence,
        frame_ids=list(spec.frame_ids),
        num_classes=spec.num_classes,
    )
