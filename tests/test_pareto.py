"""The front of a search: dominance, ties, failed children left out, pareto.json and front.png
kept up to date by the run log, and the front's records read back from a run folder."""

from __future__ import annotations

import json
import math

import pytest

from nas.pareto import front_records, pareto_front
from nas.records import RunLog
from search_spaces.genotype import copy_genotype

NODES = {name: i + 1 for i, name in enumerate(("a1", "a22", "b", "c", "f", "n", "g"))}
"""Each name's own genotype (a copy cell of that many nodes)."""


def record(name: str, quality, gflops, latency=None, alpha=4, status="ok", **extra) -> dict:
    """A finished child of genotype ``name`` (see NODES)."""
    genotype = copy_genotype(alpha, "1/4", n_nodes=NODES[name]).to_dict()
    return {
        "proposal_id": name,
        "genotype": genotype,
        "status": status,
        "quality": quality,
        "gflops": gflops,
        "latency_ms": latency,
        "reward": quality,
        "device_seconds": 1.0,
        **extra,
    }


def ids(records: list[dict]) -> list[str]:
    return [r["proposal_id"] for r in records]


def test_dominance_needs_one_strict_improvement():
    def front(*points):
        return ids(pareto_front(record(n, q, c) for n, (q, c) in zip(NODES, points)))

    assert front((0.5, 1.0), (0.4, 2.0)) == ["a1"]  # better on both
    assert front((0.5, 1.0), (0.5, 2.0)) == front((0.5, 1.0), (0.4, 1.0)) == ["a1"]  # on one
    assert front((0.5, 1.0), (0.6, 2.0)) == ["a1", "a22"]  # a trade-off
    assert front((0.5, 1.0), (0.5, 1.0)) == ["a1", "a22"]  # a tie: neither dominates


def test_the_front_keeps_ties_leaves_out_failed_and_incomplete_children():
    records = [
        record("b", 0.40, 2.0, 8.0),  # dominated by a1 on both costs
        record("a1", 0.50, 1.0, 5.0),
        record("a22", 0.50, 1.0, 5.0),  # another genotype tied with a1: both stay
        record("c", 0.60, 3.0, 6.0),
        record("f", 0.90, 0.1, 0.1, status="failed"),  # would dominate all: left out
        record("n", math.nan, 0.2, 0.2),  # no quality: left out
        record("g", 0.45, 0.5),  # no latency: on the GFLOPs front only
    ]
    assert ids(pareto_front(records, "gflops")) == ["g", "a1", "a22", "c"]
    assert ids(pareto_front(records, "latency")) == ["a1", "a22", "c"]


def test_one_record_per_genotype_on_the_front():
    first, again = record("a1", 0.5, 1.0), record("a1", 0.5, 1.0)
    again["proposal_id"] = "a1-again"
    assert ids(pareto_front([first, again, record("c", 0.6, 2.0)])) == ["a1", "c"]


def test_the_run_log_rewrites_pareto_json_and_front_png_as_children_finish(tmp_path):
    log = RunLog(tmp_path)
    baselines = dict(copy_quality=0.45, copy_gflops=0.3, copy_latency_ms=2.0)
    statics = dict(static_quality=0.5, static_gflops=1.0, static_latency_ms=9.0)
    log.append(record("a1", 0.50, 1.0, 5.0, **baselines, **statics))
    first = json.loads((tmp_path / "pareto.json").read_text())
    assert first["children"] == 1 and ids(first["fronts"]["gflops"]) == ["a1"]
    log.append(record("c", 0.60, 0.5, 4.0, alpha=8, **baselines, **statics))
    log.append(record("b", 0.1, 0.1, status="failed"))
    saved = json.loads((tmp_path / "pareto.json").read_text())
    assert saved["children"] == 3
    assert ids(saved["fronts"]["gflops"]) == ids(saved["fronts"]["latency"]) == ["c"]
    assert set(saved["fronts"]["gflops"][0]) >= {"genotype", "quality", "gflops", "latency_ms"}
    png = (tmp_path / "front.png").read_bytes()
    assert png.startswith(b"\x89PNG") and len(png) > 5000


def test_front_records_reads_the_run_folder_with_its_own_cost(tmp_path):
    (tmp_path / "search.json").write_text(json.dumps({"cost": "latency"}))
    lines = [record("a1", 0.5, 1.0, 5.0), record("c", 0.6, 3.0, 4.0), record("g", 0.7, 0.5)]
    (tmp_path / "trials.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))
    assert ids(front_records(tmp_path)) == ["c"]  # g has no latency
    assert ids(front_records(tmp_path, "gflops")) == ["g"]
    assert front_records(tmp_path)[0]["genotype"] == lines[1]["genotype"]  # whole records
    with pytest.raises(ValueError, match="cost must be one of"):
        front_records(tmp_path, "watts")
    (tmp_path / "trials.jsonl").write_text(json.dumps(record("f", 0.5, 1.0, status="failed")))
    with pytest.raises(ValueError, match="no finished child"):
        front_records(tmp_path)


def test_a_child_the_copy_baseline_or_the_static_network_beats_is_off_the_front():
    """Copy at alpha 2 (0.60 at 0.5 GFLOPs) beats b (0.58 at 0.6) though no child does;
    the static network (0.70 at 1.0) beats c (0.65 at 1.2); a1 and g beat both baselines."""
    base = {"copy_quality": 0.60, "copy_gflops": 0.5, "static_quality": 0.70}
    records = [
        record("a1", 0.55, 0.3, alpha=8, copy_quality=0.50, copy_gflops=0.2, static_gflops=1.0),
        record("b", 0.58, 0.6, alpha=2, **base, static_gflops=1.0),
        record("g", 0.62, 0.7, alpha=2, **base, static_gflops=1.0),
        record("c", 0.65, 1.2, alpha=2, **base, static_gflops=1.0),
    ]
    assert ids(pareto_front(records)) == ["a1", "g"]
    without = [{k: v for k, v in r.items() if k != "copy_gflops"} for r in records]
    assert ids(pareto_front(without)) == ["a1", "b", "g"]  # no copy cost recorded: b stays
