"""The one clip type every dataset yields."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import torch

IGNORE_INDEX = 255


@dataclass
class Clip:
    """T consecutive frames of one sequence.

    frames: uint8 T x H x W x 3 (RGB); labels: int64 T x H x W, 255 = ignore/unlabelled;
    labelled: bool T (False where a frame has no ground truth: its labels are all 255);
    frame_ids: T strings naming each frame in its dataset (file stem or index).
    """

    frames: np.ndarray
    labels: np.ndarray
    labelled: np.ndarray
    dataset: str
    sequence: str
    frame_ids: list[str]
    num_classes: int

    def __post_init__(self) -> None:
        t = len(self.frames)
        if self.frames.dtype != np.uint8 or self.frames.ndim != 4 or self.frames.shape[-1] != 3:
            raise ValueError(
                f"frames must be uint8 T x H x W x 3, got {self.frames.dtype} {self.frames.shape}"
            )
        if self.labels.shape != self.frames.shape[:3]:
            raise ValueError(
                f"labels {self.labels.shape} do not match frames {self.frames.shape[:3]}"
            )
        if self.labels.dtype != np.int64:
            self.labels = self.labels.astype(np.int64)
        self.labelled = np.asarray(self.labelled, dtype=bool)
        if len(self.labelled) != t or len(self.frame_ids) != t:
            raise ValueError("labelled and frame_ids need one entry per frame")

    def __len__(self) -> int:
        return len(self.frames)

    def subset(self, index: slice | np.ndarray, sequence: str | None = None) -> Clip:
        """The frames ``index`` picks (a slice or a boolean mask) as a clip of their own,
        named ``sequence`` if given."""
        picked = np.arange(len(self))[index]
        return replace(
            self,
            frames=self.frames[index],
            labels=self.labels[index],
            labelled=self.labelled[index],
            sequence=self.sequence if sequence is None else sequence,
            frame_ids=[self.frame_ids[i] for i in picked],
        )


def to_tensor(frames: np.ndarray, device: torch.device | str = "cpu") -> torch.Tensor:
    """uint8 (T x) H x W x 3 frames -> float (T x) 3 x H x W in [0, 1], what every network
    here reads."""
    x = torch.from_numpy(np.ascontiguousarray(frames)).to(device)
    return x.movedim(-1, -3).float().div_(255.0)
