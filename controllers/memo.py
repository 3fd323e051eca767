"""A genotype that was already evaluated is not trained again: the memo answers it.

``MemoizedController`` wraps any controller. Its ``ask`` loops on the inner controller: a
proposal whose genotype has a recorded outcome is told that outcome at once; one whose
genotype is being evaluated right now is parked and told when that evaluation comes back;
the first fresh genotype goes to the caller. After ``max_repeats`` answered repeats in one ask
it returns the repeat anyway (a converged policy must not spin forever). The memo key is the
canonical genotype JSON. With ``reevaluate=True`` nothing is answered from the memo and every
measurement is kept, for noise estimates.
"""

from __future__ import annotations

import json
from typing import Any

from controllers.base import Controller, Proposal, effective_reward
from search_spaces.genotype import Genotype


def genotype_key(genotype: Genotype) -> str:
    """Canonical JSON of a genotype: equal genotypes, equal keys."""
    return json.dumps(genotype.to_dict(), sort_keys=True, separators=(",", ":"))


class MemoizedController(Controller):
    """Same interface as the wrapped controller; ``n_repeats`` counts the repeats it answered
    (or parked) instead of handing them to the caller."""

    name = "memo"

    def __init__(self, controller: Controller, reevaluate: bool = False, max_repeats: int = 100):
        super().__init__(controller.space, controller.seed, controller.failure_reward)
        self.inner = controller
        self.reevaluate = reevaluate
        self.max_repeats = max_repeats
        self.records: dict[str, list[tuple[float, str]]] = {}  # key -> (reward, status) told
        self.parked: dict[str, list[Proposal]] = {}  # key -> repeats of an evaluation in flight
        self.n_repeats = 0

    def ask(self) -> Proposal:
        proposal = self.inner.ask()
        for _ in range(self.max_repeats):
            if self.reevaluate or not self._answer(proposal):
                break
            self.n_repeats += 1
            proposal = self.inner.ask()
        self.n_asked += 1
        self.pending[proposal.id] = proposal
        return proposal

    def _answer(self, proposal: Proposal) -> bool:
        """Tell or park a repeat; False for a genotype neither evaluated nor in flight."""
        key = genotype_key(proposal.genotype)
        if key in self.records:
            self.inner.tell(proposal, *self.records[key][0])
            return True
        if any(genotype_key(p.genotype) == key for p in self.pending.values()):
            self.parked.setdefault(key, []).append(proposal)
            return True
        return False

    def tell(self, proposal: Proposal, reward: float, status: str = "ok") -> None:
        value = effective_reward(reward, status, self.failure_reward)
        if proposal.id not in self.pending:
            raise KeyError(f"proposal {proposal.id!r} was not asked here or was already told")
        del self.pending[proposal.id]
        self.n_told += 1
        key = genotype_key(proposal.genotype)
        self.records.setdefault(key, []).append((value, status))
        self.inner.tell(proposal, value, status)
        for repeat in self.parked.pop(key, []):
            self.inner.tell(repeat, value, status)

    def measurements(self, genotype: Genotype) -> list[float]:
        """Every reward recorded for ``genotype`` (several with ``reevaluate=True``)."""
        return [reward for reward, _ in self.records.get(genotype_key(genotype), [])]

    def state_dict(self) -> dict[str, Any]:
        state = super().state_dict()
        state.update(
            inner=self.inner.state_dict(),
            reevaluate=self.reevaluate,
            max_repeats=self.max_repeats,
            records={k: [list(r) for r in v] for k, v in self.records.items()},
            parked={k: [p.to_dict() for p in v] for k, v in self.parked.items()},
            n_repeats=self.n_repeats,
        )
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.inner.load_state_dict(state["inner"])
        self.reevaluate = bool(state["reevaluate"])
        self.max_repeats = int(state["max_repeats"])
        self.records = {k: [(float(r), s) for r, s in v] for k, v in state["records"].items()}
        self.parked = {
            k: [Proposal.from_dict(p, self.space) for p in v] for k, v in state["parked"].items()
        }
        self.n_repeats = int(state["n_repeats"])
