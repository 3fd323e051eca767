"""Controllers propose genotypes and learn from their rewards; all share ``Controller``."""

from __future__ import annotations

from typing import Any

from controllers.base import STATUSES, Controller, Proposal
from controllers.evolution import RegularizedEvolution
from controllers.memo import MemoizedController
from controllers.ppo import PPO, PPOConfig
from controllers.random_search import RandomSearch
from controllers.tpe import TPE
from search_spaces.space import SearchSpace

CONTROLLERS: dict[str, type[Controller]] = {
    "ppo": PPO,
    "random": RandomSearch,
    "tpe": TPE,
    "evolution": RegularizedEvolution,
}


def make_controller(name: str, space: SearchSpace, seed: int = 0, **kwargs: Any) -> Controller:
    """A controller by name ("ppo", "random", "tpe", "evolution"); ``kwargs`` go to its class
    (``failure_reward`` for all; PPOConfig fields for ppo; population_size and sample_size
    for evolution; TPESampler arguments for tpe)."""
    if name not in CONTROLLERS:
        raise ValueError(f"unknown controller {name!r}; known {list(CONTROLLERS)}")
    return CONTROLLERS[name](space, seed, **kwargs)


__all__ = [
    "CONTROLLERS",
    "STATUSES",
    "PPO",
    "TPE",
    "Controller",
    "MemoizedController",
    "PPOConfig",
    "Proposal",
    "RandomSearch",
    "RegularizedEvolution",
    "make_controller",
]
