"""BudgetSearcher without a Ray cluster: Tune's calls (suggest, on_trial_complete) made by
hand. It stops at the budget (finished children's device-seconds, plus those in flight at the
typical child's time) or at max_children, records every finished child once, and resumes with
the children that were in flight proposed again."""

from __future__ import annotations

import json
from pathlib import Path

from ray.tune.search import Searcher

from controllers import MemoizedController, make_controller
from nas.records import RunLog, read_records
from nas.searcher import BudgetSearcher
from search_spaces.space import SearchSpace

FINISHED = Searcher.FINISHED


def make_searcher(out: Path, budget: float = 1000.0, max_children: int = 0) -> BudgetSearcher:
    """As nas.run builds it: a memoized controller, the run folder's log and state file."""
    controller = MemoizedController(make_controller("random", SearchSpace(4), seed=0))
    return BudgetSearcher(
        controller,
        RunLog(out),
        budget,
        out / "searcher.json",
        "random",
        seed=0,
        max_children=max_children,
        max_iterations=2,
    )


def result(seconds: float, reward: float = 0.5) -> dict:
    """What a child reports last: its reward, cost and the device-seconds it used."""
    return {
        "reward": reward,
        "quality": reward,
        "gflops": 1.0,
        "steps": 12,
        "device_seconds": seconds,
        "training_iteration": 2,
    }


def test_no_proposal_once_finished_children_spent_the_budget(tmp_path):
    s = make_searcher(tmp_path, budget=25.0)
    assert all(s.suggest(t) != FINISHED for t in "ab")
    s.on_trial_complete("a", result(10.0))
    s.on_trial_complete("b", result(20.0))  # 30 device-seconds spent of 25
    assert s.budget_left() == -5.0
    assert s.suggest("c") == FINISHED
    assert s.suggest("d") == FINISHED and not s.proposals


def test_children_in_flight_count_at_the_typical_child_time(tmp_path):
    s = make_searcher(tmp_path, budget=100.0)
    for t in "ab":
        s.suggest(t)
    s.on_trial_complete("a", result(10.0))
    s.on_trial_complete("b", result(30.0))  # 40 spent; a typical child takes 20
    # 40 + 20 per child in flight stays under 100 with 0, 1 and 2 in flight; 3 reach it
    assert [s.suggest(t) != FINISHED for t in "cdef"] == [True, True, True, False]
    assert sorted(s.proposals) == ["c", "d", "e"]
    assert s.budget_left() == 60.0  # what is in flight is not spent yet
    s.on_trial_complete("c", result(5.0))  # 45 spent, typical 15, 2 in flight: 75
    assert s.suggest("f") != FINISHED  # asked again once there is room


def test_no_proposal_past_max_children(tmp_path):
    s = make_searcher(tmp_path, max_children=3)
    assert [s.suggest(t) != FINISHED for t in "abcd"] == [True, True, True, False]
    s.on_trial_complete("a", result(1.0))  # 1 finished + 2 in flight: still 3 children
    assert s.suggest("e") == FINISHED
    assert s.budget_left() > 0


def test_each_finished_child_is_recorded_once(tmp_path):
    s = make_searcher(tmp_path)
    configs = {t: s.suggest(t) for t in "abc"}
    s.on_trial_complete("a", result(2.0, reward=0.7))
    s.on_trial_complete("a", result(3.0, reward=0.1))  # Tune may call twice: ignored
    s.on_trial_complete("b", None, error=True)
    s.on_trial_complete("b", result(1.0))
    s.on_trial_complete("zz", result(1.0))  # a trial never suggested here: ignored
    records = read_records(tmp_path / "trials.jsonl")
    assert [r["proposal_id"] for r in records] == [
        configs["a"]["proposal_id"],
        configs["b"]["proposal_id"],
    ]
    a, b = records
    assert (a["trial_id"], a["status"], a["reward"], a["device_seconds"]) == ("a", "ok", 0.7, 2.0)
    assert a["genotype"] == configs["a"]["genotype"] and a["tokens"] == configs["a"]["tokens"]
    assert (b["status"], b["reward"]) == ("failed", None)
    assert s.controller.n_told == 2 and list(s.proposals) == ["c"]
    assert RunLog(tmp_path).records == records  # what a resumed search reads back


def test_resume_proposes_the_children_in_flight_again(tmp_path):
    s = make_searcher(tmp_path)
    configs = {t: s.suggest(t) for t in "abc"}
    s.on_trial_complete("b", result(4.0))
    s.suggest("d")
    s.on_trial_complete("d", result(4.0))
    # killed here: a and c in flight, b and d recorded; start again from the saved state

    again = make_searcher(tmp_path)
    assert again.resume() == 2
    assert again.budget_left() == 1000.0 - 8.0
    reruns = [again.suggest(t) for t in ("x", "y")]  # new trial ids, the same proposals
    assert sorted(c["proposal_id"] for c in reruns) == sorted(
        configs[t]["proposal_id"] for t in "ac"
    )
    assert all(c in (configs["a"], configs["c"]) for c in reruns)
    fresh = again.suggest("z")
    assert fresh["proposal_id"] not in {c["proposal_id"] for c in configs.values()}
    for t in ("x", "y", "z"):
        again.on_trial_complete(t, result(1.0))
    ids = [r["proposal_id"] for r in read_records(tmp_path / "trials.jsonl")]
    assert len(ids) == len(set(ids)) == 5


def test_a_child_recorded_just_before_the_kill_is_not_run_again(tmp_path):
    """trials.jsonl is written before the state: a kill between the two leaves a recorded
    child among those in flight. Resume tells the controller, and does not rerun it."""
    s = make_searcher(tmp_path)
    config = s.suggest("a")
    saved = (tmp_path / "searcher.json").read_text()  # the state while a was in flight
    s.on_trial_complete("a", result(3.0))
    (tmp_path / "searcher.json").write_text(saved)  # the kill: the save after it was lost
    assert config["proposal_id"] in json.dumps(json.loads(saved)["proposals"])

    again = make_searcher(tmp_path)
    assert again.resume() == 0
    assert again.controller.n_told == 1 and not again.controller.pending
    assert again.suggest("b")["proposal_id"] != config["proposal_id"]
    assert len(read_records(tmp_path / "trials.jsonl")) == 1
