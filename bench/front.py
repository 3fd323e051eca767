"""The front of a finished search, checked: is each cell on it worth keeping?

    python -m bench.front RUN [--cost gflops|latency] [--min-cells 5] [--json FILE]

Reads RUN/trials.jsonl (any search: the synthetic default's, e.g. one of
``bench/search_compare.py``'s runs, or a real-data search such as bench.payoff's) and prints
the cells on its quality/cost front (nas/pareto.py), cheapest first: alpha, beta, output,
quality, the copy baseline at the same alpha from the child's own evaluation, the margin,
GFLOPs and predicted latency per frame. The check (issue 13's target): at least
``--min-cells`` cells, more than one alpha among them, and every one above copy at its alpha.
A cell below copy is one no user should keep: copying the key frame is cheaper still, so the
front leaves out children a baseline dominates (where the records hold the baselines' costs);
the check still counts it, from each child's own figures.

A child trains its copy of the head for its 80 steps; the copy baseline reads the teacher's
head unchanged. ``--trained-copy N`` separates what the cell adds from what head training
adds: the copy cell (D^_t = D_k) is trained as a child, head included, with N seeds at each
alpha on the front (``bench/proxy.py``'s child, kept in ``RUN/trained_copy.jsonl`` so a rerun
trains only what is missing), and each cell's margin over that trained copy is printed and
checked too.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.stats import figure  # noqa: E402
from nas.pareto import COST_FIELDS, front_records  # noqa: E402


def front_rows(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per front record: what the table prints and the check reads."""
    rows = []
    for r in records:
        g = r["genotype"]
        copy = r.get("copy_quality")
        rows.append(
            {
                "proposal_id": r["proposal_id"],
                "alpha": g["alpha"],
                "beta": g["beta"],
                "output": g.get("output", "sum"),
                "quality": r["quality"],
                "copy": copy,
                "margin": None if copy is None else r["quality"] - copy,
                "gflops": r.get("gflops"),
                "latency_ms": r.get("latency_ms"),
            }
        )
    return rows


def check(rows: list[dict[str, Any]], min_cells: int) -> dict[str, Any]:
    """The target, each part with its figure."""
    alphas = sorted({r["alpha"] for r in rows})
    below = [r["proposal_id"] for r in rows if r["margin"] is None or r["margin"] <= 0]
    if rows and "margin_trained" in rows[0]:
        below_trained = [r["proposal_id"] for r in rows if r["margin_trained"] <= 0]
        trained = {
            "not_above_trained_copy": below_trained,
            "all_above_trained_copy": not below_trained,
        }
    else:
        trained = {}
    return {
        "cells": len(rows),
        "enough_cells": len(rows) >= min_cells,
        "alphas": alphas,
        "spans_alpha": len(alphas) > 1,
        "not_above_copy": below,
        "all_above_copy": not below,
        "met": len(rows) >= min_cells and len(alphas) > 1 and not below,
        **trained,
    }


def add_trained_copy(run: Path, rows: list[dict[str, Any]], seeds: int, workers: int) -> None:
    """Each row's trained copy at its alpha (mean and std over ``seeds`` children) and the
    row's margin over it."""
    from bench.proxy import run_config, run_jobs
    from search_spaces.genotype import copy_genotype

    config = run_config(run)
    alphas = sorted({r["alpha"] for r in rows})
    jobs = [
        (str(run), copy_genotype(a, "1/8", config.n_nodes).to_dict(), config.child_steps, seed)
        for a in alphas
        for seed in range(seeds)
    ]
    qualities = run_jobs(jobs, workers, run / "trained_copy.jsonl")
    by_alpha = {a: qualities[i * seeds : (i + 1) * seeds] for i, a in enumerate(alphas)}
    for r in rows:
        q = np.array(by_alpha[r["alpha"]])
        r["trained_copy"] = float(q.mean())
        r["trained_copy_std"] = float(q.std(ddof=1)) if len(q) > 1 else None
        r["margin_trained"] = r["quality"] - r["trained_copy"]


def table(rows: list[dict[str, Any]]) -> str:
    w = max([8, *(len(r["proposal_id"]) for r in rows)])  # ids grow: ppo-0-147
    head = (
        f"{'child':<{w}} {'alpha':>5} {'beta':>4} {'output':>8} {'quality':>8} {'copy':>7} "
        f"{'- copy':>8} {'GFLOPs':>7} {'ms':>7}"
    )
    trained = bool(rows) and "trained_copy" in rows[0]
    if trained:
        head += f" {'trained copy':>12} {'std':>6} {'- trained':>9}"
    lines = [head, "-" * len(head)]
    for r in rows:
        line = (
            f"{r['proposal_id']:<{w}} {r['alpha']:>5} {r['beta']:>4} {r['output']:>8} "
            f"{r['quality']:>8.4f} {figure(r['copy'], '.4f'):>7} {figure(r['margin'], '+.4f'):>8} "
            f"{figure(r['gflops'], '.3f'):>7} {figure(r['latency_ms'], '.2f'):>7}"
        )
        if trained:
            line += (
                f" {r['trained_copy']:>12.4f} {figure(r['trained_copy_std'], '.4f'):>6} "
                f"{r['margin_trained']:>+9.4f}"
            )
        lines.append(line)
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m bench.front",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("run", type=Path, help="a search's run folder")
    p.add_argument("--cost", choices=tuple(COST_FIELDS), help="default: the search's own")
    p.add_argument("--min-cells", type=int, default=5, help="cells the front must hold")
    p.add_argument("--json", type=Path, help="also write the rows and the check here")
    p.add_argument(
        "--trained-copy",
        type=int,
        default=0,
        metavar="SEEDS",
        help="also train the copy cell as a child (head included) with SEEDS seeds per alpha",
    )
    p.add_argument("--workers", type=int, default=2, help="children at once for --trained-copy")
    args = p.parse_args(argv)
    try:
        records = front_records(args.run, args.cost, lambda text: print(f"warning: {text}"))
    except (FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    rows = front_rows(records)
    if args.trained_copy and rows:
        if not (args.run / "cache" / "val" / "meta.json").is_file():
            print(f"error: {args.run} holds no feature cache for --trained-copy", file=sys.stderr)
            return 2
        add_trained_copy(args.run, rows, args.trained_copy, args.workers)
    result = check(rows, args.min_cells)
    print(f"{args.run}: {len(rows)} cells on the front\n{table(rows)}")
    print(
        f"{result['cells']} cells (>= {args.min_cells}: {result['enough_cells']}), alphas "
        f"{result['alphas']} (more than one: {result['spans_alpha']}), every cell above copy "
        f"at its alpha: {result['all_above_copy']}"
        + (f" (not: {', '.join(result['not_above_copy'])})" if result["not_above_copy"] else "")
    )
    if "all_above_trained_copy" in result:
        below = result["not_above_trained_copy"]
        print(
            f"every cell above the trained copy ({args.trained_copy} seeds) at its alpha: "
            f"{result['all_above_trained_copy']}" + (f" (not: {', '.join(below)})" if below else "")
        )
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"rows": rows, "check": result}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
