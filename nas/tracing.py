"""Tracing the video network's steps (TorchScript, ONNX) without warnings that do not apply."""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator

import torch


@contextlib.contextmanager
def tracer_warnings_off() -> Iterator[None]:
    """Silence torch's TracerWarning while tracing this network.

    It names each Python branch on a traced size (TF "same" padding's ``max(total, 0)``, the
    warp op's ``max(w - 1, 1)``): the branch taken is frozen, the sizes stay traced. Those
    branches go the same way at every frame size (padding is >= 0 whenever the kernel is at
    least its stride; feature maps are >= 2 pixels wide), so the TorchScript graphs give the
    eager network's output at other frame sizes too (tests/test_onnx.py; the ONNX graphs
    declare fixed input shapes anyway), and the warnings only alarmed users of
    ``nas.export``."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        yield
