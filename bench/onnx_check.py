"""ONNX vs eager: the largest absolute difference of ``key_step`` / ``step`` for many cells.

    python -m bench.onnx_check [--genotypes 20] [--seed 0] [--resolution 64x96]
    python -m bench.onnx_check --run RUN [--top 20]     # a search's trained children

Each cell is exported exactly as ``nas.export --format onnx`` does (nas.onnx_export: opset
17, one key frame and alpha - 1 steps compared under onnxruntime, each side carrying its own
state). The table gives per cell the largest difference of logits and state, beside the
float32 rounding noise of the same eager network (its difference from itself in float64 on
the same frames: what no export can go below), the largest logit, and the share of pixels
each gated conv computed (its gate is a hard threshold: both sides of it must be seen).
Target: every difference <= 1e-4.

Sampled genotypes get a video network (MobileNetV2 x0.35, 16-channel state, 3 classes) made
as training would leave one, at random (``randomize``). ``--run`` takes the best trained
children of a search instead, at the search's resolution and backbone.
"""

from __future__ import annotations

import argparse
import copy
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch import nn

from nas.checkpoint import read_json
from nas.config import resolution_arg
from nas.export import assemble, top_records
from nas.models.config import NetConfig
from nas.models.video import VideoSegNet
from nas.onnx_export import OPSET, TOLERANCE, check_frames, export_onnx
from search_spaces.genotype import Genotype
from search_spaces.ops import OP_NAMES, GatedConv
from search_spaces.space import SearchSpace

NET = NetConfig(width_mult=0.35, deep_channels=16)
ZERO_INIT_STD = 0.1  # weights initialised at zero (warp's offset, the residual gain) drawn so
GATE_SCALE = 3.0  # gates widened so they open on some pixels, not none
CALIBRATION_FRAMES = 8
VAR_FLOOR = 0.1
"""Least BatchNorm variance: a channel a random network leaves almost constant would be
scaled up by as much as 1/sqrt(eps) = 316, and its rounding noise with it (a trained network
shrinks such a channel's gain instead); at a floor of 0.01 the float32 noise of these networks
alone reaches 1e-4."""


def randomize(net: VideoSegNet, seed: int, resolution: tuple[int, int]) -> VideoSegNet:
    """A network as training would leave it, at random: every weight initialised at zero
    drawn like the others, gates widened, and every BatchNorm's statistics measured on random
    frames (made-up statistics collapse a random network's features to constants, and an
    exporter's error in an op would not show). Eval mode."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in net.parameters():
            if not parameter.any():
                parameter.normal_(0.0, ZERO_INIT_STD, generator=generator)
        for module in net.modules():
            if isinstance(module, GatedConv):
                module.gate.weight.mul_(GATE_SCALE)
    norms = [m for m in net.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None  # a plain average over the calibration frames
    frames = torch.rand(CALIBRATION_FRAMES, 1, 3, *resolution, generator=generator)
    with torch.no_grad():
        net.train()
        _, state = net.key_step(frames[0])
        for frame in frames[1:]:
            _, state = net.step(frame, state)
    for norm in norms:
        norm.momentum = 0.1
        norm.running_var.clamp_(min=VAR_FLOOR)
    return net.eval()


def float32_noise(net: VideoSegNet, resolution: tuple[int, int]) -> tuple[float, float]:
    """(largest difference of the eager network from itself in float64, largest |logit|)
    over the frames the export check uses."""
    wide = copy.deepcopy(net).double()
    frames = check_frames(net.alpha, resolution)
    worst, largest = 0.0, 0.0
    with torch.no_grad():
        narrow_out = net.key_step(frames[0])
        wide_out = wide.key_step(frames[0].double())
        for t in range(len(frames)):
            if t:
                narrow_out = net.step(frames[t], narrow_out[1])
                wide_out = wide.step(frames[t].double(), wide_out[1])
            largest = max(largest, float(narrow_out[0].abs().max()))
            for a, b in zip((narrow_out[0], *narrow_out[1]), (wide_out[0], *wide_out[1])):
                if a.numel():
                    worst = max(worst, float((a.double() - b).abs().max()))
    return worst, largest


def check_cell(net: VideoSegNet, resolution: tuple[int, int]) -> dict:
    """The export check of one network, its float32 noise and its gates' densities."""
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as folder:
        difference = export_onnx(net, resolution, Path(folder), tolerance=float("inf"))
    seconds = time.perf_counter() - start
    densities = [m.last_density for m in net.cell.computed_ops() if isinstance(m, GatedConv)]
    noise, largest = float32_noise(net, resolution)
    return {
        "difference": difference,
        "noise": noise,
        "largest": largest,
        "densities": densities,
        "seconds": seconds,
    }


def sampled_cells(first: int, count: int, resolution: tuple[int, int]):
    """(label, network) of ``count`` sampled genotypes on randomized networks."""
    space = SearchSpace()
    for seed in range(first, first + count):
        torch.manual_seed(seed)
        genotype = space.sample(seed)
        yield f"seed {seed}", randomize(VideoSegNet(genotype, 3, NET), seed, resolution)


def trained_cells(run: Path, top: int):
    """(label, network) of a search's ``top`` best recorded children, trained."""
    for record in top_records(run, top):
        yield record["proposal_id"], assemble(run, record)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m bench.onnx_check",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--genotypes", type=int, default=20, help="cells to sample (default 20)")
    p.add_argument("--seed", type=int, default=0, help="first sampling seed (default 0)")
    p.add_argument(
        "--resolution", type=resolution_arg, default=(64, 96), help="HxW (default 64x96)"
    )
    p.add_argument("--run", type=Path, help="a search's run folder: its trained children")
    p.add_argument("--top", type=int, default=20, help="with --run: how many (default 20)")
    p.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.run:
        resolution = tuple(read_json(args.run / "cache" / "val" / "meta.json")["size"])
        cells = trained_cells(args.run, args.top)
        what = f"the {args.top} best children of {args.run}"
    else:
        resolution = args.resolution
        cells = sampled_cells(args.seed, args.genotypes, resolution)
        what = f"{args.genotypes} sampled genotypes (seeds {args.seed}..)"
    print(f"torch {torch.__version__}, opset {OPSET}, {resolution[0]}x{resolution[1]}, {what}")
    print(
        "| cell | alpha | beta | fusion | output | ops | gated density | max abs diff "
        "| float32 noise | max logit | s |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    worst, seen = 0.0, set()
    for label, net in cells:
        genotype: Genotype = net.genotype
        result = check_cell(net, resolution)
        worst = max(worst, result["difference"])
        ops = [op for node in genotype.nodes for op in node.ops]
        seen.update(ops)
        density = ", ".join(f"{d:.2f}" for d in result["densities"]) or "-"
        print(
            f"| {label} | {genotype.alpha} | {genotype.beta} | {genotype.fusion} | "
            f"{genotype.output} | {' '.join(ops)} | {density} | {result['difference']:.2e} | "
            f"{result['noise']:.2e} | {result['largest']:.2f} | {result['seconds']:.1f} |",
            flush=True,
        )
    missing = [op for op in OP_NAMES if op not in seen]
    print(f"ops covered: {len(OP_NAMES) - len(missing)} of {len(OP_NAMES)}", end="")
    print(f" (missing: {', '.join(missing)})" if missing else "")
    verdict = "all within" if worst <= TOLERANCE else "ABOVE"
    print(f"max abs difference over all cells: {worst:.2e} ({verdict} {TOLERANCE:g})")
    return 0 if worst <= TOLERANCE else 1


if __name__ == "__main__":
    sys.exit(main())
