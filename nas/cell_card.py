"""``cell.md``: what an exported cell is, in words, and the commands that use it.

Written by nas.export beside cell.json from the cell file alone: the genotype read out node
by node, the search's figures, the files of the folder, the ``nas.segment`` command and the
``nas.retrain`` command that trains this cell end to end on the data it was searched on
(dataset, data root, splits and resolution come from the cell's provenance).
"""

from __future__ import annotations

import shlex
from pathlib import Path

from nas.cell_draw import inputs_read
from search_spaces.genotype import CELL_INPUTS, Genotype

STATE_NAMES = {0: "D_k", 1: "fused fast", 2: "F_t"}
OUTPUT_WORDS = {
    "sum": "sum of the leaf nodes",
    "concat": "concatenation of the leaf nodes, 1x1 conv, BN",
    "residual": "D_k + g x (sum of the leaf nodes), g a learned per-channel gain",
}
METRIC_NAMES = (
    ("reward", "reward"),
    ("quality", "quality (non-key mIoU)"),
    ("copy_quality", "copy baseline"),
    ("static_quality", "static network"),
    ("gflops", "GFLOPs per frame"),
)


def state_name(index: int) -> str:
    return STATE_NAMES.get(index, f"node {index - 3}")


def node_lines(genotype: Genotype) -> list[str]:
    """``node 0 = warp(D_k) + conv1x1(F_t)`` for each node."""
    return [
        f"node {k} = "
        + " + ".join(f"{op}({state_name(i)})" for i, op in zip(node.inputs, node.ops))
        for k, node in enumerate(genotype.nodes)
    ]


def retrain_command(cell: Path, data: dict, out: str) -> str:
    """The ``python -m nas.retrain`` command that trains this cell end to end on the
    dataset, splits and resolution it was searched with."""
    provenance = data.get("provenance") or {}
    dataset = provenance.get("dataset") or "DATASET"
    args = ["python", "-m", "nas.retrain", "--cell", str(cell), "--dataset", dataset]
    if dataset != "synthetic":
        args += ["--data-root", provenance.get("data_root") or "DATA_ROOT"]
    resolution = data.get("resolution") or provenance.get("resolution")
    if resolution:
        args += ["--resolution", f"{resolution[0]}x{resolution[1]}"]
    for flag, key, default in (
        ("--train-split", "train_split", "train"),
        ("--val-split", "val_split", "val"),
    ):
        if provenance.get(key) not in (None, default):
            args += [flag, provenance[key]]
    if provenance.get("pretrained_backbone"):
        args += ["--pretrained-backbone", provenance["pretrained_backbone"]]
    args += ["--out", out]
    return " ".join(shlex.quote(a) if a not in ("DATASET", "DATA_ROOT") else a for a in args)


def cell_card(cell: Path, data: dict, genotype: Genotype, files: dict[str, str], onnx: bool) -> str:
    """The text of cell.md for the cell file ``cell`` (its data and genotype); ``files``:
    name -> what it is, for the files written beside it; ``onnx``: its ONNX graphs are
    among them."""
    provenance = data.get("provenance") or {}
    metrics = data.get("metrics") or {}
    name = cell.parent.name
    resolution = data.get("resolution") or provenance.get("resolution")
    used = inputs_read(genotype)
    unused = [CELL_INPUTS[i] for i in range(3) if i not in used]
    lines = [
        f"# Cell {name}",
        "",
        "A dynamic cell of the video network: the slow pathway (the static segmenter) runs on "
        f"every {genotype.alpha}th frame (the key frame); on the frames between, a fast "
        f"pathway {genotype.beta} as wide reads the frame and this cell turns D_k (the key "
        "frame's deep features), the fused fast features and F_t (this frame's fast "
        "features) into this frame's deep features. See docs/genotype.md.",
        "",
        "![the cell](cell.png)",
        "",
        "| | |",
        "|---|---|",
        f"| key frame every (alpha) | {genotype.alpha} frames |",
        f"| fast pathway width (beta) | {genotype.beta} of the slow widths |",
        f"| lateral fusion | {genotype.fusion} |",
        *(f"| {line.split(' = ')[0]} | {line.split(' = ')[1]} |" for line in node_lines(genotype)),
        f"| output | {genotype.output}: {OUTPUT_WORDS[genotype.output]} |",
        f"| inputs never read | {', '.join(unused) or 'none'} |",
    ]
    figures = [(label, metrics[k]) for k, label in METRIC_NAMES if metrics.get(k) is not None]
    if figures:
        lines += [
            "",
            "## Measured in the search",
            "",
            "| " + " | ".join(label for label, _ in figures) + " |",
            "|" + "---|" * len(figures),
            "| " + " | ".join(f"{value:.4f}" for _, value in figures) + " |",
        ]
    where = [
        f"{key} {provenance[key]}"
        for key in ("dataset", "run", "trial_id", "controller", "seed", "teacher_key")
        if provenance.get(key) is not None
    ]
    if resolution:
        where.append(f"resolution {resolution[0]}x{resolution[1]}")
    if where:
        lines += ["", "Provenance: " + ", ".join(where) + "."]
    lines += ["", "## Files", ""]
    lines += [f"- `{file}`: {what}" for file, what in files.items()]
    segment = f"python -m nas.segment VIDEO --cell {shlex.quote(str(cell))} --out overlay.mp4"
    retrain = retrain_command(cell, data, f"runs/retrain-{name}")
    lines += ["", "## Run it on a video", "", "```bash", segment]
    if onnx:
        lines.append(f"{segment} --onnx   # the ONNX graphs, with onnxruntime")
    lines += [
        "```",
        "",
        "## Retrain it end to end",
        "",
        "```bash",
        retrain,
        "```",
        "",
        "nas.retrain trains the static network and the fast encoders (a teacher), then this "
        "cell end to end on the training split, and reports static, copy-baseline and cell "
        "quality and GFLOPs in `runs/retrain-" + name + "/report.md`.",
    ]
    if provenance.get("run"):
        teacher = Path(provenance["run"]) / "teacher" / "teacher.safetensors"
        lines += [
            "",
            f"Add `--teacher {shlex.quote(str(teacher))}` to reuse the search's static "
            "network instead of training one.",
        ]
    return "\n".join(lines) + "\n"
