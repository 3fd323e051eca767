"""Any controller as a Ray Tune ``Searcher``: Tune schedules children, the controller proposes.

Each suggested config holds ``genotype`` (its JSON dict), ``tokens``, ``proposal_id`` and
``log_probs``; Tune merges it into the Tuner's ``param_space`` (constants a child needs).

How a finished trial is told to the controller (``on_trial_complete``):

- ``error=True``, no result, or the metric missing: status ``failed``;
- a NaN or inf metric: ``failed`` (the controller's ``failure_reward``);
- ``result["stopped_early"]`` true (the trainable's own word), or ``training_iteration`` below
  ``max_iterations`` (a scheduler such as ASHA stopped it; measured on Ray 2.60: Tune marks
  such a last result ``done`` like a finished one, so ``done`` cannot tell them apart):
  ``stopped-early``, with the last reported metric as its reward;
- otherwise ``ok``.

A second call for the same trial id is ignored. ``save`` / ``restore`` write JSON (controller
state, proposals in flight by trial id, completed trials), never pickle.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from ray.tune.search import Searcher

from controllers.base import Controller, Proposal, write_json_atomic


class ControllerSearcher(Searcher):
    """Ray Tune Searcher around a ``Controller``; ``mode="min"`` negates the metric."""

    def __init__(
        self,
        controller: Controller,
        metric: str = "reward",
        mode: str = "max",
        max_trials: int | None = None,
        max_iterations: int | None = None,
    ):
        super().__init__(metric=metric, mode=mode)
        self.controller = controller
        self.max_trials = max_trials
        self.max_iterations = max_iterations
        self.proposals: dict[str, Proposal] = {}  # trial id -> proposal in flight
        self.completed: dict[str, dict[str, Any]] = {}  # trial id -> proposal id, reward, status
        self.n_suggested = 0

    def set_search_properties(
        self, metric: str | None, mode: str | None, config: dict, **spec: Any
    ) -> bool:
        """Accept the TuneConfig's metric and mode; the search space is the controller's."""
        self._metric = metric or self._metric
        self._mode = mode or self._mode
        return True

    def suggest(self, trial_id: str) -> dict[str, Any] | str | None:
        if trial_id in self.proposals:  # asked again after a restore
            return self._config(self.proposals[trial_id])
        if self.max_trials is not None and self.n_suggested >= self.max_trials:
            return Searcher.FINISHED
        proposal = self.controller.ask()
        self.proposals[trial_id] = proposal
        self.n_suggested += 1
        return self._config(proposal)

    @staticmethod
    def _config(proposal: Proposal) -> dict[str, Any]:
        return {
            "genotype": proposal.genotype.to_dict(),
            "tokens": list(proposal.tokens),
            "proposal_id": proposal.id,
            "log_probs": list(proposal.log_probs),
        }

    def on_trial_complete(
        self, trial_id: str, result: dict | None = None, error: bool = False
    ) -> None:
        if trial_id in self.completed or trial_id not in self.proposals:
            return
        proposal = self.proposals.pop(trial_id)
        reward, status = self.outcome(result, error)
        self.controller.tell(proposal, reward, status)
        self.completed[trial_id] = {"proposal_id": proposal.id, "reward": reward, "status": status}

    def outcome(self, result: dict | None, error: bool) -> tuple[float, str]:
        """(reward, status) by the rules in the module docstring; failed rewards are 0.0 here
        and become the controller's ``failure_reward``."""
        try:
            value = float(result[self.metric]) if result and not error else math.nan
        except (KeyError, TypeError, ValueError):
            value = math.nan
        if not math.isfinite(value):
            return 0.0, "failed"
        iteration = result.get("training_iteration")
        stopped = bool(result.get("stopped_early")) or (
            self.max_iterations is not None
            and iteration is not None
            and iteration < self.max_iterations
        )
        return (value if self.mode == "max" else -value), "stopped-early" if stopped else "ok"

    # ---- state -----------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {
            "controller": self.controller.state_dict(),
            "metric": self.metric,
            "mode": self.mode,
            "max_trials": self.max_trials,
            "max_iterations": self.max_iterations,
            "n_suggested": self.n_suggested,
            "proposals": {t: p.to_dict() for t, p in self.proposals.items()},
            "completed": self.completed,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.controller.load_state_dict(state["controller"])
        self._metric, self._mode = state["metric"], state["mode"]
        self.max_trials = state["max_trials"]
        self.max_iterations = state["max_iterations"]
        self.n_suggested = int(state["n_suggested"])
        space = self.controller.space
        self.proposals = {t: Proposal.from_dict(p, space) for t, p in state["proposals"].items()}
        self.completed = dict(state["completed"])

    def save(self, checkpoint_path: str) -> None:
        write_json_atomic(checkpoint_path, self.state_dict())

    def restore(self, checkpoint_path: str) -> None:
        self.load_state_dict(json.loads(Path(checkpoint_path).read_text()))
