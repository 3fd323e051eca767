"""The fast pathway's encoder: reads the frame itself at ``beta`` x the backbone's widths.

One inverted-residual block per MobileNetV2 stage (SlowFast's fast pathway is thin, not
shallow-only), down to the backbone's output stride, so its output aligns with the slow state.
"""

from __future__ import annotations

from torch import Tensor, nn

from nas.models.backbone import (
    ConvBNReLU,
    InvertedResidual,
    make_divisible,
    next_block_geometry,
)

FAST_SETTING = (
    (1, 16, 1),
    (4, 24, 2),
    (4, 32, 2),
    (4, 64, 2),
    (4, 96, 1),
    (4, 160, 2),
    (4, 320, 1),
)


class FastEncoder(nn.Module):
    """Frame (normalised, N x 3 x H x W) -> fast features at the deep resolution."""

    def __init__(self, beta: float, output_stride: int = 16, width_mult: float = 1.0):
        super().__init__()
        scale = beta * width_mult
        cin = make_divisible(32 * scale, 4)
        layers: list[nn.Module] = [ConvBNReLU(3, cin, stride=2)]
        stride, dilation = 2, 1
        for t, c, s in FAST_SETTING:
            cout = make_divisible(c * scale, 4)
            block_stride, block_dilation, stride, dilation = next_block_geometry(
                s, stride, dilation, output_stride
            )
            layers.append(InvertedResidual(cin, cout, block_stride, t, block_dilation))
            cin = cout
        self.layers = nn.Sequential(*layers)
        self.out_channels = cin

    def forward(self, x: Tensor) -> Tensor:
        return self.layers(x)
