"""Controllers: learning on a bandit, exact resume, asynchronous tells, failures, the memo."""

from __future__ import annotations

import itertools
import json
import math

import numpy as np
import pytest

from controllers import (
    PPO,
    Controller,
    MemoizedController,
    RegularizedEvolution,
    make_controller,
)
from controllers.base import effective_reward
from controllers.surrogate import Surrogate
from search_spaces.space import SearchSpace

SPACE = SearchSpace()
FAST = {  # small settings so each controller reaches its learning path within a few asks
    "ppo": {"batch_size": 4},
    "random": {},
    "tpe": {"n_startup_trials": 4},
    "evolution": {"population_size": 6, "sample_size": 3},
}


def build(name: str, seed: int = 0) -> Controller:
    if name.startswith("memo-"):
        return MemoizedController(build(name[5:], seed))
    return make_controller(name, SPACE, seed, **FAST[name])


def drive(controller: Controller, reward_fn, steps: int, in_flight: int = 3) -> list:
    """Ask/tell with ``in_flight`` proposals outstanding, told newest first (out of order)."""
    outstanding, asked = [], []
    for _ in range(steps):
        while len(outstanding) < in_flight:
            outstanding.append(controller.ask())
            asked.append(outstanding[-1])
        proposal = outstanding.pop()
        controller.tell(proposal, reward_fn(proposal.tokens), "ok")
    return asked


def test_surrogate_optimum_is_exact():
    space = SearchSpace(n_nodes=1, ops=("none", "skip", "conv3x3"))
    for seed in range(3):
        surrogate = Surrogate(space, seed)
        grid = itertools.product(*[range(len(d.choices)) for d in space.decisions])
        best = max(grid, key=surrogate.raw)
        assert list(best) == surrogate.optimum
        assert surrogate(best) == pytest.approx(1.0)


def test_ppo_learns_a_bandit():
    """Reward = share of decisions at their best token; the best genotype must reach
    probability >= 0.5 within 50 updates of 10 samples (default config)."""
    rng = np.random.default_rng(0)
    best = [int(rng.integers(len(d.choices))) for d in SPACE.decisions]
    ppo = PPO(SPACE, seed=0)
    assert ppo.config.batch_size == 10
    for _ in range(50):
        for _ in range(ppo.config.batch_size):
            p = ppo.ask()
            ppo.tell(p, float(np.mean(np.array(p.tokens) == best)), "ok")
        if math.exp(ppo.log_prob(best)) >= 0.5:
            break
    assert math.exp(ppo.log_prob(best)) >= 0.5, ppo.n_updates
    assert ppo.n_updates <= 50


def test_ppo_log_probs_are_the_sampling_policy_and_masked():
    ppo = PPO(SPACE, seed=1)
    for _ in range(20):
        p = ppo.ask()
        assert len(p.log_probs) == len(SPACE)
        assert sum(p.log_probs) == pytest.approx(ppo.log_prob(p.tokens), abs=1e-4)
        assert all(t < len(d.choices) for t, d in zip(p.tokens, SPACE.decisions))
    # untrained heads are zero: each decision starts uniform over its valid choices
    assert p.log_probs == pytest.approx([-math.log(len(d.choices)) for d in SPACE.decisions])


@pytest.mark.parametrize(
    "name", ["ppo", "random", "tpe", "evolution", "memo-ppo", "memo-evolution"]
)
def test_resume_gives_the_uninterrupted_proposals(name, tmp_path):
    reward_fn = Surrogate(SPACE, 0)
    first = build(name)
    drive(first, reward_fn, steps=9)  # 11 asked, 9 told; mid-batch for ppo
    first.save(tmp_path / "state.json")
    state = json.loads((tmp_path / "state.json").read_text())  # plain JSON, no NaN
    assert state["n_asked"] == 11 and len(state["pending"]) == 2

    resumed = build(name, seed=123)  # the state restores the seed too
    resumed.load(tmp_path / "state.json")
    for p_first, p_resumed in zip(first.pending.values(), resumed.pending.values()):
        assert p_first.tokens == p_resumed.tokens
    # both tell the two in-flight proposals, then go on: every proposal must match
    for controller in (first, resumed):
        for p in list(controller.pending.values()):
            controller.tell(p, reward_fn(p.tokens), "ok")
    a = drive(first, reward_fn, steps=12)
    b = drive(resumed, reward_fn, steps=12)
    assert [p.id for p in a] == [p.id for p in b]
    assert [p.tokens for p in a] == [p.tokens for p in b]
    assert [p.log_probs for p in a] == [p.log_probs for p in b]


def test_ppo_state_is_cheap_to_save(tmp_path):
    ppo = build("ppo")
    drive(ppo, Surrogate(SPACE, 0), steps=10)
    ppo.save(tmp_path / "ppo.json")
    assert (tmp_path / "ppo.json").stat().st_size < 1_000_000


def test_out_of_order_tells_and_told_once():
    ppo = build("ppo")  # batch of 4
    proposals = [ppo.ask() for _ in range(6)]
    for p in reversed(proposals[:4]):
        ppo.tell(p, 0.5, "ok")
    assert ppo.n_updates == 1
    extra = ppo.ask()  # sampled by the updated policy, told among older ones
    for p in (proposals[5], extra, proposals[4]):
        ppo.tell(p, 0.1, "ok")
    assert len(ppo.buffer) == 3 and not ppo.pending
    with pytest.raises(KeyError):
        ppo.tell(proposals[0], 0.5, "ok")


def test_failure_rewards():
    assert effective_reward(0.7, "ok", 0.0) == 0.7
    assert effective_reward(0.4, "stopped-early", 0.0) == 0.4
    assert effective_reward(0.9, "failed", -1.0) == -1.0
    assert effective_reward(math.nan, "ok", -1.0) == -1.0
    assert effective_reward(math.inf, "stopped-early", -1.0) == -1.0
    with pytest.raises(ValueError, match="status"):
        effective_reward(0.5, "crashed", 0.0)


@pytest.mark.parametrize("name", ["ppo", "random", "tpe", "evolution"])
def test_every_controller_survives_failed_nan_and_inf(name, tmp_path):
    controller = make_controller(name, SPACE, 0, failure_reward=-0.5, **FAST[name])
    outcomes = [
        (math.nan, "ok"),
        (math.inf, "ok"),
        (-math.inf, "ok"),
        (0.3, "failed"),
        (0.6, "stopped-early"),
        (0.8, "ok"),
    ] * 2
    for reward, status in outcomes:
        controller.tell(controller.ask(), reward, status)
    controller.save(tmp_path / "state.json")  # no NaN reached the state
    controller.ask()
    if isinstance(controller, RegularizedEvolution):
        assert [r for _, r in controller.population] == [-0.5] * 4 + [0.6, 0.8]
    if isinstance(controller, PPO):
        assert math.isfinite(controller.baseline) and controller.n_updates == 3


class Scripted(Controller):
    """Proposes a fixed cycle of token lists; records what it is told."""

    name = "scripted"

    def __init__(self, cycle: list[list[int]]):
        super().__init__(SPACE, 0)
        self.cycle, self.told = cycle, []

    def _propose(self):
        return self.cycle[self.n_asked % len(self.cycle)], [0.0] * len(SPACE)

    def _observe(self, proposal, reward):
        self.told.append((proposal.tokens, reward))


def test_memo_answers_repeats_without_training():
    a, b, c = (SPACE.sample_tokens(np.random.default_rng(s)) for s in range(3))
    memo = MemoizedController(Scripted([a, b, a, a, b, c]))
    trained = []

    def train(p):
        trained.append(p.tokens)
        return 0.25 * len(trained)

    first = memo.ask()  # a
    second = memo.ask()  # b
    memo.tell(first, train(first), "ok")
    third = memo.ask()  # a, a answered (0.25); b parked behind the in-flight b; then c
    assert third.tokens == c and memo.n_repeats == 3
    memo.tell(second, train(second), "ok")  # the parked b is told too
    memo.tell(third, train(third), "ok")
    assert trained == [a, b, c]
    told = memo.inner.told
    assert sorted(r for _, r in told) == [0.25, 0.25, 0.25, 0.5, 0.5, 0.75]
    assert memo.measurements(first.genotype) == [0.25]


def test_memo_cap_and_reevaluate():
    a = SPACE.sample_tokens(np.random.default_rng(0))
    memo = MemoizedController(Scripted([a]), max_repeats=5)
    memo.tell(memo.ask(), 0.5, "ok")
    again = memo.ask()  # only repeats exist: after 5 answered, the repeat comes back
    assert again.tokens == a and memo.n_repeats == 5
    noisy = MemoizedController(Scripted([a]), reevaluate=True)
    for reward in (0.5, 0.7):
        noisy.tell(noisy.ask(), reward, "ok")
    assert noisy.measurements(SPACE.decode(a)) == [0.5, 0.7] and noisy.n_repeats == 0


def test_make_controller_names():
    for name in ("ppo", "random", "tpe", "evolution"):
        assert make_controller(name, SPACE, 0).name == name
    with pytest.raises(ValueError, match="unknown controller"):
        make_controller("bayes", SPACE, 0)


def test_state_from_another_controller_is_refused():
    with pytest.raises(ValueError, match="controller"):
        build("random").load_state_dict(build("evolution").state_dict())


@pytest.mark.parametrize("name", ["random", "ppo"])
def test_a_state_saved_on_another_output_set_is_refused(name):
    narrow = make_controller(name, SearchSpace(outputs=("residual",)), 0, **FAST[name])
    narrow.ask()  # a pending proposal whose tokens mean other cells in the full space
    with pytest.raises(ValueError, match="state is for space"):
        build(name).load_state_dict(narrow.state_dict())
    with pytest.raises(ValueError, match="state is for space"):
        narrow.load_state_dict(build(name).state_dict())
    again = make_controller(name, SearchSpace(outputs=("residual",)), 0, **FAST[name])
    again.load_state_dict(json.loads(json.dumps(narrow.state_dict())))
    assert [p.genotype.output for p in again.pending.values()] == ["residual"]


def test_evolution_mutates_one_decision_of_a_population_member():
    evo = build("evolution")  # P = 6, S = 3
    reward_fn = Surrogate(SPACE, 0)
    for _ in range(6):  # random until the population is full
        p = evo.ask()
        evo.tell(p, reward_fn(p.tokens), "ok")
    for _ in range(20):
        members = [tokens for tokens, _ in evo.population]
        p = evo.ask()
        changed = [i for i, lp in enumerate(p.log_probs) if lp != 0.0]
        assert len(changed) == 1
        parent = [m for m in members if sum(a != b for a, b in zip(m, p.tokens)) == 1]
        assert parent and parent[0][changed[0]] != p.tokens[changed[0]]
        evo.tell(p, reward_fn(p.tokens), "ok")
    assert len(evo.population) == 6
