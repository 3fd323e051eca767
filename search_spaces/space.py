"""The search space: an ordered list of categorical decisions, and genotype <-> tokens.

Controllers only see the decisions (name, kind, choices); a token is an index into a
decision's choices. Input decisions of later nodes have more choices: a controller that
uses one head per kind masks the choices past ``len(choices)``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from search_spaces.genotype import (
    ALPHAS,
    BETAS,
    FUSIONS,
    OUTPUT_MODES,
    SPACE_VERSION,
    Genotype,
    GenotypeError,
    Node,
)
from search_spaces.ops import OP_NAMES


@dataclass(frozen=True)
class Decision:
    """One categorical choice of the space."""

    name: str
    kind: str  # alpha | beta | fusion | input | op | output
    choices: tuple


class SearchSpace:
    """Ordered decisions of the dynamic-cell space with ``n_nodes`` nodes."""

    def __init__(
        self,
        n_nodes: int = 4,
        ops: Sequence[str] = OP_NAMES,
        outputs: Sequence[str] = OUTPUT_MODES,
    ):
        if n_nodes < 1:
            raise ValueError("n_nodes must be >= 1")
        unknown = [op for op in ops if op not in OP_NAMES]
        if unknown:
            raise ValueError(f"unknown ops {unknown}; known {list(OP_NAMES)}")
        unknown = [mode for mode in outputs if mode not in OUTPUT_MODES]
        if unknown or not outputs:
            raise ValueError(f"outputs {list(outputs)}: choose among {list(OUTPUT_MODES)}")
        self.n_nodes = n_nodes
        self.ops = tuple(ops)
        self.outputs = tuple(mode for mode in OUTPUT_MODES if mode in outputs)
        self.version = SPACE_VERSION
        decisions = [
            Decision("alpha", "alpha", ALPHAS),
            Decision("beta", "beta", BETAS),
            Decision("fusion", "fusion", FUSIONS),
        ]
        for k in range(n_nodes):
            for j in range(2):
                decisions.append(Decision(f"node{k}.input{j}", "input", tuple(range(3 + k))))
                decisions.append(Decision(f"node{k}.op{j}", "op", self.ops))
        decisions.append(Decision("output", "output", self.outputs))
        self.decisions: tuple[Decision, ...] = tuple(decisions)

    def __len__(self) -> int:
        return len(self.decisions)

    @property
    def kinds(self) -> dict[str, int]:
        """Each decision kind with its largest number of choices (a policy head's width)."""
        out: dict[str, int] = {}
        for d in self.decisions:
            out[d.kind] = max(out.get(d.kind, 0), len(d.choices))
        return out

    @property
    def num_genotypes(self) -> int:
        """Number of distinct token sequences (distinct genotypes as data)."""
        return math.prod(len(d.choices) for d in self.decisions)

    def sample_tokens(self, rng: np.random.Generator) -> list[int]:
        return [int(rng.integers(len(d.choices))) for d in self.decisions]

    def sample(self, seed: int | np.random.Generator | None = None) -> Genotype:
        """A uniformly random genotype; deterministic for an integer seed."""
        rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
        return self.decode(self.sample_tokens(rng))

    def decode(self, tokens: Sequence[int]) -> Genotype:
        """Tokens (one index per decision) -> validated Genotype."""
        if len(tokens) != len(self.decisions):
            raise GenotypeError(f"tokens: expected {len(self.decisions)}, got {len(tokens)}")
        values = []
        for d, t in zip(self.decisions, tokens):
            if not 0 <= int(t) < len(d.choices):
                raise GenotypeError(f"tokens[{d.name}]: {t} outside 0..{len(d.choices) - 1}")
            values.append(d.choices[int(t)])
        alpha, beta, fusion = values[:3]
        nodes = []
        for k in range(self.n_nodes):
            i0, o0, i1, o1 = values[3 + 4 * k : 7 + 4 * k]
            nodes.append(Node((i0, i1), (o0, o1)))
        return Genotype(alpha, beta, fusion, tuple(nodes), values[-1]).validate(self.ops)

    def encode(self, genotype: Genotype) -> list[int]:
        """Genotype -> tokens; GenotypeError if it does not belong to this space."""
        genotype.validate(self.ops)
        if genotype.output not in self.outputs:
            raise GenotypeError(
                f"output: this space's outputs are {list(self.outputs)}, the genotype's "
                f"{genotype.output!r}"
            )
        if len(genotype.nodes) != self.n_nodes:
            raise GenotypeError(
                f"nodes: this space has {self.n_nodes} nodes, the genotype {len(genotype.nodes)}"
            )
        values: list = [genotype.alpha, genotype.beta, genotype.fusion]
        for node in genotype.nodes:
            values += [node.inputs[0], node.ops[0], node.inputs[1], node.ops[1]]
        values.append(genotype.output)
        return [d.choices.index(v) for d, v in zip(self.decisions, values)]
