"""The front of a search: the finished children no other child beats on quality and cost.

One reward folds quality and cost together with an exponent the user had to guess; the
front lets them choose. A child dominates another when its quality is at least as high and
its cost at most as high, one of the two strictly. Failed children, and those lacking
either figure (a run from before latency tables has no latency), are left out; children
tied on both figures stay on the front together, one record per genotype. A child the copy
baseline (at any alpha) or the static network dominates is left out too: copying the key
frame's features, or running the static network, is the better choice there. The front is kept
for each cost (per-frame GFLOPs, predicted per-frame latency) in ``pareto.json``, rewritten
as children finish; ``front_records`` gives the records on a run's front, e.g. for export.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from itertools import groupby
from pathlib import Path
from typing import Any

from nas.checkpoint import read_json, write_json
from search_spaces.genotype import Genotype

PARETO_FILE = "pareto.json"
COST_FIELDS = {"gflops": "gflops", "latency": "latency_ms"}
"""Each cost (nas.config.COSTS) and the record field holding it."""
BASELINE_FIELDS = {
    "copy": ("copy_quality", {"gflops": "copy_gflops", "latency": "copy_latency_ms"}),
    "static": ("static_quality", {"gflops": "static_gflops", "latency": "static_latency_ms"}),
}
"""Each baseline's quality field and cost fields, as every child's record holds them (the
copy baseline at the child's alpha, the static network)."""
SUMMARY_FIELDS = (
    "proposal_id",
    "trial_id",
    "genotype",
    "quality",
    "copy_quality",
    "gflops",
    "latency_ms",
    "reward",
    "status",
)
"""What pareto.json keeps of each record on a front."""

Point = tuple[float, float]
"""(quality, cost)."""


def point(record: dict[str, Any], cost: str) -> Point | None:
    """A finished record's (quality, cost), or None for a failed one or a missing figure."""
    if record.get("status") == "failed":
        return None
    values = (record.get("quality"), record.get(COST_FIELDS[cost]))
    return (float(values[0]), float(values[1])) if _finite(*values) else None


def _finite(*values: Any) -> bool:
    return all(isinstance(v, (int, float)) and math.isfinite(v) for v in values)


def baseline_point(record: dict[str, Any], baseline: str, cost: str) -> Point | None:
    """The (quality, cost) of ``baseline`` ("copy" at the record's alpha, or "static") as
    the record holds it, or None."""
    quality_field, cost_fields = BASELINE_FIELDS[baseline]
    values = (record.get(quality_field), record.get(cost_fields[cost]))
    return (float(values[0]), float(values[1])) if _finite(*values) else None


def dominates(a: Point, b: Point) -> bool:
    """``a`` is as good and as cheap as ``b``, and strictly one of the two."""
    return a[0] >= b[0] and a[1] <= b[1] and (a[0] > b[0] or a[1] < b[1])


def pareto_front(records: Iterable[dict[str, Any]], cost: str = "gflops") -> list[dict[str, Any]]:
    """The non-dominated finished records by quality and ``cost`` ("gflops" or "latency"),
    cheapest first; of records with the same genotype, the first in that order. One sweep
    from the cheapest: a record stays when no cheaper one is as good and none of its own
    cost is better (searches of thousands of children redraw the front after each). Then
    a record a baseline dominates (BASELINE_FIELDS, as any record holds them) is dropped."""
    records = list(records)
    points = sorted(
        ((p, r) for r in records if (p := point(r, cost)) is not None),
        key=lambda pr: (pr[0][1], -pr[0][0]),
    )
    front: list[dict[str, Any]] = []
    best = -math.inf  # the best quality of any cheaper record
    for _, group in groupby(points, key=lambda pr: pr[0][1]):
        same_cost = list(group)
        top = same_cost[0][0][0]  # sorted best first within a cost
        if top > best:
            front += [r for (q, _), r in same_cost if q == top]
            best = top
    baselines = {
        b for r in records for name in BASELINE_FIELDS if (b := baseline_point(r, name, cost))
    }
    front = [r for r in front if not any(dominates(b, point(r, cost)) for b in baselines)]
    kept: dict[str, dict[str, Any]] = {}
    for record in front:
        kept.setdefault(Genotype.from_dict(record["genotype"]).to_json(), record)
    return list(kept.values())


def front_summary(records: list[dict[str, Any]]) -> dict[str, Any]:
    """pareto.json: how many children, and each cost's front (a few fields per record)."""
    return {
        "children": len(records),
        "fronts": {
            cost: [{k: r.get(k) for k in SUMMARY_FIELDS} for r in pareto_front(records, cost)]
            for cost in COST_FIELDS
        },
    }


def write_front(out: Path, records: list[dict[str, Any]]) -> None:
    """Rewrite ``out``/pareto.json (atomically) from the records so far."""
    write_json(Path(out) / PARETO_FILE, front_summary(records))


def front_records(
    run: str | Path, cost: str | None = None, warn: Callable[[str], None] | None = None
) -> list[dict[str, Any]]:
    """The whole trials.jsonl records on the front of search folder ``run``, cheapest
    first, for ``cost`` ("gflops" or "latency"; default: the cost its reward used, from
    search.json). ``warn`` hears of torn lines of trials.jsonl (their children are not
    considered). ValueError if no finished child has both figures."""
    from nas.records import read_records  # nas.records draws the front: imported late

    run = Path(run)
    if cost is None:
        cost = read_json(run / "search.json").get("cost", "gflops")
    if cost not in COST_FIELDS:
        raise ValueError(f"cost must be one of {tuple(COST_FIELDS)}, got {cost!r}")
    front = pareto_front(read_records(run / "trials.jsonl", warn), cost)
    if not front:
        raise ValueError(
            f"{run} has no finished child with a quality and {COST_FIELDS[cost]} (none "
            "recorded yet, every child failed, or a run from before latency was recorded)"
        )
    return front
