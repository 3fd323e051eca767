"""Latency table vs the real network: predicted and measured per-frame latency of sampled cells.

Builds the per-device latency table a search builds (nas/latency.py) for the synthetic
default network at its resolution (or another backbone / resolution), then for each of
``--cells`` sampled genotypes times the real VideoSegNet's key_step and step (eval, batch 1,
median of warm runs) and compares them with the table's prediction. Prints one row per cell,
the median absolute relative error (per-frame, key, non-key) and the table's build time.

On a machine shared with other work, the neighbours' load comes in phases of seconds that
slow everything by tens of percent, so a table built in a quiet phase mispredicts networks
timed in a busy one. The bench therefore times the table twice: alone (as a search does:
the build time and the first error figure), and together with the networks, in the same
passes (the second figure: the prediction's own error, the neighbours weighing on both
alike). Wall times of long calls also swell when the scheduler takes the core away
mid-call: ``--clock cpu`` (one thread) counts this thread's CPU time instead.

    python bench/latency.py [--cells 30] [--threads 1] [--clock wall|cpu] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from evaluation.cost import per_frame  # noqa: E402
from nas.config import SearchConfig, parse_resolution  # noqa: E402
from nas.data import num_classes  # noqa: E402
from nas.latency import Job, build_table, device_name, plan_table, predict, time_jobs  # noqa: E402
from nas.models.video import VideoSegNet  # noqa: E402
from search_spaces.genotype import Genotype  # noqa: E402
from search_spaces.space import SearchSpace  # noqa: E402

CLOCKS = {"wall": time.perf_counter, "cpu": time.thread_time}


def network_jobs(nets: list[VideoSegNet], frame: torch.Tensor) -> dict[str, Job]:
    """Each whole network's key_step and step as jobs to time."""
    jobs = {}
    with torch.inference_mode():
        for i, net in enumerate(nets):
            jobs[f"{i}/key"] = (net.key_step, (frame,))
            jobs[f"{i}/step"] = (net.step, (frame, net.key_step(frame)[1]))
    return jobs


def compare(
    genotypes: list[Genotype], table: dict, measured: dict[str, float]
) -> list[dict[str, Any]]:
    """One row per cell: predicted and measured key, non-key and per-frame ms, errors."""
    rows = []
    for i, genotype in enumerate(genotypes):
        key, nonkey = measured[f"{i}/key"], measured[f"{i}/step"]
        guess = predict(table, genotype)
        per_frame_ms = per_frame(key, nonkey, genotype.alpha)
        rows.append(
            {
                "genotype": genotype.to_dict(),
                "predicted_key_ms": guess.key_ms,
                "predicted_nonkey_ms": guess.nonkey_ms,
                "predicted_ms": guess.per_frame_ms,
                "measured_key_ms": key,
                "measured_nonkey_ms": nonkey,
                "measured_ms": per_frame_ms,
                "error": relative_error(guess.per_frame_ms, per_frame_ms),
                "error_key": relative_error(guess.key_ms, key),
                "error_nonkey": relative_error(guess.nonkey_ms, nonkey),
            }
        )
    return rows


def print_rows(rows: list[dict[str, Any]]) -> None:
    print(
        f"{'':27}predicted / measured\n{'cell':>4} {'alpha':>5} {'beta':>4} {'output':>8} "
        f"{'key ms':>15} {'non-key ms':>15} {'per-frame ms':>15} {'error':>7}"
    )
    for i, r in enumerate(rows):
        g = r["genotype"]
        print(
            f"{i:>4} {g['alpha']:>5} {g['beta']:>4} {g['output']:>8} "
            f"{r['predicted_key_ms']:6.2f} / {r['measured_key_ms']:6.2f} "
            f"{r['predicted_nonkey_ms']:6.2f} / {r['measured_nonkey_ms']:6.2f} "
            f"{r['predicted_ms']:6.2f} / {r['measured_ms']:6.2f} {r['error']:+7.1%}"
        )


def errors(rows: list[dict[str, Any]]) -> dict[str, float]:
    """Median absolute relative errors (per frame, key, non-key) and the worst per frame."""
    return {
        "median_abs_error": statistics.median(abs(r["error"]) for r in rows),
        "median_abs_error_key": statistics.median(abs(r["error_key"]) for r in rows),
        "median_abs_error_nonkey": statistics.median(abs(r["error_nonkey"]) for r in rows),
        "max_abs_error": max(abs(r["error"]) for r in rows),
    }


def describe(label: str, e: dict[str, float], cells: int) -> str:
    return (
        f"{label}: median |error| per frame {e['median_abs_error']:.1%} (key "
        f"{e['median_abs_error_key']:.1%}, non-key {e['median_abs_error_nonkey']:.1%}, worst "
        f"per frame {e['max_abs_error']:.1%}) over {cells} cells"
    )


def relative_error(predicted: float, measured: float) -> float:
    return (predicted - measured) / measured


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--cells", type=int, default=30, help="sampled genotypes (default 30)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, help="torch CPU threads (default: torch's)")
    p.add_argument("--dataset", default="synthetic", help="whose default network and size")
    p.add_argument("--backbone", help="mobilenet_v2 or efficientnet_lite0 (default: dataset's)")
    p.add_argument("--resolution", help="deploy resolution HxW (default: the dataset's)")
    p.add_argument("--device", default="cpu")
    p.add_argument(
        "--clock",
        choices=tuple(CLOCKS),
        default="wall",
        help="wall time (default), or this thread's CPU time (needs --threads 1)",
    )
    p.add_argument("--json", help="write every row and the summary to this file")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.clock == "cpu" and (torch.get_num_threads() != 1 or args.device != "cpu"):
        p.error("--clock cpu times one thread on the CPU: add --threads 1")
    clock = CLOCKS[args.clock]
    config = SearchConfig(dataset=args.dataset, backbone=args.backbone)
    net_config = config.net_config()
    size = parse_resolution(args.resolution) if args.resolution else config.resolved_resolution()
    classes = num_classes(args.dataset)
    device = torch.device(args.device)
    name = device_name(device)
    print(
        f"{net_config.backbone} x{net_config.width_mult} (stride {net_config.output_stride}), "
        f"{classes} classes, {size[0]}x{size[1]}, batch 1, eval, on {name}, {args.clock} clock"
    )
    t0 = time.time()
    alone = build_table(net_config, classes, size, config.n_nodes, device, clock)
    build_seconds = time.time() - t0
    print(
        f"table alone: {len(alone['entries'])} parts in {build_seconds:.1f} s; ops run "
        f"{alone['cell_factor']:.2f}x their own time inside a step"
    )
    space = SearchSpace(config.n_nodes)
    genotypes = [space.sample(args.seed + i) for i in range(args.cells)]
    nets = [VideoSegNet(g, classes, net_config).eval().to(device) for g in genotypes]
    frame = torch.rand(1, 3, *size, device=device)
    cells = network_jobs(nets, frame)
    print("networks, then the table again with them, in the same passes ...")
    rows_alone = compare(genotypes, alone, time_jobs(cells, device, clock))
    plan = plan_table(net_config, classes, size, config.n_nodes, device)
    measured = time_jobs({**plan.jobs, **cells}, device, clock)
    together = plan.table(measured)
    rows = compare(genotypes, together, measured)
    for label, table in (("alone", alone), ("with the networks", together)):
        for warning in table["warnings"]:
            print(f"warning, table {label}: {warning}")
    print("\ntable timed with the networks:")
    print_rows(rows)
    summary = {
        "device": name,
        "clock": args.clock,
        "cells": len(rows),
        "table_alone": errors(rows_alone),
        "table_with_networks": errors(rows),
        "table_build_seconds": build_seconds,
    }
    print(describe("table built alone, networks timed after it", summary["table_alone"], len(rows)))
    print(describe("table timed with the networks", summary["table_with_networks"], len(rows)))
    print(f"table built in {build_seconds:.1f} s (targets: median |error| <= 10%, < 120 s)")
    if args.json:
        Path(args.json).write_text(
            json.dumps({"summary": summary, "rows": rows, "rows_table_alone": rows_alone}, indent=2)
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
