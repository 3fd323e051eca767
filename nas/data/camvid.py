"""CamVid in the SegNet layout: 11 classes, void (11) ignored; clips of consecutive frames.

Layout (`root` is either this folder or a folder holding `CamVid/`):
    <root>/{train,val,test}/<seq>_<frame>.png          RGB frames, 480x360
    <root>/{train,val,test}annot/<seq>_<frame>.png     class indices 0..10, 11 = void
    <root>/{train,val,test}.txt                        optional lists, one
        '/SegNet/CamVid/train/x.png /SegNet/CamVid/trainannot/x.png' a line (prefix ignored)
    <root>/frames/**/<seq>_<frame>.png                 optional 30 Hz video frames

Frame names carry the video frame number (`0001TP_006690`; 0006R0 writes `0006R0_f00930`).
Labelled frames of a sequence are sorted by number and cut into segments wherever two
neighbours are more than `max_gap` video frames apart. With 30 Hz frames available (in
`<root>/frames/` or `frames_dir`, any sub-folders, same naming, any zero padding), the
unlabelled frames between two labelled neighbours are inserted with labelled=False.
"""

from __future__ import annotations

import bisect
import re
from collections import defaultdict
from pathlib import Path

from nas.data.images import DatasetLayoutError, label_lut
from nas.data.sampling import SequenceSpec

CLASS_NAMES = (
    "Sky", "Building", "Pole", "Road", "Pavement", "Tree",
    "SignSymbol", "Fence", "Car", "Pedestrian", "Bicyclist",
)  # fmt: skip
NUM_CLASSES = len(CLASS_NAMES)
LUT = label_lut({i: i for i in range(NUM_CLASSES)})  # 11 (void) and anything else -> 255
SPLITS = ("train", "val", "test")
LAYOUT = (
    "the SegNet layout: <root>/{train,trainannot,val,valannot,test,testannot}/*.png, "
    "optional list files <root>/{train,val,test}.txt ('/SegNet/CamVid/train/x.png "
    "/SegNet/CamVid/trainannot/x.png' a line) and optional 30 Hz frames <root>/frames/"
)
_NAME = re.compile(r"^(?P<seq>.+?)_f?(?P<num>\d+)$")


def find_root(root: str | Path) -> Path:
    """The folder holding train/ and trainannot/: root itself or root/CamVid."""
    root = Path(root)
    for candidate in (root, root / "CamVid"):
        if any((candidate / f"{split}annot").is_dir() for split in SPLITS):
            return candidate
    raise DatasetLayoutError(
        f"CamVid root {root} has no train/ and trainannot/ (nor a CamVid/ folder holding them); "
        f"expected {LAYOUT}"
    )


def parse_name(stem: str) -> tuple[str, int]:
    """`0016E5_07959` -> ('0016E5', 7959); `0006R0_f00930` -> ('0006R0', 930)."""
    match = _NAME.match(stem)
    if match is None:
        raise DatasetLayoutError(f"CamVid frame name {stem!r} is not <sequence>_<frame number>")
    return match["seq"], int(match["num"])


def labelled_pairs(root: Path, split: str) -> list[tuple[Path, Path]]:
    """(image, label) paths of a split, from its list file if present, else its folders."""
    list_file = root / f"{split}.txt"
    if list_file.is_file():
        pairs = []
        for number, line in enumerate(list_file.read_text().splitlines(), 1):
            tokens = line.split()
            if not tokens:
                continue
            if len(tokens) != 2:
                raise DatasetLayoutError(
                    f"{list_file} line {number} is not 'image label': {line!r}; expected {LAYOUT}"
                )
            # '/SegNet/CamVid/train/x.png' -> <root>/train/x.png
            pairs.append(tuple(root.joinpath(*Path(t).parts[-2:]) for t in tokens))
    else:
        image_dir, label_dir = root / split, root / f"{split}annot"
        if not (image_dir.is_dir() and label_dir.is_dir()):
            raise DatasetLayoutError(
                f"CamVid root {root} has no {split}/ and {split}annot/ (nor {split}.txt); "
                f"expected {LAYOUT}"
            )
        pairs = [(image, label_dir / image.name) for image in sorted(image_dir.glob("*.png"))]
    if not pairs:
        raise DatasetLayoutError(f"CamVid split {split} under {root} lists no frames")
    for image, label in pairs:
        for path in (image, label):
            if not path.is_file():
                raise DatasetLayoutError(f"CamVid file {path} is missing; expected {LAYOUT}")
    return pairs


def _video_frames(frames_dir: Path) -> dict[str, list[tuple[int, Path]]]:
    """Sequence -> its 30 Hz frames sorted by number."""
    found = defaultdict(list)
    for path in frames_dir.rglob("*"):
        if path.suffix.lower() in (".png", ".jpg", ".jpeg") and _NAME.match(path.stem):
            seq, number = parse_name(path.stem)
            found[seq].append((number, path))
    return {seq: sorted(frames) for seq, frames in found.items()}


def index(
    root: str | Path,
    split: str,
    frames_dir: str | Path | None = None,
    labelled_only: bool = False,
    max_gap: int = 45,
) -> list[SequenceSpec]:
    """One spec per segment of consecutive labelled frames (see module docstring).

    frames_dir: 30 Hz frames (default <root>/frames when it exists); labelled_only ignores
    them; max_gap: largest step, in video frames, between labelled neighbours of a segment.
    """
    root = find_root(root)
    if frames_dir is None:
        frames_dir = root / "frames" if (root / "frames").is_dir() else None
    elif not Path(frames_dir).is_dir():
        raise DatasetLayoutError(f"CamVid frames folder {frames_dir} does not exist")
    video = {} if labelled_only or frames_dir is None else _video_frames(Path(frames_dir))
    by_seq: dict[str, list[tuple[int, Path, Path]]] = defaultdict(list)
    for image, label in labelled_pairs(root, split):
        seq, number = parse_name(image.stem)
        by_seq[seq].append((number, image, label))
    specs = []
    for seq in sorted(by_seq):
        labelled = sorted(by_seq[seq])
        between = video.get(seq, [])
        numbers = [number for number, _ in between]
        segment: list[tuple[str, Path, Path | None]] = []
        for i, (number, image, label) in enumerate(labelled):
            if i and number - labelled[i - 1][0] > max_gap:
                specs.append(_spec(seq, segment))
                segment = []
            elif i:
                lo = bisect.bisect_right(numbers, labelled[i - 1][0])
                hi = bisect.bisect_left(numbers, number)
                segment += [(path.stem, path, None) for _, path in between[lo:hi]]
            segment.append((image.stem, image, label))
        specs.append(_spec(seq, segment))
    return specs


def _spec(seq: str, frames: list[tuple[str, Path, Path | None]]) -> SequenceSpec:
    ids, images, labels = zip(*frames)
    return SequenceSpec("camvid", seq, ids, images, labels, NUM_CLASSES, LUT)
