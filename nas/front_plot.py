"""front.png: every finished child by quality and cost, the front, and what it must beat.

One panel per cost the records hold (per-frame GFLOPs; predicted per-frame latency). Each
child is a point coloured by its alpha, the front a staircase through its cells; the copy
baseline at each alpha (the key frame's features reused, from the children's own
evaluations) is an x in that alpha's colour, the static network a star: a cell worth
keeping sits above the copy baseline of its alpha.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from nas.pareto import COST_FIELDS, Point, baseline_point, pareto_front, point
from search_spaces.genotype import ALPHAS

AXIS_LABELS = {
    "gflops": "GFLOPs per frame",
    "latency": "latency per frame (ms, predicted on the search's device)",
}


def _baseline(records: list[dict[str, Any]], baseline: str, cost: str) -> Point | None:
    """The first record's (quality, cost) of ``baseline`` ("copy" or "static")."""
    return next((p for r in records if (p := baseline_point(r, baseline, cost))), None)


def draw_panel(ax: Any, records: list[dict[str, Any]], cost: str) -> None:
    """One cost's panel on matplotlib axes ``ax``."""
    for i, alpha in enumerate(ALPHAS):
        mine = [r for r in records if r.get("genotype", {}).get("alpha") == alpha]
        points = [p for r in mine if (p := point(r, cost)) is not None]
        if points:
            ax.scatter(
                [c for _, c in points],
                [q for q, _ in points],
                s=12,
                alpha=0.5,
                color=f"C{i}",
                label=f"alpha {alpha}",
            )
        copy = _baseline(mine, "copy", cost)
        if copy is not None:
            ax.scatter(
                copy[1], copy[0], marker="x", s=70, color=f"C{i}", label=f"copy, alpha {alpha}"
            )
    front = [point(r, cost) for r in pareto_front(records, cost)]
    if front:
        ax.step([c for _, c in front], [q for q, _ in front], where="post", color="k", lw=1)
        ax.scatter(
            [c for _, c in front],
            [q for q, _ in front],
            s=40,
            facecolors="none",
            edgecolors="k",
            label=f"front ({len(front)})",
        )
    static = _baseline(records, "static", cost)
    if static is not None:
        ax.scatter(static[1], static[0], marker="*", s=150, color="k", label="static")
    ax.set_xlabel(AXIS_LABELS[cost])
    ax.set_ylabel("quality (non-key mIoU)")
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="best", fontsize=7)


def draw_front(plt: Any, records: list[dict[str, Any]], path: Path) -> None:
    """Write ``path`` (atomically) with matplotlib's pyplot ``plt`` (the caller imports it:
    see nas.records)."""
    costs = [c for c in COST_FIELDS if any(point(r, c) for r in records)] or ["gflops"]
    fig, axes = plt.subplots(1, len(costs), figsize=(6.5 * len(costs), 4.5), dpi=100, squeeze=False)
    for ax, cost in zip(axes[0], costs):
        draw_panel(ax, records, cost)
    fig.suptitle(f"{len(records)} children: quality against cost")
    fig.tight_layout()
    tmp = path.with_name(f".{path.name}")
    fig.savefig(tmp, format="png")
    plt.close(fig)
    os.replace(tmp, path)
