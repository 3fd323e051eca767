"""Tracing the video network's steps (TorchScript, ONNX) without warnings that do not apply."""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator

import torch


@contextlib.contextmanager
def tracer_warnings_off() -> Iterator[None]:
    """Silence torch's TracerWarning where this network raises it, and nowhere else.

    It names each Python branch on a traced size (TF "same" padding's ``max(total, 0)`` in
    nas.models.efficientnet_lite, the warp op's ``max(w - 1, 1)`` in search_spaces.ops): the
    branch taken is frozen, the sizes stay traced. Padding is >= 0 whenever the kernel is at
    least its stride, as in every strided conv here; a warp on a 1-pixel-wide map samples its
    one column whatever the scale. So the TorchScript graphs give the eager network's output
    at other frame sizes too (tests/test_onnx.py, every op of the space; the ONNX graphs
    declare fixed input shapes anyway), and the warnings only alarmed users of ``nas.export``.
    A branch on sizes added elsewhere still warns."""
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore",
            category=torch.jit.TracerWarning,
            module=r"(nas\.models\.efficientnet_lite|search_spaces\.ops)$",
        )
        yield
