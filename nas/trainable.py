"""The Ray Tune function trainable: one child per trial, reporting after every round.

A child that diverges or raises reports ``status: failed`` (reward NaN) and returns, so the
search goes on. Weights are saved before each report: a scheduler may stop the trial there.
"""

from __future__ import annotations

import math
import time
import traceback
from pathlib import Path
from typing import Any

import torch

from nas.cache import FeatureCache
from nas.child import ChildRun, save_child
from nas.config import ChildSettings
from search_spaces.genotype import Genotype

_CACHES: dict[str, FeatureCache] = {}  # per worker process: reused actors open a cache once


def _cache(path: str) -> FeatureCache:
    if path not in _CACHES:
        _CACHES[path] = FeatureCache(Path(path))
    return _CACHES[path]


def _node_id() -> str | None:
    try:
        import ray

        return ray.get_runtime_context().get_node_id()
    except Exception:  # outside Ray (tests, benchmarks)
        return None


def child_device() -> torch.device:
    """CUDA when Ray gave this trial a GPU, else the CPU (one thread: Ray runs a child per
    core). A 0-GPU trial inherits the driver's CUDA_VISIBLE_DEVICES, so torch seeing a GPU
    does not mean the trial has one."""
    try:
        import ray

        use_gpu = len(ray.get_gpu_ids()) > 0
    except Exception:
        use_gpu = False
    device = torch.device("cuda" if use_gpu and torch.cuda.is_available() else "cpu")
    if device.type == "cpu":
        torch.set_num_threads(1)
    return device


def child_trainable(config: dict[str, Any], settings: ChildSettings) -> None:
    """Train and evaluate the genotype in ``config`` (a BudgetSearcher proposal with the
    child's ``seed``); ``settings`` are what every child of the search shares."""
    from ray import tune

    t0 = time.time()
    base = {
        "proposal_id": config["proposal_id"],
        "node_id": _node_id(),
        "seed": config["seed"],
        "stopped_early": False,
    }
    try:
        run = ChildRun(
            Genotype.from_dict(config["genotype"]),
            Path(settings.teacher_dir),
            _cache(settings.train_cache),
            _cache(settings.val_cache),
            settings.child,
            settings.reward,
            seed=config["seed"],
            device=child_device(),
        )
        out = Path(settings.children_dir) / f"{config['proposal_id']}.safetensors"

        def report(result: dict[str, Any]) -> None:
            tune.report({**base, **result, "status": "ok", "device_seconds": time.time() - t0})

        run.run(report, save=lambda: save_child(run.net, out))
    except Exception as exc:  # a failed child must not end the search
        tune.report(
            {
                **base,
                "status": "failed",
                "reward": math.nan,
                "error": f"{type(exc).__name__}: {exc}",
                "traceback": traceback.format_exc(limit=5),
                "device_seconds": time.time() - t0,
            }
        )
