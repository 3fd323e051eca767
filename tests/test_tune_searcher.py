"""ControllerSearcher: the status rules, idempotency, JSON save/restore, and a real Tuner run
with a failing, a NaN and an inf trial."""

from __future__ import annotations

import math
import os
import sys

os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")  # bind 127.0.0.1 only

import pytest  # noqa: E402
from ray import cloudpickle, tune  # noqa: E402
from ray.tune.search import Searcher  # noqa: E402

from controllers import MemoizedController, make_controller  # noqa: E402
from controllers.tune import ControllerSearcher  # noqa: E402
from search_spaces.space import SearchSpace  # noqa: E402

SPACE = SearchSpace()


def searcher(**kwargs) -> ControllerSearcher:
    return ControllerSearcher(make_controller("ppo", SPACE, 0, batch_size=2), **kwargs)


def test_outcome_rules():
    s = searcher(max_iterations=3)
    assert s.outcome({"reward": 0.5, "training_iteration": 3}, False) == (0.5, "ok")
    assert s.outcome({"reward": 0.4, "training_iteration": 1}, False) == (0.4, "stopped-early")
    assert s.outcome({"reward": 0.4, "stopped_early": True}, False) == (0.4, "stopped-early")
    for bad in ({"reward": math.nan}, {"reward": math.inf}, {"reward": "x"}, {}, None):
        assert s.outcome(bad, False) == (0.0, "failed")
    assert s.outcome({"reward": 0.5}, True) == (0.0, "failed")
    assert searcher(mode="min").outcome({"reward": 0.5}, False) == (-0.5, "ok")


def test_suggest_complete_idempotent_finished_and_restore(tmp_path):
    s = searcher(max_trials=5)
    configs = {t: s.suggest(t) for t in "abcd"}
    assert set(configs["a"]) >= {"genotype", "tokens", "proposal_id", "log_probs"}
    s.on_trial_complete("a", {"reward": 0.5})
    s.on_trial_complete("a", {"reward": 0.9})  # a second call is ignored
    s.on_trial_complete("b", {"reward": math.nan})
    s.on_trial_complete("zz", {"reward": 1.0})  # unknown trial: ignored
    assert s.completed["a"]["reward"] == 0.5 and s.completed["b"]["status"] == "failed"
    assert s.controller.n_told == 2 and s.controller.n_updates == 1

    s.save(str(tmp_path / "searcher.json"))
    restored = searcher()
    restored.restore(str(tmp_path / "searcher.json"))
    assert restored.suggest("c") == configs["c"]  # in flight before the save
    for t in ("c", "d"):
        s.on_trial_complete(t, {"reward": 0.25}, error=t == "d")
        restored.on_trial_complete(t, {"reward": 0.25}, error=t == "d")
    assert restored.suggest("e") == s.suggest("e")  # same proposal after an update
    assert s.suggest("f") == restored.suggest("f") == Searcher.FINISHED


def trainable(config: dict) -> None:
    """Reward from the tokens; proposal 1 raises, 2 reports NaN, 3 reports inf."""
    index = int(config["proposal_id"].rsplit("-", 1)[1])
    if index == 1:
        raise RuntimeError("child diverged")
    reward = {2: math.nan, 3: math.inf}.get(index, sum(config["tokens"]) / 100)
    for step in range(2):
        tune.report({"reward": reward + step / 100})


@pytest.fixture
def ray_workers(ray_session):
    """The suite's shared Ray session (conftest), with this module shipped by value."""
    cloudpickle.register_pickle_by_value(sys.modules[__name__])  # workers cannot import tests
    yield


@pytest.mark.ray
def test_real_tuner_survives_failed_nan_and_inf(ray_workers, tmp_path):
    controller = MemoizedController(make_controller("ppo", SPACE, 0, batch_size=2))
    search = ControllerSearcher(controller, max_iterations=2)
    tuner = tune.Tuner(
        trainable,
        tune_config=tune.TuneConfig(search_alg=search, num_samples=6, max_concurrent_trials=2),
        run_config=tune.RunConfig(storage_path=str(tmp_path), verbose=0),
    )
    results = tuner.fit()
    assert len(results) == 6 and len(results.errors) == 1

    by_proposal = {c["proposal_id"]: c for c in search.completed.values()}
    assert len(by_proposal) == 6 and controller.n_told == 6 and not search.proposals
    statuses = {p: by_proposal[f"ppo-0-{p}"]["status"] for p in range(6)}
    assert statuses == {0: "ok", 1: "failed", 2: "failed", 3: "failed", 4: "ok", 5: "ok"}
    assert controller.inner.n_updates == 3

    search.save(str(tmp_path / "searcher.json"))
    restored = ControllerSearcher(
        MemoizedController(make_controller("ppo", SPACE, 0, batch_size=2))
    )
    restored.restore(str(tmp_path / "searcher.json"))
    assert restored.state_dict() == search.state_dict()
    assert restored.suggest("next") == search.suggest("next")
