"""A genotype is plain, named data: the pathway decisions plus the dynamic cell.

It round-trips exactly through tokens (what controllers sample) and JSON (what users keep).
Validation raises :class:`GenotypeError` naming the field and the allowed values.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

SPACE_VERSION = "2"
UPGRADABLE_VERSIONS = ("1",)
"""Older spaces this one contains with the same meaning (version 2 added the ``residual``
output): their genotypes load as version 2."""
ALPHAS = (2, 4, 8)
BETAS = ("1/2", "1/4", "1/8")
FUSIONS = ("time_to_channel", "time_strided_sampling", "time_strided_conv")
OUTPUT_MODES = ("sum", "concat", "residual")
CELL_INPUTS = ("slow", "fused_fast", "fast")  # indices 0, 1, 2; node i is index 3 + i


class GenotypeError(ValueError):
    """A genotype (or its JSON file) does not describe a valid cell."""


def beta_fraction(beta: str) -> float:
    """ "1/4" -> 0.25."""
    return float(Fraction(beta))


@dataclass(frozen=True)
class Node:
    """One node of the dynamic cell: the sum of two (input, op) pairs."""

    inputs: tuple[int, int]
    ops: tuple[str, str]


@dataclass(frozen=True)
class Genotype:
    """Pathway ratios and a dynamic cell, as the search space defines them."""

    alpha: int
    beta: str
    fusion: str
    nodes: tuple[Node, ...]
    output: str = "sum"
    space_version: str = SPACE_VERSION
    extra: dict = field(default_factory=dict, compare=False, hash=False, repr=False)

    @property
    def beta_value(self) -> float:
        """beta as a number (the fast pathway's share of the slow widths)."""
        return beta_fraction(self.beta)

    def leaf_nodes(self) -> list[int]:
        """Cell-state indices of nodes no other node reads: the cell's output."""
        used = {i for node in self.nodes for i in node.inputs}
        return [3 + k for k in range(len(self.nodes)) if 3 + k not in used]

    def live_states(self) -> set[int]:
        """Cell states (0 slow, 1 fused fast, 2 fast, 3 + i node i) the output depends on:
        the leaves, and back from them through every op that computes from its input (not
        ``none`` or ``tdiff``). Only these are computed; a node outside them is read by
        ``none`` or ``tdiff`` alone."""
        from search_spaces.ops import OPS_IGNORING_INPUT

        live: set[int] = set()
        stack = list(self.leaf_nodes())
        while stack:
            idx = stack.pop()
            if idx in live:
                continue
            live.add(idx)
            if idx >= 3:
                node = self.nodes[idx - 3]
                stack += [i for i, op in zip(node.inputs, node.ops) if op not in OPS_IGNORING_INPUT]
        return live

    def used_inputs(self) -> set[int]:
        """Cell inputs (0 slow, 1 fused fast, 2 fast) the output depends on: the live ones,
        and the fast pathway where a live node has an op that reads it itself."""
        from search_spaces.ops import OPS_READING_FAST

        live = self.live_states()
        reads_fast = any(
            op in OPS_READING_FAST for idx in live if idx >= 3 for op in self.nodes[idx - 3].ops
        )
        return (live & {0, 1, 2}) | ({2} if reads_fast else set())

    def validate(self, op_names: tuple[str, ...] | None = None) -> Genotype:
        """Raise GenotypeError naming the first invalid field; return self when valid."""
        from search_spaces.ops import OP_NAMES

        allowed_ops = op_names or OP_NAMES
        if self.space_version != SPACE_VERSION:
            raise GenotypeError(
                f"space_version: got {self.space_version!r}, this code reads {SPACE_VERSION!r}"
            )
        _check_choice("alpha", self.alpha, ALPHAS)
        _check_choice("beta", self.beta, BETAS)
        _check_choice("fusion", self.fusion, FUSIONS)
        _check_choice("output", self.output, OUTPUT_MODES)
        if not self.nodes:
            raise GenotypeError("nodes: must hold at least one node")
        for k, node in enumerate(self.nodes):
            if len(node.inputs) != 2 or len(node.ops) != 2:
                raise GenotypeError(f"nodes[{k}]: needs exactly two inputs and two ops")
            for j, (inp, op) in enumerate(zip(node.inputs, node.ops)):
                allowed = list(range(3 + k))
                if not isinstance(inp, int) or isinstance(inp, bool) or inp not in allowed:
                    raise GenotypeError(
                        f"nodes[{k}].inputs[{j}]: got {inp!r}; a node reads an earlier state only,"
                        f" allowed {allowed} (0 slow, 1 fused_fast, 2 fast, 3+i node i)"
                    )
                if op not in allowed_ops:
                    raise GenotypeError(
                        f"nodes[{k}].ops[{j}]: unknown op {op!r}; allowed {list(allowed_ops)}"
                    )
        return self

    # ---- JSON ---------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """The JSON form documented in docs/genotype.md."""
        return {
            "space_version": self.space_version,
            "alpha": self.alpha,
            "beta": self.beta,
            "fusion": self.fusion,
            "nodes": [{"inputs": list(n.inputs), "ops": list(n.ops)} for n in self.nodes],
            "output": self.output,
        }

    @classmethod
    def from_dict(cls, data: Any) -> Genotype:
        """Parse and validate; every problem is a GenotypeError naming the field."""
        if not isinstance(data, dict):
            raise GenotypeError(f"genotype: expected a JSON object, got {type(data).__name__}")
        if isinstance(data.get("genotype"), dict):  # an exported cell.json wraps it
            data = data["genotype"]
        required = ("alpha", "beta", "fusion", "nodes")
        for key in required:
            if key not in data:
                raise GenotypeError(f"{key}: missing; a genotype needs {list(required)}")
        beta = data["beta"]
        if isinstance(beta, (int, float)) and not isinstance(beta, bool) and beta > 0:
            beta = str(Fraction(beta).limit_denominator(64))
        nodes_raw = data["nodes"]
        if not isinstance(nodes_raw, list):
            raise GenotypeError("nodes: expected a list of {inputs: [a, b], ops: [x, y]}")
        nodes = []
        for k, raw in enumerate(nodes_raw):
            if not isinstance(raw, dict) or "inputs" not in raw or "ops" not in raw:
                raise GenotypeError(f"nodes[{k}]: expected {{'inputs': [a, b], 'ops': [x, y]}}")
            if not isinstance(raw["inputs"], list) or not isinstance(raw["ops"], list):
                raise GenotypeError(f"nodes[{k}]: inputs and ops must be lists of two")
            nodes.append(Node(tuple(raw["inputs"]), tuple(raw["ops"])))
        genotype = cls(
            alpha=data["alpha"],
            beta=beta,
            fusion=data["fusion"],
            nodes=tuple(nodes),
            output=data.get("output", "sum"),
            space_version=_upgraded(str(data.get("space_version", SPACE_VERSION))),
        )
        return genotype.validate()

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    @classmethod
    def from_json(cls, text: str) -> Genotype:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise GenotypeError(f"genotype file is not valid JSON: {exc}") from exc
        return cls.from_dict(data)

    @classmethod
    def load(cls, path: str | Path) -> Genotype:
        """Read a genotype (or an exported cell.json) from disk."""
        path = Path(path)
        if not path.is_file():
            raise GenotypeError(f"genotype file {path} does not exist")
        try:
            return cls.from_json(path.read_text())
        except GenotypeError as exc:
            raise GenotypeError(f"{path}: {exc}") from None

    def save(self, path: str | Path) -> None:
        Path(path).write_text(self.to_json() + "\n")


def _upgraded(version: str) -> str:
    return SPACE_VERSION if version in UPGRADABLE_VERSIONS else version


def _check_choice(name: str, value: Any, allowed: tuple) -> None:
    if isinstance(value, bool) or value not in allowed:
        raise GenotypeError(f"{name}: got {value!r}, allowed {list(allowed)}")


def copy_genotype(alpha: int = 4, beta: str = "1/4", n_nodes: int = 4) -> Genotype:
    """The baseline cell: every node passes the slow state on, so D^_t = D_k exactly."""
    nodes = [Node((0, 0), ("skip", "none"))]
    nodes += [Node((3 + k, 3 + k), ("skip", "none")) for k in range(n_nodes - 1)]
    return Genotype(alpha, beta, "time_strided_sampling", tuple(nodes), "sum")
