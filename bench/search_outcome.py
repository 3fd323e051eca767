"""Does the search's score predict the payoff? Each cell of the payoff table scored as the
search scores its children (80-step child on the held-in sequences) beside what it scored in
the table (4-epoch video training on the unseen sequences).

bench/proxy.py measures 80 against 400 child steps on the same held-in frames; this is the
fidelity the payoff rests on: if a cell's gain over copy on the held-in sequences does not
rank cells as their gain on the unseen ones does, the search optimises the wrong thing
however well its proxy agrees with a longer child.
"""

from __future__ import annotations

from pathlib import Path

from bench.proxy import Job, run_config, run_jobs
from bench.stats import figure, spearman


def held_in_copy(records: list[dict]) -> dict[int, float]:
    """The copy baseline's quality on the held-in sequences at each alpha, as the search's
    children recorded it (every child scores copy at its own alpha on the same frames)."""
    copies: dict[int, float] = {}
    for r in records:
        if r.get("status") != "failed" and r.get("copy_quality") is not None:
            copies.setdefault(int(r["genotype"]["alpha"]), float(r["copy_quality"]))
    return copies


def held_in_jobs(rows: list[dict], run: Path, seed: int) -> list[Job]:
    """One child per table row, trained as the search's children are (its steps, batch and
    learning rate), all with one seed so that only the cell differs."""
    steps = run_config(run).child_steps
    return [(str(run), row["genotype"], steps, seed) for row in rows]


def compare(rows: list[dict], held_in: list[float], copies: dict[int, float]) -> dict:
    """Per cell: held-in child quality and gain over copy, beside the table's unseen ones;
    Spearman of each pair over the cells scored on both (None under 3 cells, or where one
    side does not vary), with the number of cells it is over."""
    cells = []
    for row, quality in zip(rows, held_in):
        copy = copies.get(int(row["alpha"]))
        cells.append(
            {
                "name": row["name"],
                "alpha": row["alpha"],
                "held_in": quality,
                "held_in_minus_copy": None if copy is None else quality - copy,
                "unseen": row["quality"],
                "unseen_minus_copy": None
                if row["quality"] is None
                else row["quality"] - row["copy"],
            }
        )

    def rho(a: str, b: str) -> tuple[float | None, int]:
        both = [(c[a], c[b]) for c in cells if c[a] is not None and c[b] is not None]
        if len(both) < 3 or any(len(set(side)) < 2 for side in zip(*both)):
            return None, len(both)
        return spearman(*zip(*both)), len(both)

    (quality, n_quality), (gain, n_gain) = (
        rho("held_in", "unseen"),
        rho("held_in_minus_copy", "unseen_minus_copy"),
    )
    return {
        "cells": cells,
        "spearman_quality": quality,
        "spearman_quality_cells": n_quality,
        "spearman_minus_copy": gain,
        "spearman_minus_copy_cells": n_gain,
    }


def report(result: dict, held_in_names: str) -> str:
    """The comparison as printed: a row a cell, then the two rank correlations."""
    head = f"{'cell':<10} {'alpha':>5} {'held-in':>8} {'- copy':>8} {'unseen':>8} {'- copy':>8}"
    lines = [
        f"search score vs payoff: {result['steps']}-step child on the held-in {held_in_names} "
        "(fg/bg mIoU) vs 4-epoch video training on the unseen sequences (J&F)",
        head,
        "-" * len(head),
    ]
    for c in result["cells"]:
        lines.append(
            f"{c['name']:<10} {c['alpha']:>5} {figure(c['held_in']):>8} "
            f"{figure(c['held_in_minus_copy'], '+.4f'):>8} {figure(c['unseen']):>8} "
            f"{figure(c['unseen_minus_copy'], '+.4f'):>8}"
        )
    lines.append(
        f"Spearman: quality {figure(result['spearman_quality'], '.3f')} over "
        f"{result['spearman_quality_cells']} cells, gain over copy "
        f"{figure(result['spearman_minus_copy'], '.3f')} over "
        f"{result['spearman_minus_copy_cells']} cells"
    )
    return "\n".join(lines)


def measure(
    rows: list[dict], run: Path, records: list[dict], seed: int, workers: int, done: Path
) -> dict:
    """Train (or read back from ``done``) each row's held-in child and compare."""
    jobs = held_in_jobs(rows, run, seed)
    qualities = run_jobs(jobs, workers, done)
    steps = jobs[0][2] if jobs else run_config(run).child_steps
    return {**compare(rows, qualities, held_in_copy(records)), "steps": steps}
