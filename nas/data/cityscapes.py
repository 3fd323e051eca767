"""Cityscapes: 19 train-id classes through cityscapesscripts; 30-frame snippets as clips.

Layout:
    <root>/leftImg8bit/<split>/<city>/<city>_<seq>_<frame>_leftImg8bit.png
    <root>/gtFine/<split>/<city>/<city>_<seq>_<frame>_gtFine_labelIds.png
    <root>/leftImg8bit_sequence/<split>/<city>/<city>_<seq>_<frame>_leftImg8bit.png  (optional)

With leftImg8bit_sequence, a clip is the snippet around a labelled frame (snippet_len 30
frames, the labelled one at label_index 19, only that one flagged labelled); without it, each
labelled frame is a clip of one frame.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import numpy as np

from nas.data.images import DatasetLayoutError, label_lut
from nas.data.sampling import SequenceSpec

NUM_CLASSES = 19


@cache
def _label_table() -> tuple[tuple[str, ...], np.ndarray]:
    """Class names and the label-id -> train-id table, from cityscapesscripts: imported on
    first use, so that ``nas`` imports where the package is absent (the GPU machine) and only
    Cityscapes itself needs it."""
    from cityscapesscripts.helpers.labels import labels, trainId2label

    names = tuple(trainId2label[i].name for i in range(NUM_CLASSES))
    lut = label_lut(
        {lb.id: lb.trainId for lb in labels if 0 <= lb.id < 256 and 0 <= lb.trainId < 255}
    )
    return names, lut


def __getattr__(name: str):
    """``CLASS_NAMES`` and ``LUT`` as module attributes, computed on first access."""
    if name == "CLASS_NAMES":
        return _label_table()[0]
    if name == "LUT":
        return _label_table()[1]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


LAYOUT = (
    "<root>/leftImg8bit/<split>/<city>/<city>_<seq>_<frame>_leftImg8bit.png, "
    "<root>/gtFine/<split>/<city>/<city>_<seq>_<frame>_gtFine_labelIds.png and, for video, "
    "<root>/leftImg8bit_sequence/<split>/<city>/<city>_<seq>_<frame>_leftImg8bit.png"
)


def label_files(root: str | Path, split: str) -> list[tuple[str, Path]]:
    """(frame id `<city>_<seq>_<frame>`, gtFine labelIds file) of every labelled frame."""
    gt_dir = Path(root) / "gtFine" / split
    if not gt_dir.is_dir():
        raise DatasetLayoutError(f"Cityscapes root {root} has no {gt_dir}; expected {LAYOUT}")
    files = sorted(gt_dir.glob("*/*_gtFine_labelIds.png"))
    if not files:
        raise DatasetLayoutError(f"Cityscapes {gt_dir} holds no */*_gtFine_labelIds.png")
    return [(f.name[: -len("_gtFine_labelIds.png")], f) for f in files]


def labelled_frames(root: str | Path, split: str) -> list[tuple[str, Path, Path]]:
    """(frame id, leftImg8bit image, gtFine labelIds) of every labelled frame."""
    image_dir = Path(root) / "leftImg8bit" / split
    frames = []
    for frame_id, gt in label_files(root, split):
        image = image_dir / gt.parent.name / f"{frame_id}_leftImg8bit.png"
        if not image.is_file():
            raise DatasetLayoutError(f"Cityscapes image {image} is missing; expected {LAYOUT}")
        frames.append((frame_id, image, gt))
    return frames


def index(
    root: str | Path,
    split: str,
    sequences: bool | None = None,
    snippet_len: int = 30,
    label_index: int = 19,
) -> list[SequenceSpec]:
    """One spec per labelled frame: its snippet when sequences (default: if present)."""
    if not 0 <= label_index < snippet_len:
        raise ValueError(f"label_index {label_index} is outside a {snippet_len}-frame snippet")
    root = Path(root)
    sequence_dir = root / "leftImg8bit_sequence" / split
    if sequences is None:
        sequences = sequence_dir.is_dir()
    elif sequences and not sequence_dir.is_dir():
        raise DatasetLayoutError(f"Cityscapes root {root} has no {sequence_dir}; expected {LAYOUT}")
    specs, lut = [], _label_table()[1]
    for frame_id, image, gt in labelled_frames(root, split):
        if not sequences:
            specs.append(
                SequenceSpec(
                    "cityscapes",
                    frame_id,
                    (frame_id,),
                    (image,),
                    (gt,),
                    NUM_CLASSES,
                    lut,
                )
            )
            continue
        city, seq, number = frame_id.rsplit("_", 2)
        ids, paths = [], []
        for k in range(snippet_len):
            ids.append(f"{city}_{seq}_{int(number) - label_index + k:06d}")
            paths.append(
                image if k == label_index else sequence_dir / city / f"{ids[-1]}_leftImg8bit.png"
            )
            if not paths[-1].is_file():
                raise DatasetLayoutError(
                    f"Cityscapes sequence frame {paths[-1]} is missing: the {snippet_len}-frame "
                    f"snippet of {frame_id} (labelled frame at index {label_index}) is "
                    f"incomplete; expected {LAYOUT}"
                )
        labels = tuple(gt if k == label_index else None for k in range(snippet_len))
        specs.append(
            SequenceSpec(
                "cityscapes",
                frame_id,
                tuple(ids),
                tuple(paths),
                labels,
                NUM_CLASSES,
                lut,
            )
        )
    return specs
