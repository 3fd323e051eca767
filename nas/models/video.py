"""VideoSegNet(genotype): slow pathway on key frames, fast pathway + dynamic cell otherwise.

``key_step(frame) -> (logits, state)`` and ``step(frame, state) -> (logits, state)`` hold no
data-dependent Python branching, so each traces and exports. The state is a tuple
(slow N x C x h x w, fast_key N x C x h x w, buffer N x (alpha - 1) x Cf x h x w); when the
cell never reads the fast pathway, the fast tensors have zero channels and it is never run.
"""

from __future__ import annotations

import copy

import torch
from torch import Tensor, nn

from nas.models.config import NetConfig
from nas.models.fast_encoder import FastEncoder
from nas.models.heads import upsample_logits
from nas.models.static import StaticSegNet
from search_spaces.cell import DynamicCell
from search_spaces.genotype import Genotype
from search_spaces.ops import CellContext
from search_spaces.pathways import build_fusion

State = tuple[Tensor, Tensor, Tensor]


class ProjectedFastEncoder(nn.Module):
    """The fast encoder and its 1x1 projection to the slow-state width: what is distilled to
    the teacher's deep features next to the teacher, and what a fast pathway starts from."""

    def __init__(self, beta: float, config: NetConfig):
        super().__init__()
        c = config.deep_channels
        self.encoder = FastEncoder(beta, config.output_stride, config.width_mult, config.backbone)
        self.out_channels = self.encoder.out_channels
        self.proj = nn.Sequential(nn.Conv2d(self.out_channels, c, 1, bias=False), nn.BatchNorm2d(c))

    def forward(self, x: Tensor) -> Tensor:
        return self.proj(self.encoder(x))

    def load_distilled(self, state: dict[str, Tensor]) -> None:
        """Load a distilled ProjectedFastEncoder's weights (strictly: every encoder and
        projection weight, nothing else); a fast pathway's fusion keeps its own."""
        for name in ("encoder", "proj"):
            part = {
                k.removeprefix(f"{name}."): v for k, v in state.items() if k.startswith(f"{name}.")
            }
            getattr(self, name).load_state_dict(part)
        foreign = sorted(k for k in state if not k.startswith(("encoder.", "proj.")))
        if foreign:
            raise ValueError(f"not a distilled fast encoder: unexpected {foreign[:5]}")


class FastPathway(ProjectedFastEncoder):
    """The projected fast encoder and the lateral fusion of the fast features seen since
    the key frame."""

    def __init__(self, genotype: Genotype, config: NetConfig, uses_fused: bool):
        super().__init__(genotype.beta_value, config)
        cf, c = self.out_channels, config.deep_channels
        self.fusion = build_fusion(genotype.fusion, cf, c, genotype.alpha) if uses_fused else None

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        for key in unbuilt_fusion_keys(self, state_dict, prefix):
            del state_dict[key]
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)


def unbuilt_fusion_keys(fast: nn.Module | None, state: dict, prefix: str = "fast.") -> list[str]:
    """Keys of a fusion this fast pathway does not build. Weights saved by versions up to
    2026-12-01 hold one where only ``tdiff`` or nodes the output does not depend on read the
    fused input (computed, never used): loading drops them."""
    if fast is None or getattr(fast, "fusion", None) is not None:
        return []
    return [k for k in state if k.startswith(prefix + "fusion.")]


class VideoSegNet(nn.Module):
    """The video network of one genotype. Input frames: float N x 3 x H x W in [0, 1]."""

    def __init__(self, genotype: Genotype, num_classes: int, config: NetConfig = NetConfig()):
        super().__init__()
        genotype.validate()
        self.genotype = genotype
        self.config = config
        self.alpha = genotype.alpha
        used = genotype.used_inputs()
        self.uses_fast = bool(used & {1, 2})
        self.uses_fused = 1 in used
        self.slow = StaticSegNet(num_classes, config)
        self.fast = FastPathway(genotype, config, self.uses_fused) if self.uses_fast else None
        self.cell = DynamicCell(genotype, config.deep_channels)
        self.step_head = copy.deepcopy(self.slow.head)

    def init_step_head(self) -> None:
        """Start the non-key head from the key head (call after loading the teacher)."""
        self.step_head.load_state_dict(self.slow.head.state_dict())

    # ---- the two exportable steps --------------------------------------------
    def key_step(self, frame: Tensor) -> tuple[Tensor, State]:
        x = self.slow.normalize(frame)
        slow = self.slow.neck(self.slow.backbone(x))
        fast_raw = self.fast.encoder(x) if self.fast is not None else None
        logits, state = self.key_from_features(slow, fast_raw)
        return upsample_logits(logits, frame.shape[-2:]), state

    def step(self, frame: Tensor, state: State) -> tuple[Tensor, State]:
        fast_raw = None
        if self.fast is not None:
            fast_raw = self.fast.encoder(self.slow.normalize(frame))
        logits, state = self.step_from_features(fast_raw, state)
        return upsample_logits(logits, frame.shape[-2:]), state

    # ---- the same steps from features (children train on cached features) --
    def key_from_features(self, slow: Tensor, fast_raw: Tensor | None) -> tuple[Tensor, State]:
        """Key-frame logits at the deep resolution and the new state."""
        n, _, h, w = slow.shape
        if self.fast is None or fast_raw is None:
            empty = slow.new_zeros(n, 0, h, w)
            return self.slow.head(slow), (
                slow,
                empty,
                empty.unsqueeze(1).expand(n, self.alpha - 1, 0, h, w),
            )
        buffer = fast_raw.new_zeros(n, self.alpha - 1, self.fast.out_channels, h, w)
        return self.slow.head(slow), (slow, self.fast.proj(fast_raw), buffer)

    def step_from_features(self, fast_raw: Tensor | None, state: State) -> tuple[Tensor, State]:
        """Non-key logits at the deep resolution from this frame's fast encoder output."""
        d_hat, state = self.cell_features(fast_raw, state)
        return self.step_head(d_hat), state

    def cell_features(self, fast_raw: Tensor | None, state: State) -> tuple[Tensor, State]:
        """D^_t, the cell's approximation of this frame's deep features, and the new state."""
        slow, fast_key, buffer = state
        if self.fast is None or fast_raw is None:
            ctx = CellContext(slow, slow, slow, slow)
        else:
            buffer = torch.cat([buffer[:, 1:], fast_raw.unsqueeze(1)], dim=1)
            fast = self.fast.proj(fast_raw)
            fused = self.fast.fusion(buffer) if self.fast.fusion is not None else fast
            ctx = CellContext(slow, fused, fast, fast_key)
        return self.cell(ctx), (slow, fast_key, buffer)

    # ---- whole clips ---------------------------------------------------------
    def forward(self, clip: Tensor) -> Tensor:
        """N x T x 3 x H x W -> N x T x K x H x W, a key frame every ``alpha`` frames."""
        stream = StreamingSegmenter(self)
        return torch.stack([stream(clip[:, t]) for t in range(clip.shape[1])], dim=1)


class StreamingSegmenter:
    """Frame-by-frame use: ``reset()`` then ``__call__(frame)``; key frame every alpha."""

    def __init__(self, net: VideoSegNet):
        self.net = net
        self.reset()

    def reset(self) -> None:
        self.index = 0
        self.state: State | None = None

    def is_key(self) -> bool:
        return self.index % self.net.alpha == 0 or self.state is None

    def __call__(self, frame: Tensor) -> Tensor:
        if self.is_key():
            logits, self.state = self.net.key_step(frame)
        else:
            logits, self.state = self.net.step(frame, self.state)
        self.index += 1
        return logits


class KeyStep(nn.Module):
    """``key_step`` as a module's forward, for tracing and export."""

    def __init__(self, net: VideoSegNet):
        super().__init__()
        self.net = net

    def forward(self, frame: Tensor) -> tuple[Tensor, State]:
        return self.net.key_step(frame)


class Step(nn.Module):
    """``step`` as a module's forward, for tracing and export."""

    def __init__(self, net: VideoSegNet):
        super().__init__()
        self.net = net

    def forward(self, frame: Tensor, slow: Tensor, fast_key: Tensor, buffer: Tensor):
        return self.net.step(frame, (slow, fast_key, buffer))
