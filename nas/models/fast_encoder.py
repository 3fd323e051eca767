"""The fast pathway's encoder: reads the frame itself at ``beta`` x the backbone's widths.

One inverted-residual block (kernel 3) per stage of the chosen backbone's table (SlowFast's
fast pathway is thin, not shallow-only), down to the backbone's output stride, so its output
aligns with the slow state.
"""

from __future__ import annotations

from torch import Tensor, nn

from nas.models.backbone import (
    ConvBNReLU,
    InvertedResidual,
    make_divisible,
    next_block_geometry,
)
from nas.models.backbones import DEFAULT_BACKBONE, backbone_spec

EXPAND = 4  # every stage but the first (expansion 1), as the backbones' 6, thinner


class FastEncoder(nn.Module):
    """Frame (normalised, N x 3 x H x W) -> fast features at the deep resolution."""

    def __init__(
        self,
        beta: float,
        output_stride: int = 16,
        width_mult: float = 1.0,
        backbone: str = DEFAULT_BACKBONE,
    ):
        super().__init__()
        spec = backbone_spec(backbone)
        scale = beta * width_mult
        cin = make_divisible(spec.stem * scale, 4)
        layers: list[nn.Module] = [ConvBNReLU(3, cin, stride=2)]
        stride, dilation = 2, 1
        for i, (c, s) in enumerate(spec.stages):
            cout = make_divisible(c * scale, 4)
            block_stride, block_dilation, stride, dilation = next_block_geometry(
                s, stride, dilation, output_stride
            )
            t = 1 if i == 0 else EXPAND
            layers.append(InvertedResidual(cin, cout, block_stride, t, block_dilation))
            cin = cout
        self.layers = nn.Sequential(*layers)
        self.out_channels = cin

    def forward(self, x: Tensor) -> Tensor:
        return self.layers(x)
