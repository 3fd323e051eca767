"""The latency table: a cell's prediction is the sum of its parts, a built table holds every
part the space needs, and a run folder's table is reused on the same device and timed again
(saying why) on another one or for another network."""

from __future__ import annotations

import json

import pytest
import torch

import nas.latency as latency
from nas.latency import REFERENCE_NETWORKS, TablePlan, cell_parts, ensure_table, predict
from nas.models.config import NetConfig
from search_spaces.genotype import Genotype, Node, copy_genotype
from search_spaces.space import SearchSpace

CELL = Genotype(
    alpha=4,
    beta="1/8",
    fusion="time_to_channel",
    nodes=(Node((1, 0), ("sep3x3", "conv1x1")), Node((2, 0), ("warp", "none"))),
    output="concat",
)
"""Reads the fused fast features (node 0) and the fast ones (node 1's warp); two leaves."""

TINY = NetConfig(width_mult=0.25, output_stride=8, deep_channels=16, head_hidden=16)


def table_for(*genotypes: Genotype, factor: float = 2.0) -> dict:
    """A table in which every part the genotypes run takes a distinct time."""
    names = sorted({p for g in genotypes for parts in vars(cell_parts(g)).values() for p in parts})
    return {"entries": {n: float(i + 1) for i, n in enumerate(names)}, "cell_factor": factor}


def test_a_cell_is_predicted_from_its_parts():
    table = table_for(CELL)
    e = table["entries"]
    got = predict(table, CELL)
    assert got.key_ms == e["static"] + e["overhead/key/fast"] + e["fast/1/8"] + e["proj/1/8"]
    outside = ("head", "overhead/step/fast", "normalize", "fast/1/8", "buffer/1/8/4", "proj/1/8")
    cell = ("op/sep3x3", "op/conv1x1", "op/warp", "op/none", "add", "add", "concat/2")
    assert got.nonkey_ms == pytest.approx(
        sum(e[p] for p in outside)
        + e["fusion/time_to_channel/1/8/4"]
        + 2.0 * sum(e[p] for p in cell)
    )
    assert got.per_frame_ms == pytest.approx((got.key_ms + 3 * got.nonkey_ms) / 4)


def test_a_cell_that_reads_only_the_slow_state_runs_no_fast_part():
    copy = copy_genotype(alpha=8, beta="1/2", n_nodes=2)
    parts = cell_parts(copy)
    assert parts.key == ["static", "overhead/key/slow"]
    assert parts.step == ["head", "overhead/step/slow"]
    assert parts.cell == ["op/skip", "op/none", "add", "op/skip", "op/none", "add"]
    with pytest.raises(KeyError, match="op/skip"):
        predict({"entries": {"static": 1.0}, "cell_factor": 1.0}, copy)


def test_a_node_the_output_does_not_depend_on_adds_no_part():
    """Node 0 is read by tdiff alone: its ops and sum are not run, nor is the fusion only
    node 0 read."""
    nodes = (Node((1, 1), ("conv3x3", "sep3x3")), Node((3, 2), ("tdiff", "warp")))
    parts = cell_parts(Genotype(4, "1/4", "time_to_channel", nodes, "sum"))
    assert parts.cell == ["op/tdiff", "op/warp", "add"]
    assert not any(p.startswith("fusion/") for p in parts.step)


def test_a_built_table_holds_every_part_of_the_space(monkeypatch):
    monkeypatch.setattr(latency, "PASSES", 1)
    monkeypatch.setattr(latency, "SECONDS_PER_PASS", 1e-4)
    table = latency.build_table(TINY, 3, (32, 32), 3, torch.device("cpu"))
    assert table["cell_factor"] > 0 and all(v >= 0 for v in table["entries"].values())
    space = SearchSpace(3)
    for seed in range(20):
        got = predict(table, space.sample(seed))
        assert got.key_ms >= table["entries"]["static"] and got.nonkey_ms > 0


def test_a_busy_machine_cannot_blow_up_the_calibration():
    """Reference networks slowed by other work: their terms are clamped, with a warning."""
    networks = {path: make(2) for path, make in REFERENCE_NETWORKS.items()}
    names = table_for(CELL, *networks.values())["entries"]
    parts = [n for n in names if not n.startswith("overhead/")]
    plan = TablePlan({}, parts, [CELL], networks)
    measured = dict.fromkeys(parts, 1.0)
    steady = {"network/key/slow": 1.1, "network/step/slow": 2.0 + 6 * 1.0 * 1.2}
    steady.update({"network/key/fast": 3.2, "network/step/fast": 9.0})
    measured.update(steady, **{"network/step/cell0": 6.0 + 2.0 * 7})  # factor 2: steady
    table = plan.table(measured)
    assert table["warnings"] == [] and table["cell_factor"] == pytest.approx(2.0)
    assert table["entries"]["overhead/key/fast"] == pytest.approx(0.2)
    measured["network/key/fast"] = 150.0  # the key step of the reference: 50x its parts
    measured["network/step/cell0"] = 6.0 + 7 * 4.6
    table = plan.table(measured)
    assert table["entries"]["overhead/key/fast"] == pytest.approx(0.5 * 3.0)
    assert table["cell_factor"] == 2.5
    assert len(table["warnings"]) == 2 and "overhead/key/fast measured 147" in table["warnings"][0]


@pytest.fixture
def fake_timing(monkeypatch):
    """No timing: build_table counts its calls; the device's name is settable."""
    calls = []
    device = {"name": "CPU A, 1 thread"}

    def build(net, num_classes, resolution, n_nodes, device_):
        calls.append(resolution)
        return {"entries": {"static": 10.0 + len(calls)}, "cell_factor": 1.0, "warnings": []}

    monkeypatch.setattr(latency, "build_table", build)
    monkeypatch.setattr(latency, "device_name", lambda _: device["name"])
    return calls, device


def test_a_run_folder_table_is_reused_on_its_device_and_rebuilt_elsewhere(tmp_path, fake_timing):
    calls, device = fake_timing
    logs: list[str] = []
    table = ensure_table(tmp_path, TINY, 3, (32, 48), 4, log=logs.append)
    saved = json.loads((tmp_path / "latency.json").read_text())
    assert saved["device"] == "CPU A, 1 thread" and saved["entries"] == {"static": 11.0}
    assert saved["setting"]["resolution"] == [32, 48] and "build_seconds" in saved
    assert ensure_table(tmp_path, TINY, 3, (32, 48), 4, log=logs.append) == table  # resumed
    assert len(calls) == 1 and "reusing" in logs[-1]
    device["name"] = "CPU B, 2 threads"
    rebuilt = ensure_table(tmp_path, TINY, 3, (32, 48), 4, log=logs.append)
    assert len(calls) == 2 and rebuilt["device"] == "CPU B, 2 threads"
    assert "measured on CPU A, 1 thread, this search runs on CPU B, 2 threads" in logs[-2]
    ensure_table(tmp_path, TINY, 3, (64, 96), 4, log=logs.append)  # another resolution
    assert calls == [(32, 48), (32, 48), (64, 96)] and "another network" in logs[-2]


def test_a_slow_machine_times_fewer_passes(monkeypatch):
    calls = []
    jobs = {"job": (lambda: calls.append(1), ())}
    monkeypatch.setattr(latency, "MIN_REPEATS", 3)
    monkeypatch.setattr(latency, "MAX_REPEATS", 3)
    assert latency.time_jobs(jobs, torch.device("cpu"))["job"] >= 0
    assert len(calls) == 4 + 5 * (1 + 3)  # the probe, then 5 passes of a warm-up and 3 runs
    calls.clear()
    monkeypatch.setattr(latency, "MAX_SECONDS", 0.0)  # the first pass took too long
    latency.time_jobs(jobs, torch.device("cpu"))
    assert len(calls) == 4 + 1 + 3
