"""A deterministic stand-in for child training: a reward over the real search space whose
optimum is known exactly, so controllers can be compared in seconds.

``f(tokens) = sum_i u_i[t_i] + sum_{i>0} W_i[t_parent(i), t_i]``: a seeded preference per
decision plus one pairwise interaction between each decision and an earlier "parent"
decision drawn at random (long-range as well as adjacent pairs, so neither a per-decision
method nor a purely sequential one is favoured by construction). The interactions form a
tree, so max-sum dynamic programming gives the exact maximum (and minimum); the reward is
``f`` rescaled to [0, 1] between them. A uniformly random genotype scores about 0.5.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from search_spaces.space import SearchSpace


class Surrogate:
    """Seeded reward over ``space``'s token sequences; ``optimum`` holds the best tokens."""

    def __init__(self, space: SearchSpace, seed: int = 0, interaction_scale: float = 1.0):
        rng = np.random.default_rng(seed)
        self.sizes = [len(d.choices) for d in space.decisions]
        self.unary = [rng.normal(size=n) for n in self.sizes]
        self.parents = [-1] + [int(rng.integers(i)) for i in range(1, len(self.sizes))]
        self.pairwise = {  # decision i > 0: parent token x own token
            i: interaction_scale * rng.normal(size=(self.sizes[self.parents[i]], self.sizes[i]))
            for i in range(1, len(self.sizes))
        }
        self.optimum, self.f_max = self._extremum(np.max, np.argmax)
        _, self.f_min = self._extremum(np.min, np.argmin)

    def raw(self, tokens: Sequence[int]) -> float:
        total = float(self.unary[0][tokens[0]])
        for i in range(1, len(tokens)):
            total += self.unary[i][tokens[i]] + self.pairwise[i][tokens[self.parents[i]], tokens[i]]
        return total

    def __call__(self, tokens: Sequence[int]) -> float:
        """The reward in [0, 1]; 1 only at ``optimum``."""
        return (self.raw(tokens) - self.f_min) / (self.f_max - self.f_min)

    def _extremum(self, reduce, arg) -> tuple[list[int], float]:
        """Max-sum (or min-sum) over the interaction tree: children have larger indices than
        their parents, so one backward pass computes messages, one forward pass decodes."""
        n = len(self.sizes)
        best = [u.copy() for u in self.unary]  # best subtree value given each own token
        choice = [None] * n  # per decision: best own token given each parent token
        for i in range(n - 1, 0, -1):
            table = self.pairwise[i] + best[i][None, :]  # parent token x own token
            choice[i] = arg(table, axis=1)
            best[self.parents[i]] += reduce(table, axis=1)
        tokens = [int(arg(best[0]))] + [0] * (n - 1)
        for i in range(1, n):
            tokens[i] = int(choice[i][tokens[self.parents[i]]])
        return tokens, float(reduce(best[0]))
