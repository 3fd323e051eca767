"""``key_step`` and ``step`` as ONNX graphs, checked against the eager network at export.

Exporter: torch's TorchScript-based one (``torch.onnx.export(..., dynamo=False)``). It needs
only the ``onnx`` package and traces every op of the space. The torch.export-based exporter
(``dynamo=True``, the default since torch 2.9) needs ``onnxscript`` besides, and cannot
capture ``gated_conv``: the op records its measured density with ``float(mask.mean())``, a
data-dependent value torch.export refuses to guard on.

Opset 17, fixed so a graph means the same whatever torch exported it: the cell's ``warp``
needs GridSample (opset >= 16), 17 is the TorchScript exporter's long-standing default, and
onnxruntime (>= 1.13), TensorRT and OpenVINO all run it.

The check runs one key frame and ``alpha - 1`` steps through onnxruntime and through the eager
network, each carrying its own state forward as nas.segment does, and compares every logit
and state tensor. Graphs onnxruntime cannot run, or that differ by more than ``TOLERANCE``,
are removed and the export fails.
"""

from __future__ import annotations

import inspect
import warnings
from pathlib import Path

import onnx
import torch
from torch import Tensor, nn

from nas.models.video import KeyStep, Step, VideoSegNet
from nas.onnx_net import (
    KEY_GRAPH,
    KEY_OUTPUTS,
    STATE_NAMES,
    STEP_GRAPH,
    STEP_INPUTS,
    STEP_OUTPUTS,
    OnnxVideoNet,
)
from nas.tracing import tracer_warnings_off

OPSET = 17
TOLERANCE = 1e-4


class OnnxCheckError(RuntimeError):
    """The ONNX graphs do not run under onnxruntime, or do not compute what the eager
    network computes."""


def export_onnx(
    net: VideoSegNet, resolution: tuple[int, int], folder: Path, tolerance: float = TOLERANCE
) -> float:
    """Write ``key_step.onnx`` and ``step.onnx`` for ``net`` (on the CPU) at ``resolution``
    into ``folder``; return their largest absolute difference from the eager network over
    one key frame and ``alpha - 1`` steps. When onnxruntime cannot run them, or the
    difference is above ``tolerance``, both files are removed and OnnxCheckError says why."""
    net = net.eval()
    frames = check_frames(net.alpha, resolution)
    with torch.no_grad():
        _, state = net.key_step(frames[0])
        write_graph(KeyStep(net), (frames[0],), folder / KEY_GRAPH, ["frame"], KEY_OUTPUTS)
        write_graph(Step(net), (frames[1], *state), folder / STEP_GRAPH, STEP_INPUTS, STEP_OUTPUTS)
    try:
        graphs = OnnxVideoNet(folder / KEY_GRAPH, folder / STEP_GRAPH, net.alpha)
        difference = max_difference(net, graphs, frames)
        if not difference <= tolerance:  # NaN fails too
            raise OnnxCheckError(
                f"the ONNX graphs differ from the eager network by up to {difference:.3g} "
                f"(> {tolerance:g}) under onnxruntime"
            )
    except Exception as exc:  # onnxruntime's errors share no base class below Exception
        for name in (KEY_GRAPH, STEP_GRAPH):
            (folder / name).unlink(missing_ok=True)
        reason = str(exc) if isinstance(exc, OnnxCheckError) else f"onnxruntime: {exc}"
        raise OnnxCheckError(
            f"{reason}; {KEY_GRAPH} and {STEP_GRAPH} not written (torch {torch.__version__}, "
            f"opset {OPSET})"
        ) from exc
    return difference


def write_graph(
    module: nn.Module,
    args: tuple[Tensor, ...],
    path: Path,
    input_names: tuple[str, ...] | list[str],
    output_names: tuple[str, ...],
) -> None:
    """Trace ``module`` on ``args`` into an ONNX file at ``path`` and validate it."""
    with warnings.catch_warnings(), tracer_warnings_off():
        # the TorchScript exporter is deprecated in favour of dynamo=True (see above)
        warnings.simplefilter("ignore", DeprecationWarning)
        # F.pad's reversed-order Slice: left unfolded, computed at run time, same result
        warnings.filterwarnings("ignore", "Constant folding - Only steps=1", UserWarning)
        torch.onnx.export(
            module.eval(),  # a wrapper starts in train mode, and export restores its mode
            args,
            str(path),
            input_names=list(input_names),
            output_names=list(output_names),
            opset_version=OPSET,
            do_constant_folding=True,
            **_torchscript_exporter(),
        )
    onnx.checker.check_model(str(path))


def _torchscript_exporter() -> dict:
    """``dynamo=False`` where torch has the argument (2.5 and later)."""
    has_dynamo = "dynamo" in inspect.signature(torch.onnx.export).parameters
    return {"dynamo": False} if has_dynamo else {}


def check_frames(alpha: int, resolution: tuple[int, int], seed: int = 0) -> Tensor:
    """``alpha`` frames (1 x 3 x H x W each, in [0, 1]) that change a little from the first,
    so motion ops and gates see both changed and unchanged pixels."""
    generator = torch.Generator().manual_seed(seed)
    first = torch.rand(1, 3, *resolution, generator=generator)
    noise = torch.rand(alpha, 1, 3, *resolution, generator=generator)
    weights = torch.linspace(0.0, 0.3, alpha).view(alpha, 1, 1, 1, 1)
    return (1 - weights) * first + weights * noise


def max_difference(net: VideoSegNet, graphs: OnnxVideoNet, frames: Tensor) -> float:
    """Largest absolute difference of logits and state, key frame then steps."""
    names = ("logits", *STATE_NAMES)
    worst = 0.0
    with torch.no_grad():
        eager = net.key_step(frames[0])
        exported = graphs.key_step(frames[0])
        for t in range(len(frames)):
            if t:
                eager = net.step(frames[t], eager[1])
                exported = graphs.step(frames[t], exported[1])
            pairs = zip(names, (eager[0], *eager[1]), (exported[0], *exported[1]))
            for name, a, b in pairs:
                if a.shape != b.shape:
                    raise OnnxCheckError(
                        f"frame {t}: {name} is {tuple(b.shape)} in ONNX, {tuple(a.shape)} eager"
                    )
                if a.numel():
                    worst = max(worst, float((a - b).abs().max()))
    return worst
