"""Does a cell's gain over copy hold across teachers? The same cells and controls trained on
several teachers (the same settings, other seeds), each scored on the unseen DAVIS sequences.

    python -m bench.teachers [--cells docs/cell.json ...] [--teachers 3] [--seeds 3]
                             [--out bench/out/teachers] [--json FILE]

Every payoff figure compares networks trained on one teacher, and its standard errors count
only the video trainings' seeds. Two teachers trained with the same settings and seed in two
sessions scored a static J&F of 0.6157 and 0.6086 on the unseen four, and the trained copy's
gain over copy moved from +0.0099 to +0.0120 between them: the teacher is a source of spread
the tables did not show (the torch thread count alone changes a teacher). This bench trains
``--teachers`` teachers of the ``davis-unseen`` protocol (seeds ``--seed``, ``--seed`` + 1,
...; bench.real's settings and code, each teacher in ``OUT/seed<S>``) and on each: every
``--cells`` cell at its own alpha and the trained copy (the copy cell trained end to end,
bench.payoff's ``copy-trained``) at each of their alphas, with ``--seeds`` video trainings each
(seeds S, S + 1, ...). It prints, per cell, its gain over copy and over the trained copy on
each teacher, then their mean over teachers, the spread between teachers and its standard
error, which holds both sources of spread; target: the mean gain over the trained copy above
two of those standard errors.

Every training resumes, so the bench can be stopped and rerun, and more teachers added later.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

from bench import payoff, protocols, real
from bench.cli import REPO, bench_parser
from bench.stats import figure
from nas.checkpoint import json_text
from nas.config import resolution_arg
from nas.train_utils import ResumeError
from search_spaces.genotype import Genotype, GenotypeError, copy_genotype


def on_teacher(
    args: argparse.Namespace, cells: dict[str, Genotype], seed: int, log
) -> dict[str, dict]:
    """Teacher ``seed`` trained (or read back) and every cell and trained copy on it: one
    bench.payoff row each, by name."""
    settings = real.video_settings(seed, args.seeds, args.threads)
    prep = real.prepare(
        protocols.PROTOCOLS["davis-unseen"],
        args.data_root / "davis2016",
        args.davis_size,
        settings,
        args.out / f"seed{seed}",
        log,
    )
    unsup = args.unsupervised
    rows = {
        name: payoff.score(prep, name, cell, settings, log, unsup) for name, cell in cells.items()
    }
    for alpha in sorted({cell.alpha for cell in cells.values()}):
        control = copy_genotype(alpha)
        rows[f"{payoff.TRAINED_COPY}-{alpha}"] = payoff.score(
            prep, payoff.TRAINED_COPY, control, settings, log, unsup
        )
    return rows


def spread(values: list[float | None]) -> dict:
    """Mean over teachers, the standard deviation between them and its standard error (None
    where a teacher has no figure or fewer than two teachers have one)."""
    if None in values or not values:
        return {"mean": None, "std": None, "se": None}
    std = float(np.std(values, ddof=1)) if len(values) > 1 else None
    return {
        "mean": float(np.mean(values)),
        "std": std,
        "se": None if std is None else std / np.sqrt(len(values)),
    }


def gains(teachers: dict[int, dict[str, dict]], cells: dict[str, Genotype]) -> dict[str, dict]:
    """Per cell: its gain over copy and over the trained copy at its alpha on each teacher,
    and their spread over teachers; whether the mean gain over the trained copy is above two
    standard errors of it."""
    out = {}
    for name, cell in cells.items():
        minus_copy, minus_trained = [], []
        for rows in teachers.values():
            row, control = rows[name], rows[f"{payoff.TRAINED_COPY}-{cell.alpha}"]
            quality = row["quality"]
            minus_copy.append(None if quality is None else quality - row["copy"])
            minus_trained.append(payoff.minus_trained_copy(row, {cell.alpha: control})[0])
        over = spread(minus_trained)
        out[name] = {
            "alpha": cell.alpha,
            "minus_copy": minus_copy,
            "minus_trained_copy": minus_trained,
            "over_copy": spread(minus_copy),
            "over_trained_copy": over,
            "above_trained_copy": bool(
                over["se"] and over["mean"] > payoff.TARGETS["copy_standard_errors"] * over["se"]
            ),
        }
    return out


def table(teachers: dict[int, dict[str, dict]], result: dict[str, dict]) -> str:
    """Per teacher the controls, then per cell its gains on each teacher and over them."""
    seeds = sorted(teachers)
    head = f"{'teacher':<8} {'alpha':>5} {'static':>7} {'copy':>7} {'trained copy':>12} {'SE':>7}"
    lines = [head, "-" * len(head)]
    for seed in seeds:
        for name, row in sorted(teachers[seed].items()):
            if name.startswith(payoff.TRAINED_COPY):
                lines.append(
                    f"{'seed ' + str(seed):<8} {row['alpha']:>5} {figure(row['static']):>7} "
                    f"{figure(row['copy']):>7} {figure(row['quality']):>12} "
                    f"{figure(row['se']):>7}"
                )
    cols = " ".join(f"{'seed ' + str(s):>8}" for s in seeds)
    head = f"{'cell':<12} {'alpha':>5} {'gain over':<12} {cols} {'mean':>8} {'std':>7} {'SE':>7}"
    lines += ["", head, "-" * len(head)]
    for name, res in result.items():
        for label, key, over in (
            ("copy", "minus_copy", "over_copy"),
            ("trained copy", "minus_trained_copy", "over_trained_copy"),
        ):
            per = " ".join(f"{figure(v, '+.4f'):>8}" for v in res[key])
            s = res[over]
            lines.append(
                f"{name:<12} {res['alpha']:>5} {label:<12} {per} {figure(s['mean'], '+.4f'):>8} "
                f"{figure(s['std']):>7} {figure(s['se']):>7}"
            )
    return "\n".join(lines)


def verdict(name: str, res: dict, teachers: int) -> str:
    over = res["over_trained_copy"]
    return (
        f"{name}: {figure(over['mean'], '+.4f')} over the trained copy at alpha {res['alpha']} "
        f"over {teachers} teachers (SE {figure(over['se'])}; > 2 SE: {res['above_trained_copy']})"
    )


def cell_name(path: Path) -> str:
    """docs/cell.json is the reference, an exported cell (``EXPORT/01-ppo-0-6/cell.json``)
    its folder's name, any other file its stem."""
    if path.resolve() == payoff.REFERENCE:
        return "reference"
    return path.parent.name if path.name == "cell.json" and path.parent.name else path.stem


def cell_names(paths: list[Path]) -> dict[str, Genotype]:
    """Each cell file by its name (cell_name); a name twice is refused."""
    names = [cell_name(p) for p in paths]
    if len(set(names)) < len(names):
        raise ValueError(f"--cells names two files alike ({', '.join(names)}): rename one")
    return {name: Genotype.load(path) for name, path in zip(names, paths)}


def parser() -> argparse.ArgumentParser:
    p = bench_parser("python -m bench.teachers", __doc__, "davis2016/")
    p.add_argument("--cells", type=Path, nargs="+", default=[payoff.REFERENCE])
    p.add_argument("--teachers", type=int, default=3, help="teachers (seeds --seed, ...)")
    p.add_argument("--seeds", type=int, default=3, help="video trainings per cell and teacher")
    p.add_argument("--seed", type=int, default=0, help="the first teacher's seed")
    p.add_argument("--davis-size", type=resolution_arg, default=(240, 427))
    p.add_argument("--threads", type=int, default=2)
    p.add_argument(
        "--unsupervised", action="store_true", help="score without the first frame's mask"
    )
    p.add_argument("--out", type=Path, default=REPO / "bench" / "out" / "teachers")
    p.add_argument("--json", type=Path, help="also write the figures here")
    return p


def main(argv: list[str] | None = None) -> int:
    p = parser()
    args = p.parse_args(argv)
    if args.teachers < 1 or args.seeds < 1:
        p.error("--teachers and --seeds must be at least 1")
    if not (args.data_root / "davis2016").is_dir():
        print(f"skipped: no DAVIS-2016 under {args.data_root} (pass --data-root)")
        return 0
    log = lambda text: print(text, flush=True)
    start = time.time()
    try:
        cells = cell_names(args.cells)
        torch.set_num_threads(args.threads)
        teachers = {
            seed: on_teacher(args, cells, seed, log)
            for seed in range(args.seed, args.seed + args.teachers)
        }
    except (GenotypeError, ResumeError, ValueError, FileNotFoundError, ModuleNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    result = gains(teachers, cells)
    scoring = "unsupervised" if args.unsupervised else "semi-supervised"
    print(
        f"\nDAVIS-2016 unseen sequences ({', '.join(protocols.DAVIS_UNSEEN)}), {scoring} J&F on "
        f"non-key frames; {args.teachers} teachers, {args.seeds} video seeds a cell and "
        f"teacher; {time.time() - start:.0f} s\n{table(teachers, result)}"
    )
    for name, res in result.items():
        print(verdict(name, res, args.teachers))
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json_text({"teachers": teachers, "gains": result}) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
