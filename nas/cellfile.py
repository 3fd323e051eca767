"""The exported-cell format: ``cell.json`` (genotype + what is needed to rebuild the network)
next to ``weights.safetensors`` (the whole VideoSegNet state dict).

cell.json keys: ``genotype`` (docs/genotype.md), ``space_version``, ``num_classes``, ``net``
(NetConfig fields), ``class_names``, ``metrics`` (reward, quality, gflops, ...) and
``provenance`` (run, trial, dataset, teacher, date). Only ``genotype`` is required: the rest
defaults to NetConfig() and the synthetic dataset's classes.
"""

from __future__ import annotations

from pathlib import Path

from nas.checkpoint import load_weights, read_json, write_json
from nas.models.config import NetConfig
from nas.models.video import VideoSegNet
from search_spaces.genotype import Genotype, GenotypeError


def read_cell(path: str | Path) -> tuple[Genotype, dict]:
    """Genotype and the rest of a cell.json (GenotypeError naming the problem)."""
    path = Path(path)
    genotype = Genotype.load(path)
    data = read_json(path)
    data = data if "genotype" in data else {"genotype": data}
    return genotype, data


def build_from_cell(
    path: str | Path, weights: str | Path | None = None, num_classes: int | None = None
) -> tuple[VideoSegNet, dict]:
    """Rebuild the VideoSegNet a cell.json describes; load ``weights`` (default: the
    ``weights.safetensors`` beside it, when present)."""
    genotype, data = read_cell(path)
    classes = num_classes or data.get("num_classes")
    if classes is None:
        raise GenotypeError(f"{path}: num_classes missing; pass --num-classes or export again")
    net = VideoSegNet(genotype, int(classes), NetConfig(**data.get("net", {})))
    default = Path(path).with_name("weights.safetensors")
    weights = weights or (default if default.is_file() else None)
    if weights is not None:
        state = load_weights(weights)
        missing, unexpected = net.load_state_dict(state, strict=False)
        if missing or unexpected:
            raise ValueError(
                f"{weights} does not fit the cell in {path}: missing "
                f"{missing[:8]} ({len(missing)}), unexpected {unexpected[:8]} "
                f"({len(unexpected)})"
            )
    return net.eval(), data


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
