"""Which frames train and which are scored, for every real-data bench: splits of one dataset
by sequence (nas.data.choose_sequences), so that nothing scored was ever trained on."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from nas.data import load_clips
from nas.data.clip import Clip

DAVIS_UNSEEN = ("car-turn", "dog-agility", "paragliding", "rhino")
"""Scored only: no teacher, video network or search child ever trains on them."""
DAVIS_HELD_IN = ("hockey", "surf")
"""Training sequences held out to choose settings (bench.real --validate)."""
SEARCH_HELD_IN = (*DAVIS_HELD_IN, "scooter-gray", "tennis")
"""Where a payoff search's children are scored (bench.payoff --held-in): hockey and surf and
two more drawn from the other eight training sequences (numpy.random.default_rng(0)). With
hockey and surf alone, the search's score did not rank the table's cells (Spearman 0.000 /
0.214); with these four it did (0.893). The change was prompted by that first table on the
unseen four; the four names were drawn without looking at them."""
CAMVID_HELD_OUT = "0006R0"
STATIC_TARGETS = {"davis-unseen": 0.70, "camvid-val": 0.55}
"""Issue 16's targets for the pretrained static network (semi-supervised J&F, mIoU)."""


@dataclass(frozen=True)
class Protocol:
    """Which frames train and which are scored: splits of one dataset (a split may name its
    sequences, nas.data.choose_sequences), or each training sequence cut in time."""

    name: str
    dataset: str
    train: str
    evaluate: str
    in_time: bool = False
    """Cut each training sequence: the first 70% train, the rest is scored."""
    note: str = ""


def named(names: tuple[str, ...]) -> str:
    """Sequence names as a split's list (``train:a,b``)."""
    return ",".join(names)


PROTOCOLS = {
    "davis-unseen": Protocol(
        "davis-unseen",
        "davis",
        f"train:-{named(DAVIS_UNSEEN)}",
        f"train:{named(DAVIS_UNSEEN)}",
        note=f"DAVIS-2016: 10 training sequences -> {', '.join(DAVIS_UNSEEN)} (unseen)",
    ),
    "camvid-val": Protocol("camvid-val", "camvid", "train", "val", note="CamVid train -> val"),
    "camvid-1hz": Protocol(
        "camvid-1hz",
        "camvid",
        f"train:-{CAMVID_HELD_OUT}",
        f"train:{CAMVID_HELD_OUT}",
        note=f"CamVid: 0001TP, 0016E5 -> {CAMVID_HELD_OUT} (unseen, 1 Hz)",
    ),
    "davis-in-time": Protocol(
        "davis-in-time",
        "davis",
        "train",
        "train",
        in_time=True,
        note="DAVIS-2016: first 70% of each sequence -> last 30% (sequences seen)",
    ),
}


def held_in_names(text: str) -> tuple[str, ...]:
    """``--held-in``'s comma-separated sequences, checked against the unseen four (scored only,
    never read before the table); a name the dataset lacks is refused where the split loads."""
    names = tuple(dict.fromkeys(n.strip() for n in text.split(",") if n.strip()))
    if not names:
        raise ValueError(f"--held-in {text!r} names no sequence; e.g. --held-in hockey,surf")
    unseen = [n for n in names if n in DAVIS_UNSEEN]
    if unseen:
        raise ValueError(
            f"--held-in {text!r} names {', '.join(unseen)}, scored only and never read before "
            f"the table; choose held-in sequences outside {', '.join(DAVIS_UNSEEN)}"
        )
    return names


def validation_protocol(protocol: Protocol, held_in: tuple[str, ...] = DAVIS_HELD_IN) -> Protocol:
    """The same training data less a held-out part that decides settings: DAVIS's held-in
    sequences (``held_in``), or the last 30% in time of each training sequence."""
    if protocol.name == "davis-unseen":
        return Protocol(
            "davis-unseen-validate",
            "davis",
            f"train:-{named(DAVIS_UNSEEN + held_in)}",
            f"train:{named(held_in)}",
            note=f"DAVIS-2016 validation: the other training sequences -> {', '.join(held_in)}",
        )
    if protocol.in_time:
        raise ValueError(f"--validate is not defined for {protocol.name}; use davis-unseen")
    return Protocol(
        f"{protocol.name}-validate",
        protocol.dataset,
        protocol.train,
        protocol.train,
        in_time=True,
        note=f"{protocol.note}, validation: first 70% of each training sequence -> the rest",
    )


def split_in_time(clip: Clip, share: float) -> tuple[Clip, Clip]:
    """The first ``share`` of a sequence's frames and the rest, as two clips."""
    cut = round(len(clip) * share)
    return (
        clip.subset(slice(0, cut), f"{clip.sequence}[train]"),
        clip.subset(slice(cut, None), f"{clip.sequence}[eval]"),
    )


def load(protocol: Protocol, root: Path, size: tuple[int, int]) -> tuple[list[Clip], list[Clip]]:
    """The protocol's training and scored clips (whole sequences)."""
    train = load_clips(protocol.dataset, root, protocol.train, size=size)
    if protocol.in_time:
        parts = [split_in_time(c, 0.7) for c in train]
        return [p[0] for p in parts], [p[1] for p in parts]
    return train, load_clips(protocol.dataset, root, protocol.evaluate, size=size)


DAVIS_VALIDATE = validation_protocol(PROTOCOLS["davis-unseen"])
"""8 training sequences -> hockey, surf: where settings are chosen (search children: see
SEARCH_HELD_IN)."""
