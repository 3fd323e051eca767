"""The search's Searcher: the controller's proposals, within a device-second budget, with
every finished child recorded before the controller hears of it and the state saved after
every suggest and every completion, so a killed search resumes with nothing lost."""

from __future__ import annotations

import json
import math
import time
from collections import deque
from pathlib import Path
from typing import Any

from ray.tune.search import Searcher

from controllers.base import Controller, Proposal
from controllers.tune import ControllerSearcher
from nas.ctrl_c import ctrl_c_wins
from nas.records import RunLog


class BudgetSearcher(ControllerSearcher):
    """Stops proposing once finished children plus those in flight would spend the budget."""

    def __init__(
        self,
        controller: Controller,
        run_log: RunLog,
        budget_seconds: float,
        state_path: Path,
        controller_name: str,
        seed: int,
        max_children: int = 0,
        max_iterations: int | None = None,
    ):
        super().__init__(controller, metric="reward", mode="max", max_iterations=max_iterations)
        self.log = run_log
        self.budget_seconds = budget_seconds
        self.state_path = state_path
        self.controller_name = controller_name
        self.seed = seed
        self.max_children = max_children
        self.requeued: deque[Proposal] = deque()
        self.started: dict[str, float] = {}
        self.last_end: float | None = None
        self.told: set[str] = set()  # proposals rerun after their record was lost

    # ---- resume ------------------------------------------------------------------------
    def resume(self) -> int:
        """Load the saved state; tell the controller what trials.jsonl already holds; queue
        the proposals that were in flight when the search stopped, and those whose record
        was lost (a torn line of trials.jsonl, moved aside by RunLog): the controller heard
        of these already, so their rerun is recorded but not told again. Returns how many."""
        state = json.loads(self.state_path.read_text())
        self.load_state_dict(state)
        recorded = {r["proposal_id"]: r for r in self.log.records}
        in_flight = list(self.proposals.values()) + [
            p
            for p in self.controller.pending.values()
            if p.id not in {q.id for q in self.proposals.values()}
        ]
        self.proposals = {}
        queued: set[str] = set()
        for proposal in in_flight:
            record = recorded.get(proposal.id)
            if record is not None:  # finished and recorded, but the controller never heard
                if proposal.id in self.controller.pending:
                    self.controller.tell(proposal, _reward(record), record["status"])
            elif proposal.id in self.controller.pending:
                self.requeued.append(proposal)
                queued.add(proposal.id)
        space = self.controller.space
        for done in self.completed.values():
            pid = done.get("proposal_id")
            if pid in recorded or pid in queued or "proposal" not in done:
                continue
            proposal = Proposal.from_dict(done["proposal"], space)
            self.requeued.append(proposal)
            self.told.add(proposal.id)
            queued.add(pid)
        self._save()
        return len(self.requeued)

    # ---- Searcher ----------------------------------------------------------------------
    def budget_left(self) -> float:
        return self.budget_seconds - self.log.spent_seconds()

    def _would_overspend(self) -> bool:
        done = [r.get("device_seconds") or 0.0 for r in self.log.records]
        typical = sum(done) / len(done) if done else 0.0
        in_flight = len(self.proposals) * typical
        if self.max_children and len(self.log.records) + len(self.proposals) >= self.max_children:
            return True
        return self.log.spent_seconds() + in_flight >= self.budget_seconds

    @ctrl_c_wins
    def suggest(self, trial_id: str) -> dict[str, Any] | str | None:
        if trial_id in self.proposals:
            return self._config(self.proposals[trial_id])
        if self._would_overspend():
            return Searcher.FINISHED
        if self.requeued:
            proposal = self.requeued.popleft()
        else:
            proposal = self.controller.ask()
            self.n_suggested += 1
        self.proposals[trial_id] = proposal
        self.started[trial_id] = time.time()
        self._save()
        return self._config(proposal)

    @ctrl_c_wins
    def on_trial_complete(
        self, trial_id: str, result: dict | None = None, error: bool = False
    ) -> None:
        if trial_id in self.completed or trial_id not in self.proposals:
            return
        proposal = self.proposals[trial_id]
        reward, status = self.outcome(result, error)
        result = result or {}
        self.log.append(
            {
                "trial_id": trial_id,
                "proposal_id": proposal.id,
                "controller": self.controller_name,
                "genotype": proposal.genotype.to_dict(),
                "tokens": proposal.tokens,
                "log_probs": proposal.log_probs,
                "status": status,
                "reward": reward if status != "failed" else None,
                **{
                    k: result.get(k)
                    for k in (
                        "quality",
                        "copy_quality",
                        "static_quality",
                        "gflops",
                        "ratio_avg",
                        "copy_gflops",
                        "static_gflops",
                        "latency_ms",
                        "latency_key_ms",
                        "latency_nonkey_ms",
                        "copy_latency_ms",
                        "static_latency_ms",
                        "gated_density",
                        "node_id",
                        "gpu_ids",
                        "device",
                        "error",
                    )
                },
                "steps": result.get("steps", 0),
                "device_seconds": result.get(
                    "device_seconds", time.time() - self.started.get(trial_id, time.time())
                ),
                "seed": self.seed,
                "space_version": proposal.genotype.space_version,
                "finished_at": time.time(),
            }
        )
        self.last_end = time.time()
        if proposal.id in self.told:  # a lost record's rerun: the controller heard of it
            self.told.discard(proposal.id)
            del self.proposals[trial_id]
            self.completed[trial_id] = {
                "proposal_id": proposal.id,
                "reward": reward,
                "status": status,
            }
        else:
            super().on_trial_complete(trial_id, result, error)
        # the proposal itself, so that a record lost later (a torn line) can be rerun
        self.completed[trial_id]["proposal"] = proposal.to_dict()
        self._save()

    def _config(self, proposal: Proposal) -> dict[str, Any]:
        """The trial's config: the proposal, and the seed its child trains with."""
        return {**super()._config(proposal), "seed": self.seed + proposal.index}

    def _save(self) -> None:
        self.save(str(self.state_path))


def _reward(record: dict) -> float:
    value = record.get("reward")
    return float(value) if value is not None else math.nan
