"""``python -m nas.export RUN --top K``: the best cells of a search as files a user keeps.

    python -m nas.export RUN [--top K] [--format torchscript,onnx] [--out DIR]
    python -m nas.export RUN --pareto [gflops|latency]     # every cell on the search's front
    python -m nas.export --draw cell.json [--out DIR]      # only the picture of a cell

Per cell a folder with ``cell.json`` (genotype, space version, reward, quality, GFLOPs,
provenance), ``weights.safetensors`` (the whole VideoSegNet: teacher, fast encoder, the
child's cell and heads), the step graphs traced at the search resolution (``--format``:
TorchScript ``key_step.pt`` and ``step.pt``, the default; ONNX ``key_step.onnx`` and
``step.onnx``, checked against the eager network with onnxruntime), the cell's picture
(``cell.svg``, ``cell.png``) and ``cell.md`` (what the cell is, how to run and retrain it).
``nas.cellfile.build_from_cell(cell.json)`` rebuilds the network.

``--pareto`` exports the cells no other child beats on both quality and cost (nas/pareto.py;
the cost the search's reward used, or the one named), cheapest first, to ``RUN/export/pareto``:
the user picks the trade-off instead of the reward's exponent.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

from nas.cell_card import cell_card
from nas.cell_draw import cell_subtitle, draw_cell
from nas.cellfile import build_from_cell, read_cell, write_cell
from nas.checkpoint import load_weights, read_json, save_weights
from nas.config import at_least
from nas.models.video import KeyStep, Step, VideoSegNet
from nas.pareto import COST_FIELDS, front_records
from nas.records import describe_bad, scan_records
from nas.teacher_folder import TeacherFolder
from nas.tracing import tracer_warnings_off
from search_spaces.genotype import Genotype, GenotypeError

FORMATS = ("torchscript", "onnx")


def formats_arg(text: str) -> tuple[str, ...]:
    """``--format torchscript,onnx``: the step-graph formats to write (argparse type)."""
    names = tuple(dict.fromkeys(name.strip() for name in text.split(",") if name.strip()))
    unknown = [name for name in names if name not in FORMATS]
    if not names or unknown:
        raise argparse.ArgumentTypeError(
            f"{text!r}: give one or more of {', '.join(FORMATS)}, comma-separated"
        )
    return names


def below_copy(record: dict) -> str | None:
    """What to tell a user who exports a cell not above its own copy baseline, else None."""
    quality, copy = record.get("quality"), record.get("copy_quality")
    if quality is None or copy is None or not math.isfinite(copy):
        return None
    if math.isfinite(quality) and quality > copy:
        return None
    return (
        f"quality {quality:.4f} is not above the copy baseline's {copy:.4f} at the same alpha "
        f"({record['genotype']['alpha']}): reusing the key frame's features does as well or "
        "better; --pareto exports only cells above it"
    )


def assemble(run: Path, record: dict) -> VideoSegNet:
    """The trained video network of one recorded child."""
    net = TeacherFolder(run / "teacher").video_net(Genotype.from_dict(record["genotype"]))
    child = run / "children" / f"{record['proposal_id']}.safetensors"
    if not child.is_file():
        raise FileNotFoundError(f"{child} is missing: the child's weights were not saved")
    missing, unexpected = net.load_state_dict(load_weights(child), strict=False)
    if unexpected:
        raise ValueError(f"{child} does not fit its genotype: unexpected {unexpected[:5]}")
    return net.eval()


def export_cell(
    run: Path,
    record: dict,
    folder: Path,
    resolution: tuple[int, int],
    formats: tuple[str, ...] = ("torchscript",),
    log: Callable[[str], None] = print,
) -> Path:
    """Write one cell folder; returns its cell.json."""
    net = assemble(run, record)
    search = read_json(run / "search.json")
    metrics = {
        k: record.get(k)
        for k in ("reward", "quality", "copy_quality", "static_quality", "gflops", "ratio_avg")
    }
    provenance = {
        "run": str(run.resolve()),
        "trial_id": record.get("trial_id"),
        "proposal_id": record["proposal_id"],
        "controller": record.get("controller"),
        "dataset": search.get("dataset"),
        "data_root": search.get("data_root"),
        "train_split": search.get("train_split"),
        "val_split": search.get("val_split"),
        "pretrained_backbone": search.get("pretrained_backbone"),
        "seed": record.get("seed"),
        "resolution": list(resolution),
        "teacher_key": TeacherFolder(run / "teacher").meta()["key"],
        "exported_at": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
    return write_cell_folder(net, folder, resolution, formats, metrics, provenance, log)


def write_cell_folder(
    net: VideoSegNet,
    folder: Path,
    resolution: tuple[int, int],
    formats: tuple[str, ...],
    metrics: dict,
    provenance: dict,
    log: Callable[[str], None] = print,
) -> Path:
    """cell.json, weights.safetensors, the step graphs in ``formats``, the cell's picture
    and cell.md for a trained ``net`` (on the CPU); returns the cell.json."""
    net = net.eval()
    folder.mkdir(parents=True, exist_ok=True)
    save_weights(net, folder / "weights.safetensors")
    cell_json = folder / "cell.json"
    write_cell(
        cell_json,
        net.genotype,
        net.slow.num_classes,
        net.config,
        resolution=list(resolution),  # what nas.segment runs at by default
        metrics=metrics,
        provenance=provenance,
    )
    size = f"1 x 3 x {resolution[0]} x {resolution[1]} frames"
    files = {
        "cell.json": "genotype, network settings, figures and provenance (docs/genotype.md)",
        "weights.safetensors": "the whole trained video network (nas.cellfile.build_from_cell)",
    }
    frame = torch.rand(1, 3, *resolution)
    if "torchscript" in formats:
        with torch.no_grad(), tracer_warnings_off():
            key = torch.jit.trace(KeyStep(net), frame, check_trace=False)
            _, state = net.key_step(frame)
            step = torch.jit.trace(Step(net), (frame, *state), check_trace=False)
        key.save(str(folder / "key_step.pt"))
        step.save(str(folder / "step.pt"))
        files["key_step.pt, step.pt"] = (
            f"TorchScript key_step and step, traced on {size}; other frame sizes run too"
        )
    if "onnx" in formats:
        # imported here: a TorchScript-only export needs neither onnx nor onnxruntime
        import onnxruntime

        from nas.onnx_export import OPSET, export_onnx

        difference = export_onnx(net, resolution, folder)
        log(
            f"{folder}: key_step.onnx, step.onnx (opset {OPSET}) vs eager under onnxruntime "
            f"{onnxruntime.__version__}: max abs difference {difference:.2e}"
        )
        files["key_step.onnx, step.onnx"] = (
            f"ONNX opset {OPSET} key_step and step, {size}; max abs difference from the "
            f"eager network {difference:.2e} (onnxruntime {onnxruntime.__version__})"
        )
    rebuilt, _ = build_from_cell(cell_json)  # the promise: cell.json alone rebuilds it
    with torch.no_grad():
        if not torch.allclose(rebuilt.key_step(frame)[0], net.key_step(frame)[0], atol=1e-5):
            raise RuntimeError(f"{cell_json} does not rebuild the network it came from")
    genotype, data = read_cell(cell_json)
    draw_cell(genotype, folder / "cell", cell_subtitle(data))
    files["cell.svg, cell.png"] = "the picture of the cell"
    files["cell.md"] = "this page"
    card = cell_card(cell_json, data, genotype, files, onnx="onnx" in formats)
    (folder / "cell.md").write_text(card)
    return cell_json


def top_records(run: Path, k: int) -> list[dict]:
    """The ``k`` best recorded children, one per genotype; a torn or unreadable line of
    trials.jsonl is reported on stderr (its child may have been the best)."""
    records, bad = scan_records(run / "trials.jsonl")
    if bad:
        print(
            f"warning: {describe_bad(run / 'trials.jsonl', bad)}: not exported; "
            f"python -m nas.search --resume --out {run} moves it aside and runs its child again",
            file=sys.stderr,
        )
    ok = [r for r in records if r.get("status") != "failed" and r.get("reward") is not None]
    if not ok:
        raise ValueError(
            f"{run} has no finished child to export (trials.jsonl is empty or every child failed)"
        )
    best: dict[str, dict] = {}
    for r in sorted(ok, key=lambda r: -r["reward"]):
        best.setdefault(Genotype.from_dict(r["genotype"]).to_json(), r)  # one per genotype
    return list(best.values())[:k]


def pareto_records(run: Path, cost: str | None) -> list[dict]:
    """The records on ``run``'s front for ``cost`` (default: the cost its reward used),
    cheapest first; torn lines of trials.jsonl are reported on stderr."""
    warn = lambda text: print(f"warning: {text}", file=sys.stderr)  # noqa: E731
    return front_records(run, cost, warn)


def draw_only(cell: Path, out: Path | None) -> list[Path]:
    """``--draw``: the picture of any cell file (a genotype or an exported cell.json)."""
    genotype, data = read_cell(cell)
    return draw_cell(genotype, (out or cell.parent) / cell.stem, cell_subtitle(data))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m nas.export",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("run", nargs="?", help="a search's run folder, e.g. runs/demo")
    p.add_argument(
        "--top",
        type=at_least(1),
        help="how many cells, best reward first (>= 1; default 3)",
    )
    p.add_argument(
        "--pareto",
        nargs="?",
        const="search",
        choices=("search", *COST_FIELDS),
        metavar="COST",
        help="export every cell on the quality/cost front instead of the top K, cheapest "
        "first, to RUN/export/pareto; COST gflops or latency (default: the search's --cost)",
    )
    p.add_argument(
        "--format",
        type=formats_arg,
        default=("torchscript",),
        help="step graphs to write: torchscript (default), onnx, or torchscript,onnx",
    )
    p.add_argument(
        "--draw",
        type=Path,
        metavar="CELL",
        help="only draw CELL (a genotype or cell.json) as CELL's name .svg and .png, beside "
        "it or in --out",
    )
    p.add_argument("--out", help="where to write (default RUN/export; with --draw, beside CELL)")
    args = p.parse_args(argv)
    if args.draw and args.run:
        p.error("--draw draws one cell file: give it without a RUN folder")
    if not args.draw and not args.run:
        p.error("give a search's RUN folder to export, or --draw CELL")
    if args.pareto and args.top is not None:
        p.error("--pareto exports the whole front: give it without --top")
    if args.draw:
        try:
            paths = draw_only(args.draw, Path(args.out) if args.out else None)
        except GenotypeError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        print(f"{args.draw}: {', '.join(str(path) for path in paths)}")
        return 0
    run = Path(args.run)
    try:
        if not (run / "search.json").is_file():
            raise FileNotFoundError(f"{run} is not a search run folder (no search.json)")
        search = read_json(run / "search.json")
        meta_path = run / "cache" / "val" / "meta.json"
        if not meta_path.is_file() or not (run / "teacher").is_dir():
            raise FileNotFoundError(
                f"{run} has no teacher and cache yet ({meta_path} is missing): the search is "
                "still building them, or stopped before; let it run (or continue it with "
                f"python -m nas.search --resume --out {run}) until children are recorded"
            )
        cache_meta = read_json(meta_path)
        resolution = tuple(cache_meta["size"])
        if args.pareto:
            cost = None if args.pareto == "search" else args.pareto
            records = pareto_records(run, cost)
            out = Path(args.out) if args.out else run / "export" / "pareto"
            named = cost or search.get("cost", "gflops")
            print(f"{len(records)} cells on the front of {run} by quality and {named}")
        else:
            records = top_records(run, 3 if args.top is None else args.top)
            out = Path(args.out) if args.out else run / "export"
        for rank, record in enumerate(records, start=1):
            folder = out / f"{rank:02d}-{record['proposal_id']}"
            export_cell(run, record, folder, resolution, args.format)
            latency = record.get("latency_ms")
            print(
                f"{folder}: reward {record['reward']:.4f}, quality "
                f"{record.get('quality') or float('nan'):.4f}, "
                f"{record.get('gflops') or float('nan'):.4f} GFLOPs/frame"
                + (f", {latency:.2f} ms/frame" if latency is not None else "")
                + f" ({search.get('dataset')} at {resolution[0]}x{resolution[1]})"
            )
            below = below_copy(record)
            if below:
                print(f"  note: {below}")
    except (FileNotFoundError, ValueError, RuntimeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(
            f"\ninterrupted: the export in {args.out or run / 'export'} is incomplete; run "
            "the same command again",
            file=sys.stderr,
        )
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
