"""The one interface every controller implements: ask for a genotype, tell its reward.

A search loop (or the Ray Tune adapter in ``controllers.tune``) only ever calls ``ask``,
``tell``, ``state_dict`` / ``load_state_dict`` and ``save`` / ``load``; the algorithms differ
only in ``_propose`` (how tokens are chosen) and ``_observe`` (what a reward teaches them).
State is JSON (tensors as base64), written atomically, so a search can save after every tell
and resume to exactly the proposals an uninterrupted run would have made.
"""

from __future__ import annotations

import base64
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from search_spaces.genotype import Genotype
from search_spaces.space import SearchSpace

STATUSES = ("ok", "failed", "stopped-early")


@dataclass
class Proposal:
    """A genotype to evaluate, with what its controller needs to learn from the reward.

    ``log_probs`` has one entry per decision: the log-probability of each token under the
    policy that sampled it (PPO needs these for its ratio). Non-learning controllers fill in
    the log-probability of their proposal distribution (uniform: ``-log(len(choices))``;
    a mutation: see ``controllers.evolution``) so the field is always meaningful.
    """

    id: str
    genotype: Genotype
    tokens: list[int]
    log_probs: list[float]
    index: int = 0
    """How many proposals its controller made before this one: a search seeds the child
    from it, so a rerun child (after a resume) trains exactly as the first time."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "tokens": list(self.tokens),
            "log_probs": list(self.log_probs),
            "index": self.index,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any], space: SearchSpace) -> Proposal:
        tokens = [int(t) for t in data["tokens"]]
        # states saved before "index" existed: the id ends with it ("ppo-0-8")
        index = int(data["index"]) if "index" in data else int(data["id"].rsplit("-", 1)[-1])
        log_probs = [float(x) for x in data["log_probs"]]
        return cls(data["id"], space.decode(tokens), tokens, log_probs, index)


def effective_reward(reward: float, status: str, failure_reward: float) -> float:
    """The reward a controller learns from.

    ``failed`` children, and any non-finite reward (NaN, inf: a diverged child), count as
    ``failure_reward``; an early-stopped child counts its last measured reward.
    """
    if status not in STATUSES:
        raise ValueError(f"status: got {status!r}, allowed {list(STATUSES)}")
    if status == "failed" or reward is None or not math.isfinite(float(reward)):
        return float(failure_reward)
    return float(reward)


def space_signature(space: SearchSpace) -> dict[str, Any]:
    """What a saved state must agree on with the space it is loaded into (the outputs only
    when narrowed, so that states saved before they could be are read as they were)."""
    from search_spaces.genotype import OUTPUT_MODES

    signature: dict[str, Any] = {
        "version": space.version,
        "n_nodes": space.n_nodes,
        "ops": list(space.ops),
    }
    if space.outputs != OUTPUT_MODES:
        signature["outputs"] = list(space.outputs)
    return signature


class Controller:
    """Base class: proposal ids, pending proposals, failure handling, numpy RNG, JSON state.

    Subclasses implement ``_propose() -> (tokens, log_probs)`` and ``_observe(proposal,
    reward)``, and extend ``state_dict`` / ``load_state_dict`` with their own state. Tells may
    arrive in any order, interleaved with asks; each proposal is told at most once.
    """

    name = "base"

    def __init__(self, space: SearchSpace, seed: int = 0, failure_reward: float = 0.0):
        self.space = space
        self.seed = int(seed)
        self.failure_reward = float(failure_reward)
        self.rng = np.random.default_rng(self.seed)
        self.n_asked = 0
        self.n_told = 0
        self.pending: dict[str, Proposal] = {}

    # ---- the interface -----------------------------------------------------------------
    def ask(self) -> Proposal:
        """The next genotype to evaluate; its id is unique and reproducible for a seed."""
        tokens, log_probs = self._propose()
        proposal = Proposal(
            id=f"{self.name}-{self.seed}-{self.n_asked}",
            genotype=self.space.decode(tokens),
            tokens=[int(t) for t in tokens],
            log_probs=[float(x) for x in log_probs],
            index=self.n_asked,
        )
        self.n_asked += 1
        self.pending[proposal.id] = proposal
        return proposal

    def tell(self, proposal: Proposal, reward: float, status: str = "ok") -> None:
        """Report a proposal's outcome: status ok, failed or stopped-early (see
        ``effective_reward``)."""
        value = effective_reward(reward, status, self.failure_reward)
        if proposal.id not in self.pending:
            raise KeyError(f"proposal {proposal.id!r} was not asked here or was already told")
        del self.pending[proposal.id]
        self.n_told += 1
        self._observe(proposal, value)

    def _propose(self) -> tuple[list[int], list[float]]:
        raise NotImplementedError

    def _observe(self, proposal: Proposal, reward: float) -> None:
        raise NotImplementedError

    # ---- state ---------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """JSON-able state; subclasses add their own keys."""
        return {
            "controller": self.name,
            "space": space_signature(self.space),
            "seed": self.seed,
            "failure_reward": self.failure_reward,
            "n_asked": self.n_asked,
            "n_told": self.n_told,
            "rng": self.rng.bit_generator.state,
            "pending": [p.to_dict() for p in self.pending.values()],
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state["controller"] != self.name:
            raise ValueError(f"state is for controller {state['controller']!r}, not {self.name!r}")
        if state["space"] != space_signature(self.space):
            raise ValueError(
                f"state is for space {state['space']}, not {space_signature(self.space)}: the "
                "search was started with another search space (or another code version); "
                "start it in a new --out folder (the old trials.jsonl keeps its results)"
            )
        self.seed = int(state["seed"])
        self.failure_reward = float(state["failure_reward"])
        self.n_asked = int(state["n_asked"])
        self.n_told = int(state["n_told"])
        self.rng.bit_generator.state = state["rng"]
        pending = [Proposal.from_dict(p, self.space) for p in state["pending"]]
        self.pending = {p.id: p for p in pending}

    def save(self, path: str | Path) -> None:
        """Write ``state_dict()`` as JSON, atomically (a crash leaves the old file whole)."""
        write_json_atomic(path, self.state_dict())

    def load(self, path: str | Path) -> None:
        self.load_state_dict(json.loads(Path(path).read_text()))


def write_json_atomic(path: str | Path, data: Any) -> None:
    """JSON to ``path`` through a temporary file and ``os.replace``."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(json.dumps(data, allow_nan=False))
    os.replace(tmp, path)


def tensor_to_json(tensor: torch.Tensor) -> dict[str, Any]:
    """A tensor as base64 of its raw bytes: exact, and ~4x smaller than a list of floats."""
    array = tensor.detach().cpu().contiguous().numpy()
    return {
        "dtype": str(array.dtype),
        "shape": list(array.shape),
        "data": base64.b64encode(array.tobytes()).decode("ascii"),
    }


def tensor_from_json(data: dict[str, Any]) -> torch.Tensor:
    raw = base64.b64decode(data["data"])
    array = np.frombuffer(raw, dtype=np.dtype(data["dtype"])).reshape(data["shape"])
    return torch.from_numpy(array.copy())
