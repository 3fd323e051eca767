"""Random search: each decision uniform and independent; the baseline every method must beat."""

from __future__ import annotations

import math

from controllers.base import Controller, Proposal


class RandomSearch(Controller):
    """Uniform sampling; ``log_probs`` are the uniform ``-log(len(choices))``."""

    name = "random"

    def _propose(self) -> tuple[list[int], list[float]]:
        tokens = self.space.sample_tokens(self.rng)
        return tokens, [-math.log(len(d.choices)) for d in self.space.decisions]

    def _observe(self, proposal: Proposal, reward: float) -> None:
        """Random search learns nothing."""
