"""A teacher's folder: the one place that knows its files, and builds networks from them.

    teacher.json               meta: key, num_classes, net (NetConfig), data, config, progress
    teacher.safetensors        the static network (StaticSegNet)
    fast_<beta>.safetensors    one distilled ProjectedFastEncoder per beta (fast_1_4 ...)
    train_state.pt             a resumable checkpoint while training (weights_only)

The search's children, nas.retrain and nas.export all build their VideoSegNet here, so the
slow pathway is always the teacher and the fast pathway always starts from the distilled
encoder of the cell's beta.
"""

from __future__ import annotations

from pathlib import Path

from nas.checkpoint import load_weights, read_json
from nas.models.config import NetConfig
from nas.models.static import StaticSegNet
from nas.models.video import ProjectedFastEncoder, VideoSegNet
from search_spaces.genotype import Genotype, beta_fraction


class TeacherFolder:
    """Paths and loaders of one teacher folder."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.meta_path = self.path / "teacher.json"
        self.weights_path = self.path / "teacher.safetensors"
        self.state_path = self.path / "train_state.pt"

    def fast_path(self, beta: str) -> Path:
        return self.path / f"fast_{beta.replace('/', '_')}.safetensors"

    def meta(self) -> dict:
        if not self.meta_path.is_file():
            raise FileNotFoundError(
                f"{self.path} holds no teacher ({self.meta_path.name} missing): run the search "
                "or retrain that builds it first"
            )
        return read_json(self.meta_path)

    def static(self, meta: dict | None = None) -> StaticSegNet:
        """The frozen static network (eval mode)."""
        meta = meta or self.meta()
        net = StaticSegNet(meta["num_classes"], NetConfig(**meta["net"]))
        net.load_state_dict(load_weights(self.weights_path))
        return net.eval().requires_grad_(False)

    def fast(self, beta: str, meta: dict | None = None) -> ProjectedFastEncoder:
        """The frozen distilled fast encoder of ``beta`` (eval mode)."""
        meta = meta or self.meta()
        fast = ProjectedFastEncoder(beta_fraction(beta), NetConfig(**meta["net"]))
        fast.load_distilled(load_weights(self.fast_path(beta)))
        return fast.eval().requires_grad_(False)

    def video_net(
        self,
        genotype: Genotype,
        meta: dict | None = None,
        train_fast_encoder: bool = True,
        train_step_head: bool = True,
    ) -> VideoSegNet:
        """The video network of ``genotype`` on this teacher: slow pathway = the teacher,
        frozen; non-key head starting as the key head; fast encoder and projection from the
        distilled ones. What trains besides the cell and fusion is the caller's choice (a
        search child keeps the fast encoder frozen, its features are cached)."""
        meta = meta or self.meta()
        net = VideoSegNet(genotype, meta["num_classes"], NetConfig(**meta["net"]))
        net.slow.load_state_dict(load_weights(self.weights_path))
        net.init_step_head()
        if net.fast is not None:
            net.fast.load_distilled(load_weights(self.fast_path(genotype.beta)))
            net.fast.encoder.requires_grad_(train_fast_encoder)
        net.slow.requires_grad_(False)
        net.step_head.requires_grad_(train_step_head)
        return net
