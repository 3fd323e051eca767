"""The backbone contract, MobileNetV2, and loading ImageNet weights into any backbone.

A backbone is split into early (stride 4), shallow (stride 8) and deep parts. MobileNetV2's
parameter names and shapes follow torchvision's ``mobilenet_v2`` (``features.0.0.weight`` ...
``features.18.1.bias``), so a user's local ImageNet file loads with :func:`load_pretrained`.
``output_stride=16`` dilates the last stride-32 stage (as DeepLab does) without renaming.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor, nn

# t (expansion), c (channels), n (blocks), s (stride): torchvision's table
MBV2_SETTING = (
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
)
EARLY_END, SHALLOW_END = 4, 7  # features[0:4] stride 4; features[4:7] stride 8; rest deep


def make_divisible(v: float, divisor: int = 8) -> int:
    """torchvision's channel rounding, so width multipliers give its shapes."""
    new_v = max(divisor, int(v + divisor / 2) // divisor * divisor)
    return new_v + divisor if new_v < 0.9 * v else new_v


class ConvBNReLU(nn.Sequential):
    """Conv -> BN -> ReLU6, indexed 0/1/2 like torchvision's Conv2dNormActivation."""

    def __init__(
        self, cin: int, cout: int, k: int = 3, stride: int = 1, groups: int = 1, dilation: int = 1
    ):
        pad = dilation * (k - 1) // 2
        super().__init__(
            nn.Conv2d(cin, cout, k, stride, pad, dilation=dilation, groups=groups, bias=False),
            nn.BatchNorm2d(cout),
            nn.ReLU6(inplace=True),
        )


class InvertedResidual(nn.Module):
    """MobileNetV2 block; ``conv`` holds torchvision's layer order and names."""

    def __init__(self, cin: int, cout: int, stride: int, expand: int, dilation: int = 1):
        super().__init__()
        hidden = int(round(cin * expand))
        self.use_res_connect = stride == 1 and cin == cout
        layers: list[nn.Module] = []
        if expand != 1:
            layers.append(ConvBNReLU(cin, hidden, 1))
        layers += [
            ConvBNReLU(hidden, hidden, 3, stride, groups=hidden, dilation=dilation),
            nn.Conv2d(hidden, cout, 1, bias=False),
            nn.BatchNorm2d(cout),
        ]
        self.conv = nn.Sequential(*layers)
        self.out_channels = cout

    def forward(self, x: Tensor) -> Tensor:
        return x + self.conv(x) if self.use_res_connect else self.conv(x)


def next_block_geometry(
    s: int, stride: int, dilation: int, output_stride: int
) -> tuple[int, int, int, int]:
    """A block asking for stride ``s`` once the net is at ``stride``: past the output stride
    it dilates instead (DeepLab). Returns (block stride, block dilation, new stride, new
    dilation); the first dilated block keeps the previous dilation, as DeepLab does."""
    if s > 1 and stride >= output_stride:
        return 1, dilation, stride, dilation * s
    return s, dilation, stride * s, dilation


def mobilenet_v2_features(
    width_mult: float = 1.0, output_stride: int = 32, setting=MBV2_SETTING
) -> tuple[nn.Sequential, list[int]]:
    """torchvision's ``features`` (19 modules for the default table) and each one's width."""
    if output_stride not in (8, 16, 32):
        raise ValueError(f"output_stride must be 8, 16 or 32, got {output_stride}")
    cin = make_divisible(32 * width_mult)
    last = make_divisible(1280 * max(1.0, width_mult))
    layers: list[nn.Module] = [ConvBNReLU(3, cin, stride=2)]
    widths = [cin]
    stride, dilation = 2, 1
    for t, c, n, s in setting:
        cout = make_divisible(c * width_mult)
        for i in range(n):
            block_stride, block_dilation, stride, dilation = next_block_geometry(
                s if i == 0 else 1, stride, dilation, output_stride
            )
            layers.append(InvertedResidual(cin, cout, block_stride, t, block_dilation))
            widths.append(cout)
            cin = cout
    layers.append(ConvBNReLU(cin, last, 1))
    widths.append(last)
    return nn.Sequential(*layers), widths


class Backbone(nn.Module):
    """The per-frame backbone: ``early`` (stride 4), ``shallow`` (stride 8), ``deep`` (the
    output stride); subclasses set ``early_channels``, ``shallow_channels``, ``out_channels``.

    ``name`` is its key in the table (nas.models.backbones); ``layout`` describes the weights
    file :func:`load_pretrained` expects, for its error messages.
    """

    name: str
    layout: str
    width_mult: float

    def early(self, x: Tensor) -> Tensor:
        raise NotImplementedError

    def shallow(self, x: Tensor) -> Tensor:
        raise NotImplementedError

    def deep(self, x: Tensor) -> Tensor:
        raise NotImplementedError

    def forward(self, x: Tensor) -> Tensor:
        return self.deep(self.shallow(self.early(x)))

    def is_backbone_key(self, key: str) -> bool:
        """Whether a weights file's entry belongs to the backbone (not to a classifier or a
        stage the backbone leaves out)."""
        raise NotImplementedError

    @classmethod
    def imagenet_file(cls) -> Path:
        """The ImageNet weights file a package ships for this backbone (where one does)."""
        raise ValueError(
            f"{cls.name} has no bundled ImageNet weights (no package ships them): pass the path "
            f"of a file (.pth or .safetensors) holding {cls.layout} instead of 'imagenet'"
        )


class MobileNetV2Backbone(Backbone):
    """torchvision's MobileNetV2 ``features``, split after modules 3 and 6."""

    name = "mobilenet_v2"
    layout = "torchvision's mobilenet_v2 state dict (features.* names)"

    def __init__(self, width_mult: float = 1.0, output_stride: int = 16):
        super().__init__()
        self.features, widths = mobilenet_v2_features(width_mult, output_stride)
        self.width_mult = width_mult
        self.output_stride = output_stride
        self.early_channels = widths[EARLY_END - 1]
        self.shallow_channels = widths[SHALLOW_END - 1]
        self.out_channels = widths[-1]

    def early(self, x: Tensor) -> Tensor:
        return self.features[:EARLY_END](x)

    def shallow(self, x: Tensor) -> Tensor:
        return self.features[EARLY_END:SHALLOW_END](x)

    def deep(self, x: Tensor) -> Tensor:
        return self.features[SHALLOW_END:](x)

    def is_backbone_key(self, key: str) -> bool:
        return key.startswith("features.")


class PretrainedMismatchError(ValueError):
    """A weights file does not fit the backbone; the message lists the keys."""


def read_state_dict(path: str | Path) -> dict[str, Tensor]:
    """Read a state dict without unpickling code: safetensors, or torch.load(weights_only)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"weights file {path} does not exist")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    state = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise PretrainedMismatchError(f"{path} holds a {type(state).__name__}, not a state dict")
    return state


def load_pretrained(backbone: Backbone, source: str | Path) -> list[str]:
    """Load ImageNet weights into ``backbone`` from a file or, with ``source="imagenet"``, from
    the file a package ships for that backbone (:meth:`Backbone.imagenet_file`).

    Every backbone entry must match by name and shape; what the backbone leaves out (the
    classifier, a cut backbone's later stages) is skipped and returned as the list of skipped
    keys. A mismatch raises with missing/unexpected keys.
    """
    path = backbone.imagenet_file() if source == "imagenet" else Path(source)
    state = read_state_dict(path)
    state = {k.removeprefix("module."): v for k, v in state.items()}
    skipped = sorted(k for k in state if not backbone.is_backbone_key(k))
    kept = {k: v for k, v in state.items() if backbone.is_backbone_key(k)}
    own = backbone.state_dict()
    missing = sorted(set(own) - set(kept))
    unexpected = sorted(set(kept) - set(own))
    wrong_shape = sorted(
        f"{k}: file {tuple(kept[k].shape)} vs model {tuple(own[k].shape)}"
        for k in set(own) & set(kept)
        if kept[k].shape != own[k].shape
    )
    if missing or unexpected or wrong_shape:
        raise PretrainedMismatchError(
            f"{path} does not fit {backbone.name}(width_mult={backbone.width_mult}): "
            f"missing {missing[:10]}{'...' if len(missing) > 10 else ''} ({len(missing)}), "
            f"unexpected {unexpected[:10]}{'...' if len(unexpected) > 10 else ''} "
            f"({len(unexpected)}), shape {wrong_shape[:5]}. Expected {backbone.layout}."
        )
    backbone.load_state_dict(kept, strict=True)
    return skipped
