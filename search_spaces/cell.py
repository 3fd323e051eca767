"""DynamicCell(genotype): {slow state, fused fast, fast} -> D^_t, the deep features of frame t.

States 0, 1, 2 are the inputs; node i (state 3 + i) sums op_a(state a) + op_b(state b).
The output is the sum of the leaf nodes (no node reads them), their concatenation followed
by a 1x1 conv + BN, or (``residual``) the slow state plus a per-channel gain times their sum:
the gain starts at zero, so a residual cell starts as the copy baseline (D^_t = D_k) and
learns only what changed since the key frame. Only the nodes the output depends on are
computed (``Genotype.live_states``): one read by ``none`` or ``tdiff`` alone keeps its
weights (so saved weights load either way) but never runs.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from search_spaces.genotype import Genotype
from search_spaces.ops import CellContext, build_op


class DynamicCell(nn.Module):
    """The searched fusion cell, all states ``channels`` wide."""

    def __init__(self, genotype: Genotype, channels: int):
        super().__init__()
        genotype.validate()
        self.genotype = genotype
        self.inputs = [node.inputs for node in genotype.nodes]
        self.ops = nn.ModuleList(
            nn.ModuleList(build_op(name, channels) for name in node.ops) for node in genotype.nodes
        )
        self.leaves = genotype.leaf_nodes()
        live = genotype.live_states()
        self.live = [3 + k in live for k in range(len(genotype.nodes))]
        self.concat = genotype.output == "concat"
        if self.concat:
            self.combine = nn.Sequential(
                nn.Conv2d(channels * len(self.leaves), channels, 1, bias=False),
                nn.BatchNorm2d(channels),
            )
        self.residual = genotype.output == "residual"
        if self.residual:
            self.gain = nn.Parameter(torch.zeros(1, channels, 1, 1))

    def computed_ops(self) -> list[nn.Module]:
        """The ops a forward runs: those of the nodes the output depends on."""
        return [op for live, pair in zip(self.live, self.ops) if live for op in pair]

    def forward(self, ctx: CellContext) -> Tensor:
        states = [ctx.slow, ctx.fused_fast, ctx.fast]
        for live, (a, b), (op_a, op_b) in zip(self.live, self.inputs, self.ops):
            # a node the output does not depend on is read by none or tdiff alone, which
            # take nothing from it but its shape: any state of that shape stands in for it
            states.append(op_a(states[a], ctx) + op_b(states[b], ctx) if live else ctx.slow)
        leaves = [states[i] for i in self.leaves]
        if self.concat:
            return self.combine(torch.cat(leaves, dim=1))
        out = leaves[0]
        for leaf in leaves[1:]:
            out = out + leaf
        return ctx.slow + self.gain * out if self.residual else out
