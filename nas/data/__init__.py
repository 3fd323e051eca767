"""Datasets by name. Every one yields `Clip`s (nas.data.clip); real ones read lazily from disk.

load_clips("camvid", "../shared/data/camvid", "val", clip_len=8, size=(180, 240))
load_clips("synthetic", None, "train", max_clips=32)   # embedded: no root, no download
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import fields, replace
from pathlib import Path

from nas.data import camvid, cityscapes, davis, synthetic
from nas.data.clip import IGNORE_INDEX, Clip
from nas.data.images import DatasetLayoutError, ImageReadError
from nas.data.sampling import SequenceSpec, read_clip, spread, windows

DATASETS = ("synthetic", "camvid", "cityscapes", "davis")
_REAL = {"camvid": camvid, "cityscapes": cityscapes, "davis": davis}
_SYNTHETIC_CLIPS = {"train": 64, "val": 16, "test": 16}

__all__ = [
    "DATASETS",
    "IGNORE_INDEX",
    "Clip",
    "DatasetLayoutError",
    "ImageReadError",
    "SequenceSpec",
    "class_names",
    "iter_clips",
    "load_clips",
    "num_classes",
    "sequence_specs",
]


def _check(name: str) -> None:
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; known datasets: {', '.join(DATASETS)}")


def sequence_specs(name: str, root: str | Path | None, split: str, **kw) -> list[SequenceSpec]:
    """The files of every sequence of a real dataset's split, nothing decoded (kw: the
    loader's options, e.g. camvid frames_dir, cityscapes snippet_len, davis year). A split
    may name its sequences: ``train:bear,rhino`` or ``train:-0006R0`` (choose_sequences)."""
    _check(name)
    if name == "synthetic":
        raise ValueError("synthetic clips are generated, not indexed: use load_clips")
    if root is None:
        raise DatasetLayoutError(f"dataset {name} needs a data root (--data-root)")
    if not Path(root).is_dir():
        raise DatasetLayoutError(
            f"{name} data root {root} does not exist; expected {_REAL[name].LAYOUT}"
        )
    split, _, chosen = split.partition(":")
    specs = _REAL[name].index(root, split, **kw)
    return choose_sequences(specs, chosen, f"{name} {split}") if chosen else specs


def choose_sequences(specs: list[SequenceSpec], chosen: str, where: str) -> list[SequenceSpec]:
    """The sequences a split such as ``train:bear,rhino`` names, or with a leading ``-``
    (``train:-0006R0``) all but those: how a split is cut by sequence, so that no sequence's
    frames are ever both trained on and scored."""
    exclude = chosen.startswith("-")
    names = {n.strip() for n in chosen.lstrip("-").split(",") if n.strip()}
    present = {spec.sequence for spec in specs}
    unknown = sorted(names - present)
    if unknown or not names:
        raise DatasetLayoutError(
            f"{where} has no sequence {', '.join(unknown) or '(none named)'}; its sequences: "
            f"{', '.join(sorted(present))}"
        )
    return [spec for spec in specs if (spec.sequence in names) != exclude]


def iter_clips(
    name: str,
    root: str | Path | None,
    split: str,
    clip_len: int | None = None,
    size: tuple[int, int] | None = None,
    max_clips: int | None = None,
    require_label: bool = True,
    **kw,
) -> Iterator[Clip]:
    """Clips decoded one at a time (files are indexed, and errors raised, at the call); see
    load_clips."""
    _check(name)
    if name == "synthetic":
        return _synthetic(split, clip_len, size, max_clips, **kw)
    specs = sequence_specs(name, root, split, **kw)
    parts = [w for spec in specs for w in windows(spec, clip_len, require_label)]
    if not parts:
        longest = max((len(s) for s in specs), default=0)
        raise ValueError(
            f"{name} {split} under {root} has no clip of {clip_len} frames with a label "
            f"(longest sequence: {longest} frames)"
            + (" - Cityscapes video needs leftImg8bit_sequence/" if name == "cityscapes" else "")
        )
    return (read_clip(part, size) for part in spread(parts, max_clips))


def load_clips(
    name: str,
    root: str | Path | None,
    split: str,
    clip_len: int | None = None,
    size: tuple[int, int] | None = None,
    max_clips: int | None = None,
    **kw,
) -> list[Clip]:
    """The clips of a split as `Clip`s.

    clip_len: frames per clip (None: whole sequences; real sequences are cut into
    non-overlapping windows, a short tail dropped, and with require_label=True (default) only
    windows holding a labelled frame are kept). size: (H, W) to resize to (area/bilinear for
    frames, nearest for labels). max_clips: that many clips spread evenly over the split
    (synthetic: that many generated, however many its default split holds).
    kw: the loader's options (camvid: frames_dir, labelled_only, max_gap; cityscapes:
    sequences, snippet_len, label_index; davis: year, resolution; synthetic: num_clips and any
    SyntheticConfig field). synthetic ignores root; its splits use disjoint seeds.
    """
    return list(iter_clips(name, root, split, clip_len, size, max_clips, **kw))


def _synthetic(split, clip_len, size, max_clips, num_clips=None, **kw) -> Iterator[Clip]:
    known = {f.name for f in fields(synthetic.SyntheticConfig)}
    unknown = set(kw) - known
    if unknown:
        raise TypeError(f"unknown synthetic options {sorted(unknown)}; known: {sorted(known)}")
    config = synthetic.SyntheticConfig(**kw)
    if clip_len is not None:
        config = replace(config, length=clip_len)
    if size is not None:
        config = replace(config, height=size[0], width=size[1])
    config = synthetic.split_config(config, split)
    # a generated split has no end: max_clips is how many to generate
    count = max_clips or num_clips or _SYNTHETIC_CLIPS[split]
    if num_clips and max_clips:
        count = min(num_clips, max_clips)
    return (synthetic.make_clip(i, config) for i in range(count))


def num_classes(name: str, root: str | Path | None = None, **kw) -> int:
    """Classes a model must predict (davis 2017 with a root: most objects in a sequence + 1;
    synthetic: kw num_classes, default 5)."""
    _check(name)
    if name == "synthetic":
        return kw.get("num_classes", synthetic.SyntheticConfig.num_classes)
    if name == "davis":
        return davis.num_classes(root, **kw)
    return _REAL[name].NUM_CLASSES


def class_names(name: str, num_classes: int | None = None) -> tuple[str, ...]:
    """Names by class index (synthetic and davis 2017 take their num_classes)."""
    _check(name)
    if name == "synthetic":
        return synthetic.class_names(num_classes or synthetic.SyntheticConfig.num_classes)
    if name == "davis":
        if num_classes is None or num_classes == 2:
            return davis.CLASS_NAMES_2016
        return ("background", *(f"object {i}" for i in range(1, num_classes)))
    return _REAL[name].CLASS_NAMES
