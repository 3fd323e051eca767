"""Lateral fusion: the fast features seen since the key frame -> one C-channel tensor.

The buffer is N x (alpha - 1) x Cf x h x w, oldest first; slots not yet filled since the key
frame hold zeros (time_to_channel's zero padding). Each module returns N x C x h x w.
"""

from __future__ import annotations

from torch import Tensor, nn


class TimeToChannel(nn.Module):
    """Stack the alpha - 1 buffered frames on channels, then a 1x1 conv to C."""

    def __init__(self, cin: int, cout: int, frames: int):
        super().__init__()
        self.proj = nn.Sequential(
            nn.Conv2d(cin * frames, cout, 1, bias=False), nn.BatchNorm2d(cout)
        )

    def forward(self, buffer: Tensor) -> Tensor:
        n, t, c, h, w = buffer.shape
        return self.proj(buffer.reshape(n, t * c, h, w))


class TimeStridedSampling(nn.Module):
    """Only the newest fast frame, projected to C."""

    def __init__(self, cin: int, cout: int, frames: int):
        super().__init__()
        self.proj = nn.Sequential(nn.Conv2d(cin, cout, 1, bias=False), nn.BatchNorm2d(cout))

    def forward(self, buffer: Tensor) -> Tensor:
        return self.proj(buffer[:, -1])


class TimeStridedConv(nn.Module):
    """A causal temporal conv (kernel 5) over the buffer, read at the newest frame."""

    kernel = 5

    def __init__(self, cin: int, cout: int, frames: int):
        super().__init__()
        self.taps = min(self.kernel, frames)  # taps past the buffer would only see zeros
        self.conv = nn.Conv3d(cin, cout, (self.taps, 1, 1), bias=False)
        self.bn = nn.BatchNorm2d(cout)

    def forward(self, buffer: Tensor) -> Tensor:
        recent = buffer[:, -self.taps :].transpose(1, 2)  # N x Cf x taps x h x w
        return self.bn(self.conv(recent)[:, :, -1])


FUSION_MODULES = {
    "time_to_channel": TimeToChannel,
    "time_strided_sampling": TimeStridedSampling,
    "time_strided_conv": TimeStridedConv,
}


def build_fusion(name: str, cin: int, cout: int, alpha: int) -> nn.Module:
    """Fusion ``name`` over a buffer of ``alpha - 1`` fast frames of ``cin`` channels."""
    if name not in FUSION_MODULES:
        raise KeyError(f"unknown fusion {name!r}; known: {list(FUSION_MODULES)}")
    return FUSION_MODULES[name](cin, cout, alpha - 1)
