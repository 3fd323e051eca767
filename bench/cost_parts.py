"""Where a frame's GFLOPs go: the static network by part, and a cell's non-key frame by part
down to each op of the cell, as shares of the static network's GFLOPs.

    python -m bench.cost_parts [--cell docs/cell.json] [--backbone efficientnet_lite0_s16]
                               [--resolution 240x427] [--classes 2]

Why: a non-key frame's budget is split between fresh evidence from the frame itself (the fast
encoder) and the work of carrying the key frame's features forward (fusion, cell ops, head);
this says how a cell splits it. The network is freshly initialised: a gated op's sparse branch
is counted at the density of its initial gate, not of a trained one.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
from torch import nn

from bench.cli import REPO
from evaluation.cost import CostReport, count_flops, count_flops_of_parts, per_frame
from nas.config import REAL_DATA_BACKBONE, parse_resolution
from nas.models.backbones import BACKBONES
from nas.models.config import NetConfig
from nas.models.video import State, VideoSegNet
from search_spaces.genotype import Genotype, GenotypeError


def static_parts(net: VideoSegNet, frame: torch.Tensor) -> dict[str, CostReport]:
    """GFLOPs of the static network's backbone parts, neck and head on one frame."""
    slow, parts = net.slow, {}
    with torch.no_grad():
        x = slow.normalize(frame)
        for name in ("early", "shallow", "deep"):
            stage = getattr(slow.backbone, name)
            parts[f"backbone {name}"] = count_flops(stage, x)
            x = stage(x)
        parts["neck"] = count_flops(slow.neck, x)
        parts["head"] = count_flops(slow.head, slow.neck(x))
    return parts


def full_buffer_state(net: VideoSegNet, frames: torch.Tensor) -> State:
    """The state the last frame of a window meets: a key step, then a step on every frame
    between (``frames``: alpha x 3 x H x W)."""
    with torch.no_grad():
        _, state = net.key_step(frames[:1])
        for t in range(1, len(frames) - 1):
            _, state = net.step(frames[t : t + 1], state)
    return state


def nonkey_parts(
    net: VideoSegNet, frames: torch.Tensor
) -> tuple[dict[str, CostReport], CostReport]:
    """GFLOPs of each part of the last non-key step of a window (a full fast buffer): fast
    encoder, its projection, the fusion, every op of the cell, the non-key head, and the rest
    of the step (a concat cell's combining conv); and of the whole step. ``frames``: alpha x
    3 x H x W."""
    modules: dict[str, nn.Module] = {}
    if net.fast is not None:
        modules.update({"fast encoder": net.fast.encoder, "fast projection": net.fast.proj})
        if net.fast.fusion is not None:
            modules[f"fusion {net.genotype.fusion}"] = net.fast.fusion
    for i, (node, pair) in enumerate(zip(net.genotype.nodes, net.cell.ops)):
        for inp, name, op in zip(node.inputs, node.ops, pair):
            modules[f"node {i + 3} {name}({inp})"] = op
    modules["non-key head"] = net.step_head
    whole = count_flops_of_parts(net.step, modules, frames[-1:], full_buffer_state(net, frames))
    parts = {
        name: CostReport(whole.by_module.get(name, 0.0), whole.dense_by_module.get(name, 0.0))
        for name in modules
    }
    parts["rest"] = CostReport(  # max: float noise when it adds nothing
        max(0.0, whole.gflops - sum(r.gflops for r in parts.values())),
        max(0.0, whole.dense_gflops - sum(r.dense_gflops for r in parts.values())),
    )
    return parts, whole


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m bench.cost_parts",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--cell", type=Path, default=REPO / "docs" / "cell.json")
    p.add_argument("--backbone", choices=tuple(BACKBONES), default=REAL_DATA_BACKBONE)
    p.add_argument("--resolution", default="240x427")
    p.add_argument("--classes", type=int, default=2)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        cell = Genotype.load(args.cell)
        h, w = parse_resolution(args.resolution)
    except (GenotypeError, ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    torch.manual_seed(0)
    net = VideoSegNet(cell, args.classes, NetConfig(backbone=args.backbone)).eval()
    frames = torch.rand(cell.alpha, 3, h, w)
    static = static_parts(net, frames[:1])
    nonkey, nonkey_all = nonkey_parts(net, frames)
    static_all = count_flops(net.slow, frames[:1])
    key_all = count_flops(net.key_step, frames[:1])  # the static network and the fast encoder
    base = static_all.gflops
    print(
        f"{args.cell} (alpha {cell.alpha}, beta {cell.beta}) on {args.backbone} at {h}x{w}: "
        f"static {base:.4f} GFLOPs; shares of it (dense: gated ops on every pixel)"
    )
    print(f"{'part':38} {'GFLOPs':>8} {'share':>7} {'dense':>7}")
    for title, parts, whole in (
        ("static frame", static, static_all),
        ("key frame", {}, key_all),
        ("non-key frame", nonkey, nonkey_all),
    ):
        for name, r in [*parts.items(), ("all", whole)]:
            print(
                f"{title + ': ' + name:38} {r.gflops:8.4f} {r.gflops / base:7.1%} "
                f"{r.dense_gflops / base:7.1%}"
            )
    for density, g in (("", nonkey_all.gflops), ("dense ", nonkey_all.dense_gflops)):
        avg = per_frame(key_all.gflops, g, cell.alpha)
        print(f"per frame at alpha {cell.alpha}, {density}non-key: {avg / base:.1%} of static")
    return 0


if __name__ == "__main__":
    sys.exit(main())
