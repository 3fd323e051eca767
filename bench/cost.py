"""Per-frame cost of the static network vs video networks at 360x480 (CamVid's size).

For the copy cell, a cheap sep3x3/conv1x1 cell and a heavy cell, at alpha 2, 4, 8 and beta
1/2, 1/4, 1/8: GFLOPs (2 x multiply-adds) of a key and a non-key frame, the per-frame
average, ratios to the static network, parameters and CPU latency (median ms per frame).

    python bench/cost.py [--json FILE] [--resolution 360x480] [--no-latency]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from evaluation.cost import count_flops, count_params, measure_latency, per_frame  # noqa: E402
from nas.config import parse_resolution  # noqa: E402
from nas.models.config import NetConfig  # noqa: E402
from nas.models.static import StaticSegNet  # noqa: E402
from nas.models.video import VideoSegNet  # noqa: E402
from search_spaces.genotype import ALPHAS, BETAS, Genotype, Node, copy_genotype  # noqa: E402

CELLS = {
    "copy": None,
    "cheap": (
        Node((0, 2), ("sep3x3", "conv1x1")),
        Node((3, 1), ("sep3x3", "conv1x1")),
        Node((4, 0), ("conv1x1", "sep3x3")),
        Node((5, 2), ("sep3x3", "conv1x1")),
    ),
    "heavy": (
        Node((0, 2), ("conv3x3", "sep5x5")),
        Node((3, 1), ("dil3x3_r3", "conv3x3")),
        Node((4, 0), ("warp", "dil3x3_r6")),
        Node((5, 2), ("sepdil5x5_r6", "conv3x3")),
    ),
}


def genotype(cell: str, alpha: int, beta: str) -> Genotype:
    if CELLS[cell] is None:
        return copy_genotype(alpha, beta)
    fusion = "time_to_channel" if cell == "heavy" else "time_strided_sampling"
    return Genotype(alpha, beta, fusion, CELLS[cell], "sum")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--json", help="write the rows to this file")
    p.add_argument("--resolution", default="360x480")
    p.add_argument("--classes", type=int, default=11)
    p.add_argument("--no-latency", action="store_true")
    args = p.parse_args(argv)
    h, w = parse_resolution(args.resolution)
    torch.manual_seed(0)
    config = NetConfig()
    frame = torch.rand(1, 3, h, w)
    static = StaticSegNet(args.classes, config).eval()
    static_gflops = count_flops(static, frame).gflops
    static_ms = None if args.no_latency else measure_latency(static, frame)
    print(
        f"static MobileNetV2 (output stride {config.output_stride}) at {h}x{w}: "
        f"{static_gflops:.3f} GFLOPs/frame, {count_params(static) / 1e6:.2f} M params"
        + (f", {static_ms:.1f} ms" if static_ms else "")
        + f" on {torch.get_num_threads()} "
        "CPU threads"
    )
    rows = [
        {
            "cell": "static",
            "alpha": 1,
            "beta": None,
            "gflops_key": static_gflops,
            "gflops_nonkey": static_gflops,
            "gflops_avg": static_gflops,
            "ratio_nonkey": 1.0,
            "ratio_avg": 1.0,
            "params_m": count_params(static) / 1e6,
            "latency_ms": static_ms,
        }
    ]
    header = (
        f"{'cell':6} {'alpha':>5} {'beta':>5} {'key':>7} {'nonkey':>7} {'avg':>7} "
        f"{'nonkey/static':>13} {'avg/static':>10} {'params M':>8} {'ms/frame':>8}"
    )
    print(header)
    latency: dict[tuple, tuple[float, float]] = {}
    for cell in CELLS:
        for beta in BETAS:
            for alpha in ALPHAS:
                net = VideoSegNet(genotype(cell, alpha, beta), args.classes, config).eval()
                with torch.no_grad():
                    _, state = net.key_step(frame)
                key = count_flops(net.key_step, frame).gflops
                nonkey = count_flops(net.step, frame, state).gflops
                avg = per_frame(key, nonkey, alpha)
                lat = None
                if not args.no_latency:
                    if (cell, beta) not in latency:  # the steps do not depend on alpha
                        latency[(cell, beta)] = (
                            measure_latency(net.key_step, frame),
                            measure_latency(net.step, frame, state),
                        )
                    k_ms, s_ms = latency[(cell, beta)]
                    lat = per_frame(k_ms, s_ms, alpha)
                row = {
                    "cell": cell,
                    "alpha": alpha,
                    "beta": beta,
                    "gflops_key": key,
                    "gflops_nonkey": nonkey,
                    "gflops_avg": avg,
                    "ratio_nonkey": nonkey / static_gflops,
                    "ratio_avg": avg / static_gflops,
                    "params_m": count_params(net) / 1e6,
                    "latency_ms": lat,
                }
                rows.append(row)
                print(
                    f"{cell:6} {alpha:>5} {beta:>5} {key:7.3f} {nonkey:7.3f} {avg:7.3f} "
                    f"{row['ratio_nonkey']:13.3f} {row['ratio_avg']:10.3f} "
                    f"{row['params_m']:8.2f} " + (f"{lat:8.1f}" if lat else f"{'-':>8}")
                )
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
