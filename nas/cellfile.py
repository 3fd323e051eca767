"""The exported-cell format: ``cell.json`` (genotype + what is needed to rebuild the network)
next to ``weights.safetensors`` (the whole VideoSegNet state dict).

cell.json keys: ``genotype`` (docs/genotype.md), ``space_version``, ``num_classes``, ``net``
(NetConfig fields, backbone included), ``class_names``, ``resolution`` (H, W the cell was
trained at), ``metrics`` (reward, quality, gflops, ...) and ``provenance`` (run, trial,
dataset, teacher, date). Rebuilding a network needs ``genotype`` and ``num_classes``; ``net``
defaults to NetConfig(). Files exported before ``resolution`` was a top-level key keep it
under ``provenance`` (``cell_resolution`` reads both).
"""

from __future__ import annotations

from pathlib import Path

from nas.checkpoint import load_weights, read_json, write_json
from nas.models.config import NetConfig
from nas.models.video import VideoSegNet, unbuilt_fusion_keys
from search_spaces.genotype import Genotype, GenotypeError


def read_cell(path: str | Path) -> tuple[Genotype, dict]:
    """Genotype and the rest of a cell.json (GenotypeError naming the problem)."""
    path = Path(path)
    genotype = Genotype.load(path)
    data = read_json(path)
    data = data if "genotype" in data else {"genotype": data}
    return genotype, data


class MissingWeightsError(FileNotFoundError):
    """A cell.json with no weights beside it, and none given."""


def cell_resolution(data: dict) -> tuple[int, int] | None:
    """The (H, W) a cell was trained at: top-level ``resolution`` (nas.retrain, nas.export),
    else ``provenance.resolution`` (files nas.export wrote before), else None."""
    value = data.get("resolution") or (data.get("provenance") or {}).get("resolution")
    if not value:
        return None
    try:
        h, w = (int(v) for v in value)
    except (TypeError, ValueError):
        raise GenotypeError(f"resolution {value!r} in the cell file is not [H, W]") from None
    return h, w


def build_from_cell(
    path: str | Path,
    weights: str | Path | None = None,
    num_classes: int | None = None,
    require_weights: bool = False,
) -> tuple[VideoSegNet, dict]:
    """Rebuild the VideoSegNet a cell.json describes; load ``weights`` (default: the
    ``weights.safetensors`` beside it, when present; with ``require_weights`` its absence is
    a MissingWeightsError rather than an untrained network)."""
    genotype, data = read_cell(path)
    classes = num_classes or data.get("num_classes")
    if classes is None:
        raise GenotypeError(
            f"{path} is a bare genotype (no num_classes, no network settings): use the "
            "cell.json that python -m nas.export or python -m nas.retrain writes"
        )
    net = VideoSegNet(genotype, int(classes), NetConfig(**data.get("net", {})))
    default = Path(path).with_name("weights.safetensors")
    weights = weights or (default if default.is_file() else None)
    if weights is None and require_weights:
        raise MissingWeightsError(
            f"{path} has no weights.safetensors beside it: give the trained network with "
            "--weights FILE (an untrained one segments nothing)"
        )
    if weights is not None:
        load_fitting(net, load_weights(weights), f"{weights} does not fit the cell in {path}")
    return net.eval(), data


def load_fitting(net: VideoSegNet, state: dict, context: str) -> None:
    """Load ``state`` into ``net`` only if every tensor is there with its shape; else one
    ValueError (``context``: what does not fit what) naming what differs."""
    own = net.state_dict()
    dropped = set(unbuilt_fusion_keys(net.fast, state))  # as net.load_state_dict drops them
    state = {k: v for k, v in state.items() if k not in dropped}
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    shapes = [
        f"{k} {tuple(state[k].shape)} vs {tuple(own[k].shape)}"
        for k in own
        if k in state and tuple(state[k].shape) != tuple(own[k].shape)
    ]
    if missing or unexpected or shapes:
        parts = [
            f"{what} {len(items)} (e.g. {', '.join(items[:3])})"
            for what, items in (
                ("missing", missing),
                ("unexpected", unexpected),
                ("other shape", shapes),
            )
            if items
        ]
        raise ValueError(f"{context} (weights of another cell or network?): {'; '.join(parts)}")
    net.load_state_dict(state)


def write_cell(
    path: str | Path, genotype: Genotype, num_classes: int, net: NetConfig, **extra
) -> None:
    """Write cell.json: the genotype plus what rebuilding the network needs."""
    write_json(
        path,
        {
            "genotype": genotype.to_dict(),
            "space_version": genotype.space_version,
            "num_classes": num_classes,
            "net": net.to_dict(),
            **extra,
        },
    )
