"""``python -m nas.export RUN --top K``: the best cells of a search as files a user keeps.

Per cell a folder with ``cell.json`` (genotype, space version, reward, quality, GFLOPs,
provenance), ``weights.safetensors`` (the whole VideoSegNet: teacher, fast encoder, the
child's cell and heads) and TorchScript graphs ``key_step.pt`` and ``step.pt`` traced at the
search resolution. ``nas.cellfile.build_from_cell(cell.json)`` rebuilds the network.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

from nas.cellfile import build_from_cell, write_cell
from nas.checkpoint import load_weights, read_json, save_weights
from nas.config import at_least
from nas.models.video import KeyStep, Step, VideoSegNet
from nas.records import describe_bad, scan_records
from nas.teacher_folder import TeacherFolder
from search_spaces.genotype import Genotype


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


def export_cell(run: Path, record: dict, folder: Path, resolution: tuple[int, int]) -> Path:
    """Write one cell folder; returns its cell.json."""
    net = assemble(run, record)
    folder.mkdir(parents=True, exist_ok=True)
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
        "seed": record.get("seed"),
        "resolution": list(resolution),
        "teacher_key": TeacherFolder(run / "teacher").meta()["key"],
        "exported_at": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
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
    frame = torch.rand(1, 3, *resolution)
    with torch.no_grad():
        key = torch.jit.trace(KeyStep(net), frame, check_trace=False)
        _, state = net.key_step(frame)
        step = torch.jit.trace(Step(net), (frame, *state), check_trace=False)
    key.save(str(folder / "key_step.pt"))
    step.save(str(folder / "step.pt"))
    rebuilt, _ = build_from_cell(cell_json)  # the promise: cell.json alone rebuilds it
    with torch.no_grad():
        if not torch.allclose(rebuilt.key_step(frame)[0], net.key_step(frame)[0], atol=1e-5):
            raise RuntimeError(f"{cell_json} does not rebuild the network it came from")
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


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m nas.export",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("run", help="a search's run folder, e.g. runs/demo")
    p.add_argument(
        "--top",
        type=at_least(1),
        default=3,
        help="how many cells, best reward first (>= 1; default 3)",
    )
    p.add_argument("--out", help="where to write (default RUN/export)")
    args = p.parse_args(argv)
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
        out = Path(args.out) if args.out else run / "export"
        for rank, record in enumerate(top_records(run, args.top), start=1):
            folder = out / f"{rank:02d}-{record['proposal_id']}"
            export_cell(run, record, folder, resolution)
            print(
                f"{folder}: reward {record['reward']:.4f}, quality "
                f"{record.get('quality') or float('nan'):.4f}, "
                f"{record.get('gflops') or float('nan'):.4f} GFLOPs/frame "
                f"({search.get('dataset')} at {resolution[0]}x{resolution[1]})"
            )
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
