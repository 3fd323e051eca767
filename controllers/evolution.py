"""Regularized evolution (Real et al. 2019, "Aging Evolution"): tournament, mutate, age out.

The population is the ``population_size`` most recently *completed* children, oldest first.
While it is not full, asks are uniformly random. Afterwards each ask samples ``sample_size``
members, takes the best as parent and changes one decision to a different valid choice
(validity is per decision: a node's input choices depend on the node). Every tell appends the
child and, once the population is full, removes the oldest: age, not fitness, decides who
dies, which keeps the search from clinging to one lucky early child.
"""

from __future__ import annotations

import math
from collections import deque
from typing import Any

from controllers.base import Controller, Proposal
from search_spaces.space import SearchSpace


class RegularizedEvolution(Controller):
    """``log_probs``: uniform ``-log(len(choices))`` for random asks; for a mutation the
    log-probability of the mutation, ``-log(n_mutable_decisions) - log(len(choices) - 1)``, on
    the mutated decision and 0 elsewhere (the other tokens are copied from the parent).
    Defaults P = 50, S = 10: best of P in {10, 20, 30, 50, 100} on the surrogate at 1000."""

    name = "evolution"

    def __init__(
        self,
        space: SearchSpace,
        seed: int = 0,
        failure_reward: float = 0.0,
        population_size: int = 50,
        sample_size: int = 10,
    ):
        super().__init__(space, seed, failure_reward)
        if population_size < 1 or not 1 <= sample_size <= population_size:
            raise ValueError("need population_size >= 1 and 1 <= sample_size <= population_size")
        self.population_size = population_size
        self.sample_size = sample_size
        self.population: deque[tuple[list[int], float]] = deque()

    def _propose(self) -> tuple[list[int], list[float]]:
        decisions = self.space.decisions
        if len(self.population) < self.population_size:
            tokens = self.space.sample_tokens(self.rng)
            return tokens, [-math.log(len(d.choices)) for d in decisions]
        picks = self.rng.choice(len(self.population), size=self.sample_size, replace=False)
        parent = max((self.population[int(i)] for i in picks), key=lambda member: member[1])[0]
        mutable = [i for i, d in enumerate(decisions) if len(d.choices) > 1]
        i = mutable[int(self.rng.integers(len(mutable)))]
        n = len(decisions[i].choices)
        tokens = list(parent)
        tokens[i] = (tokens[i] + 1 + int(self.rng.integers(n - 1))) % n  # any other choice
        log_probs = [0.0] * len(decisions)
        log_probs[i] = -math.log(len(mutable)) - math.log(n - 1)
        return tokens, log_probs

    def _observe(self, proposal: Proposal, reward: float) -> None:
        self.population.append((list(proposal.tokens), reward))
        if len(self.population) > self.population_size:
            self.population.popleft()

    def state_dict(self) -> dict[str, Any]:
        state = super().state_dict()
        state["population_size"] = self.population_size
        state["sample_size"] = self.sample_size
        state["population"] = [{"tokens": t, "reward": r} for t, r in self.population]
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.population_size = int(state["population_size"])
        self.sample_size = int(state["sample_size"])
        self.population = deque(
            (list(m["tokens"]), float(m["reward"])) for m in state["population"]
        )
