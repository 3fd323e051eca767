"""DAVIS 2016 (binary) and 2017 (multi-object) video object segmentation, one clip a sequence.

Layout (`root` is this folder or a folder holding `DAVIS/`), resolution 480p by default:
    <root>/JPEGImages/480p/<seq>/00000.jpg
    <root>/Annotations/480p/<seq>/00000.png
    2016: <root>/ImageSets/480p/<split>.txt, lines
          '/JPEGImages/480p/bear/00000.jpg /Annotations/480p/bear/00000.png'
    2017: <root>/ImageSets/2017/<split>.txt, one sequence name a line

The year is detected from ImageSets (2017 wins when both are present) or given. Labels are
object ids: 2016 masks are stored 0/255 and become 0/1 (any non-zero value is the object);
2017 masks are palette indices, 0 background, 1..N objects, 255 void (kept as 255, ignored).
`year=2016` on a 2017 layout reads ImageSets/2016/<split>.txt and merges all objects into one.
num_classes is 2 for 2016; for 2017 it is, per sequence, the largest object id in the first
frame's mask + 1 (at least 2), as the DAVIS 2017 tools count objects.
Frames without a mask (test-dev) are unlabelled. Frame names sort by number.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import numpy as np

from nas.data.clip import IGNORE_INDEX, Clip
from nas.data.images import DatasetLayoutError, label_lut, read_label
from nas.data.sampling import SequenceSpec, frame_number

CLASS_NAMES_2016 = ("background", "foreground")
LUT_2016 = label_lut({0: 0}, default=1)  # 0/255 masks (and LA, 0/1) -> 0/1
LUT_2017 = label_lut({i: i for i in range(IGNORE_INDEX)})  # object ids; 255 void
LUT_2017_AS_2016 = label_lut({0: 0, IGNORE_INDEX: IGNORE_INDEX}, default=1)
LAYOUT = (
    "<root>/JPEGImages/480p/<seq>/*.jpg, <root>/Annotations/480p/<seq>/*.png and either "
    "<root>/ImageSets/480p/<split>.txt (DAVIS 2016: '/JPEGImages/480p/bear/00000.jpg "
    "/Annotations/480p/bear/00000.png' a line) or <root>/ImageSets/2017/<split>.txt "
    "(DAVIS 2017: one sequence name a line)"
)


def find_root(root: str | Path, resolution: str = "480p") -> Path:
    """The folder holding JPEGImages/, Annotations/ and ImageSets/: root or root/DAVIS."""
    root = Path(root)
    for candidate in (root, root / "DAVIS"):
        if (candidate / "JPEGImages" / resolution).is_dir() and (candidate / "ImageSets").is_dir():
            return candidate
    raise DatasetLayoutError(
        f"DAVIS root {root} has no JPEGImages/{resolution}/ and ImageSets/ (nor a DAVIS/ folder "
        f"holding them); expected {LAYOUT}"
    )


def detect_year(root: str | Path, resolution: str = "480p") -> int:
    """2017 when ImageSets/2017/ exists, else 2016 when ImageSets/<resolution>/ does."""
    root = find_root(root, resolution)
    if (root / "ImageSets" / "2017").is_dir():
        return 2017
    if (root / "ImageSets" / resolution).is_dir():
        return 2016
    raise DatasetLayoutError(
        f"DAVIS root {root} has neither ImageSets/2017/ nor ImageSets/{resolution}/; "
        f"expected {LAYOUT}"
    )


def _read_list(list_file: Path) -> list[list[str]]:
    if not list_file.is_file():
        available = sorted(p.stem for p in list_file.parent.glob("*.txt"))
        raise DatasetLayoutError(
            f"DAVIS split file {list_file} does not exist (splits there: {available}); "
            f"expected {LAYOUT}"
        )
    return [line.split() for line in list_file.read_text().splitlines() if line.strip()]


def _frames_2016(root: Path, split: str, resolution: str) -> dict[str, list]:
    """Sequence -> [(image, mask or None)] from a 2016 list of path pairs."""
    by_seq = defaultdict(list)
    for tokens in _read_list(root / "ImageSets" / resolution / f"{split}.txt"):
        image = root / tokens[0].lstrip("/")
        mask = root / tokens[1].lstrip("/") if len(tokens) > 1 else None
        by_seq[image.parent.name].append((image, mask))
    return by_seq


def _frames_by_name(root: Path, names: list[str], resolution: str) -> dict[str, list]:
    """Sequence -> [(image, mask or None)] from the sequence folders themselves."""
    by_seq = {}
    for name in names:
        folder = root / "JPEGImages" / resolution / name
        images = sorted(folder.glob("*.jpg"))
        if not images:
            raise DatasetLayoutError(f"DAVIS sequence folder {folder} holds no .jpg frames")
        masks = {m.stem: m for m in (root / "Annotations" / resolution / name).glob("*.png")}
        by_seq[name] = [(image, masks.get(image.stem)) for image in images]
    return by_seq


def index(
    root: str | Path, split: str, year: int | None = None, resolution: str = "480p"
) -> list[SequenceSpec]:
    """One spec per sequence of the split, frames sorted by number."""
    root = find_root(root, resolution)
    layout_year = detect_year(root, resolution)
    year = layout_year if year is None else year
    if year not in (2016, 2017):
        raise ValueError(f"DAVIS year must be 2016 or 2017, got {year}")
    if layout_year == 2016:
        if year == 2017:
            raise DatasetLayoutError(f"DAVIS root {root} is a 2016 layout (no ImageSets/2017/)")
        by_seq, lut = _frames_2016(root, split, resolution), LUT_2016
    else:
        names = [t[0] for t in _read_list(root / "ImageSets" / str(year) / f"{split}.txt")]
        by_seq = _frames_by_name(root, names, resolution)
        lut = LUT_2017 if year == 2017 else LUT_2017_AS_2016
    specs = []
    for seq, pairs in by_seq.items():
        pairs = sorted(pairs, key=lambda pair: _number(pair[0]))
        for path in (p for pair in pairs for p in pair if p is not None):
            if not path.is_file():
                raise DatasetLayoutError(f"DAVIS file {path} is missing; expected {LAYOUT}")
        masks = [m for _, m in pairs if m is not None]
        num_classes = 2 if year == 2016 else 1 + _objects_in_first_mask(masks, lut)
        ids, images, masks = zip(*[(i.stem, i, m) for i, m in pairs])
        specs.append(SequenceSpec("davis", seq, ids, images, masks, num_classes, lut))
    return specs


def _objects_in_first_mask(masks: list[Path], lut: np.ndarray) -> int:
    """Largest object id in the first mask (at least 1): how DAVIS 2017 counts objects."""
    if not masks:
        return 1
    ids = lut[read_label(masks[0])]
    return max(1, int(ids[ids != IGNORE_INDEX].max(initial=0)))


def num_classes(
    root: str | Path | None = None, year: int | None = None, resolution: str = "480p"
) -> int:
    """2 for 2016 (and without a root); for 2017, the most objects of any sequence + 1."""
    if root is None or (detect_year(root, resolution) if year is None else year) == 2016:
        return 2
    objects = [
        _objects_in_first_mask(sorted(folder.glob("*.png"), key=_number), LUT_2017)
        for folder in (find_root(root, resolution) / "Annotations" / resolution).iterdir()
        if folder.is_dir()
    ]
    return 1 + max(objects, default=1)


def _number(path: Path) -> int:
    return frame_number(path.stem)


def first_frame_mask(clip: Clip) -> np.ndarray:
    """The object-id mask of the clip's first frame: the input of semi-supervised VOS."""
    if not clip.labelled[0]:
        raise ValueError(f"the first frame of {clip.sequence} has no mask")
    return clip.labels[0].copy()
