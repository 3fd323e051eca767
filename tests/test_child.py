"""A search child on the tiny prepared run's teacher and caches: a step learns (and moves only
what a child trains), a diverging child stops with ChildDiverged, and ``run`` reports once
per round."""

from __future__ import annotations

import math

import pytest
import torch

from nas.cache import FeatureCache
from nas.child import ChildDiverged, ChildRun
from nas.config import ChildConfig
from nas.latency import cell_parts, predict
from nas.reward import reward
from search_spaces.genotype import Genotype, copy_genotype
from tests.fixtures_data import CELL

TRAINED = ("cell.", "fast.proj.", "fast.fusion.", "step_head.")
"""What a child trains: the cell, the fast projection and fusion, the non-key head. The
teacher's network and the fast encoder (whose outputs are cached) stay frozen."""


def child(prepared_run, cost: str = "gflops", latency_table: dict | None = None, **cfg):
    cache = prepared_run / "cache"
    return ChildRun(
        Genotype.load(CELL),
        prepared_run / "teacher",
        FeatureCache(cache / "train"),
        FeatureCache(cache / "val"),
        ChildConfig(**{"steps": 4, "rounds": 2, "batch_size": 4, **cfg}),
        seed=0,
        cost=cost,
        latency_table=latency_table,
    )


def weights(run: ChildRun) -> dict[str, torch.Tensor]:
    return {name: p.detach().clone() for name, p in run.net.named_parameters()}


def test_a_step_lowers_the_loss_of_its_batch_and_moves_only_what_a_child_trains(prepared_run):
    run = child(prepared_run)
    run.train_steps(0)  # the training modes, no step: the frozen parts stay in eval mode
    batch = run.sample_batch()
    before = weights(run)
    loss = run.train_on(batch)
    with torch.no_grad():
        after = float(run.batch_loss(batch))
    assert math.isfinite(loss) and after < loss
    moved = {name for name, p in run.net.named_parameters() if not torch.equal(p, before[name])}
    trainable = {name for name, p in run.net.named_parameters() if p.requires_grad}
    assert moved and moved <= trainable
    assert all(name.startswith(TRAINED) for name in trainable)
    assert any(name.startswith("cell.") for name in moved)
    assert any(name.startswith("step_head.") for name in moved)


def test_a_nan_in_the_batch_raises_before_any_weight_moves(prepared_run):
    run = child(prepared_run)
    run.train_steps(0)
    batch = run.sample_batch()
    batch["slow"][0, 0, 0, 0] = math.nan
    before = weights(run)
    with pytest.raises(ChildDiverged, match="nan at step 0"):
        run.train_on(batch)
    assert all(torch.equal(p, before[name]) for name, p in run.net.named_parameters())


def test_a_huge_learning_rate_diverges(prepared_run):
    run = child(prepared_run, lr=1e30, steps=6, rounds=1)
    reports = []
    with pytest.raises(ChildDiverged, match="loss (nan|inf|-inf) at step [1-5]"):
        run.run(reports.append)
    assert reports == []  # nothing reported for a child that never finished its round


def test_run_reports_once_per_round(prepared_run):
    reports = []
    final = child(prepared_run).run(reports.append)
    assert [(r["round"], r["steps"]) for r in reports] == [(1, 2), (2, 4)]
    for r in reports:
        assert 0.0 <= r["quality"] <= 1.0 and r["gflops"] > 0
        assert math.isfinite(r["reward"]) and 0.0 <= r["reward"] <= r["quality"]
    assert final == reports[-1]


def test_a_latency_cost_rewards_the_predicted_latency(prepared_run):
    cell = Genotype.load(CELL)
    copy = copy_genotype(cell.alpha, cell.beta, len(cell.nodes))
    names = {p for g in (cell, copy) for parts in vars(cell_parts(g)).values() for p in parts}
    table = {"entries": dict.fromkeys(names, 1.0), "cell_factor": 1.0}  # static: 1 ms
    with pytest.raises(ValueError, match="latency table"):
        child(prepared_run, cost="latency")
    result = child(prepared_run, cost="latency", latency_table=table).evaluate()
    assert result["latency_ms"] == predict(table, cell).per_frame_ms > 1.0
    assert result["copy_latency_ms"] == predict(table, copy).per_frame_ms < result["latency_ms"]
    assert (result["static_latency_ms"], result["target_latency_ms"]) == (1.0, 0.4)
    assert result["reward"] == reward(result["quality"], result["latency_ms"], 0.4)
    assert 0 < result["copy_gflops"] < result["gflops"]
    by_gflops = child(prepared_run, latency_table=table).evaluate()  # the default cost
    assert by_gflops["latency_ms"] == result["latency_ms"]
    assert by_gflops["reward"] == reward(
        by_gflops["quality"], by_gflops["gflops"], by_gflops["target_gflops"]
    )
