"""An exported folder's ``key_step.onnx`` and ``step.onnx`` run by onnxruntime.

:class:`OnnxVideoNet` has VideoSegNet's ``alpha``, ``key_step(frame)`` and
``step(frame, state)`` (torch tensors in and out), so ``StreamingSegmenter`` runs the ONNX
graphs exactly as it runs the PyTorch network, and the export check compares the two step by
step. The graphs were traced at one resolution and batch 1: they take only frames of that size.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch
from torch import Tensor

from nas.cellfile import read_cell
from nas.models.video import State

KEY_GRAPH, STEP_GRAPH = "key_step.onnx", "step.onnx"
STATE_NAMES = ("slow", "fast_key", "buffer")
KEY_OUTPUTS = ("logits", *STATE_NAMES)
STEP_INPUTS = ("frame", *STATE_NAMES)
STEP_OUTPUTS = ("logits", *(f"next_{name}" for name in STATE_NAMES))


def onnx_providers(device: torch.device) -> list[str]:
    """onnxruntime's execution providers for ``device``; one clear error when this
    onnxruntime build cannot run there."""
    if device.type == "cpu":
        return ["CPUExecutionProvider"]
    if device.type == "cuda" and "CUDAExecutionProvider" in ort.get_available_providers():
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    raise ValueError(
        f"--onnx on {device}: this onnxruntime offers {ort.get_available_providers()} "
        "(onnxruntime-gpu runs on CUDA); use --device cpu"
    )


class OnnxVideoNet:
    """The two ONNX graphs of one cell, with VideoSegNet's streaming interface."""

    def __init__(
        self,
        key_graph: str | Path,
        step_graph: str | Path,
        alpha: int,
        providers: list[str] | None = None,
    ):
        options = ort.SessionOptions()
        options.log_severity_level = 3  # errors only: unused-initializer notes are noise here
        providers = providers or ["CPUExecutionProvider"]
        self.alpha = alpha
        self.key_session = ort.InferenceSession(str(key_graph), options, providers=providers)
        self.step_session = ort.InferenceSession(str(step_graph), options, providers=providers)
        h, w = self.key_session.get_inputs()[0].shape[-2:]
        self.resolution = (int(h), int(w))
        self.num_classes = int(self.key_session.get_outputs()[0].shape[1])
        # a graph drops inputs it never reads (a cell without the fast pathway has no frame)
        self.step_inputs = {i.name for i in self.step_session.get_inputs()}

    def key_step(self, frame: Tensor) -> tuple[Tensor, State]:
        self._check(frame)
        logits, *state = self.key_session.run(list(KEY_OUTPUTS), {"frame": _array(frame)})
        return torch.from_numpy(logits), tuple(torch.from_numpy(s) for s in state)

    def step(self, frame: Tensor, state: State) -> tuple[Tensor, State]:
        self._check(frame)
        feeds = dict(zip(STEP_INPUTS, (frame, *state)))
        logits, *state = self.step_session.run(
            list(STEP_OUTPUTS), {k: _array(v) for k, v in feeds.items() if k in self.step_inputs}
        )
        return torch.from_numpy(logits), tuple(torch.from_numpy(s) for s in state)

    def _check(self, frame: Tensor) -> None:
        if tuple(frame.shape) != (1, 3, *self.resolution):
            raise ValueError(
                f"the ONNX graphs take 1 x 3 x {self.resolution[0]} x {self.resolution[1]} frames "
                f"(the size they were exported at), got {tuple(frame.shape)}"
            )


def load_onnx_cell(cell: str | Path, device: torch.device) -> tuple[OnnxVideoNet, dict]:
    """The ONNX graphs beside an exported cell.json, and the cell file's data."""
    genotype, data = read_cell(cell)
    folder = Path(cell).parent
    for name in (KEY_GRAPH, STEP_GRAPH):
        if not (folder / name).is_file():
            raise FileNotFoundError(
                f"{folder} has no {name}: export the cell with python -m nas.export RUN "
                "--format torchscript,onnx"
            )
    net = OnnxVideoNet(
        folder / KEY_GRAPH, folder / STEP_GRAPH, genotype.alpha, onnx_providers(device)
    )
    return net, data


def _array(x: Tensor) -> np.ndarray:
    return x.detach().cpu().float().contiguous().numpy()
