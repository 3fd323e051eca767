"""Optuna's TPE through its ask/tell API, one categorical parameter (choice index) per decision.

Resuming rebuilds the study from the recorded trials (``create_trial`` + ``add_trial``, in
ask order, pending ones as RUNNING). So that the rebuilt study proposes exactly what the
uninterrupted one would, the sampler is not left to carry hidden RNG state: every ask uses a
fresh ``TPESampler`` seeded from ``(seed, ask number)``. Its proposal then depends only on the
trial history, which the state records.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import optuna
from optuna.distributions import CategoricalDistribution
from optuna.trial import TrialState, create_trial

from controllers.base import Controller, Proposal
from search_spaces.space import SearchSpace

optuna.logging.set_verbosity(optuna.logging.WARNING)  # one INFO line per trial otherwise


class TPE(Controller):
    """Optuna 5 defaults (multivariate TPE, constant liar for trials in flight); failed
    children are told as COMPLETE with ``failure_reward``, like every controller here.
    ``log_probs`` are the uniform ``-log(len(choices))``: TPE exposes no proposal density."""

    name = "tpe"

    def __init__(
        self,
        space: SearchSpace,
        seed: int = 0,
        failure_reward: float = 0.0,
        **sampler_kwargs: Any,
    ):
        super().__init__(space, seed, failure_reward)
        self.sampler_kwargs = sampler_kwargs
        self.distributions = {
            d.name: CategoricalDistribution(tuple(range(len(d.choices)))) for d in space.decisions
        }
        self.trials: list[dict[str, Any]] = []  # per ask: id, tokens, reward (None: pending)
        self.study = self._new_study()

    def _new_study(self) -> optuna.Study:
        return optuna.create_study(direction="maximize", sampler=self._sampler())

    def _sampler(self) -> optuna.samplers.TPESampler:
        seed = np.random.SeedSequence([self.seed, len(self.trials)]).generate_state(1)[0]
        return optuna.samplers.TPESampler(seed=int(seed), **self.sampler_kwargs)

    def ask(self) -> Proposal:
        proposal = super().ask()
        self.trials[-1]["id"] = proposal.id
        return proposal

    def _propose(self) -> tuple[list[int], list[float]]:
        self.study.sampler = self._sampler()
        trial = self.study.ask()
        tokens = [
            trial.suggest_categorical(name, dist.choices)
            for name, dist in self.distributions.items()
        ]
        self.trials.append({"id": None, "tokens": tokens, "reward": None})
        return tokens, [-math.log(len(d.choices)) for d in self.space.decisions]

    def _observe(self, proposal: Proposal, reward: float) -> None:
        number = next(i for i, t in enumerate(self.trials) if t["id"] == proposal.id)
        self.trials[number]["reward"] = reward
        self.study.tell(number, reward)

    def state_dict(self) -> dict[str, Any]:
        state = super().state_dict()
        state["sampler_kwargs"] = self.sampler_kwargs
        state["trials"] = self.trials
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state["sampler_kwargs"] != self.sampler_kwargs:
            raise ValueError(
                f"state has sampler_kwargs {state['sampler_kwargs']}, not {self.sampler_kwargs}"
            )
        super().load_state_dict(state)
        self.trials = [dict(t) for t in state["trials"]]
        self.study = self._new_study()
        for t in self.trials:
            params = dict(zip(self.distributions, t["tokens"]))
            done = t["reward"] is not None
            self.study.add_trial(
                create_trial(
                    state=TrialState.COMPLETE if done else TrialState.RUNNING,
                    value=t["reward"],
                    params=params,
                    distributions=self.distributions,
                )
            )
