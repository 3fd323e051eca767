"""The Ray Tune function trainable: one child per trial, reporting after every round.

A child that diverges or raises reports ``status: failed`` (reward NaN) and returns, so the
search goes on. Weights are saved before each report: a scheduler may stop the trial there.
Every report also says where the child ran: the ``gpu_ids`` Ray gave it ("0", "" for none),
the torch ``device`` it chose, its node and ``started_at`` (time.time(); Ray adds ``pid``).
"""

from __future__ import annotations

import math
import os
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


def _in_ray():
    """The ray module when this process is connected to Ray, else None: outside Ray, asking
    for the runtime context would start a local Ray instance."""
    try:
        import ray
    except ImportError:  # a machine without Ray (the GPU check)
        return None
    return ray if ray.is_initialized() else None


def _node_id() -> str | None:
    ray = _in_ray()
    try:
        return ray.get_runtime_context().get_node_id() if ray else None
    except Exception:
        return None


DEVICE_ENV = "NAS_CHILD_DEVICE"
"""Set to ``cpu`` (in the environment Ray's workers start in) to train every child on one CPU
thread even when Ray gave it a GPU: a deliberate choice, never a silent fall-back."""


class NoCudaForGpuError(RuntimeError):
    """Ray gave a child a GPU, but this process's torch cannot use one."""


def ray_gpu_ids() -> list[str]:
    """The GPU ids Ray assigned to this trial ([] outside Ray or for a 0-GPU trial)."""
    ray = _in_ray()
    try:
        return [str(i) for i in ray.get_gpu_ids()] if ray else []
    except Exception:  # the driver of a session without GPUs, say
        return []


def _cpu() -> torch.device:
    torch.set_num_threads(1)  # Ray runs one child per core
    return torch.device("cpu")


def device_for(gpu_ids: list[str], override: str | None = None) -> torch.device:
    """The device of a child that Ray gave ``gpu_ids``: CUDA when it gave one and torch sees
    one (the assigned GPU: Ray lists it in CUDA_VISIBLE_DEVICES), the CPU (one thread) when
    it gave none. A 0-GPU trial inherits the driver's CUDA_VISIBLE_DEVICES, so torch seeing
    a GPU does not mean the trial has one. A GPU that torch cannot use is an error, never a
    silent fall-back to the CPU; ``override`` (default: $NAS_CHILD_DEVICE) ``cpu`` chooses
    the CPU knowingly."""
    override = (override if override is not None else os.environ.get(DEVICE_ENV, "")).lower()
    if override not in ("", "auto", "cpu"):
        raise ValueError(f"{DEVICE_ENV}={override!r}: use cpu, auto or leave it unset")
    if override == "cpu" or not gpu_ids:
        return _cpu()
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if not torch.cuda.is_available():
        raise NoCudaForGpuError(
            f"Ray gave this child GPU {','.join(gpu_ids)} but torch {torch.__version__} sees "
            f"no CUDA device (CUDA_VISIBLE_DEVICES={visible!r}, torch built for CUDA "
            f"{torch.version.cuda}). Fix: install a CUDA build of torch on every node that "
            "declares GPUs, or declare none (ray start --num-gpus 0) so children run on CPU "
            f"cores, or set {DEVICE_ENV}=cpu where the Ray workers start to train them on "
            "the CPU anyway"
        )
    if visible is None:  # Ray told not to set CUDA_VISIBLE_DEVICES: ids are device indices
        index = int(gpu_ids[0]) if gpu_ids[0].isdigit() else 0
    else:
        listed = [v.strip() for v in visible.split(",")]
        index = listed.index(gpu_ids[0]) if gpu_ids[0] in listed else 0
    return torch.device("cuda", index)


def child_device() -> torch.device:
    """The device of the child this Ray trial runs (see ``device_for``)."""
    return device_for(ray_gpu_ids())


def child_trainable(config: dict[str, Any], settings: ChildSettings) -> None:
    """Train and evaluate the genotype in ``config`` (a BudgetSearcher proposal with the
    child's ``seed``); ``settings`` are what every child of the search shares."""
    from ray import tune

    t0 = time.time()
    base = {
        "proposal_id": config["proposal_id"],
        "node_id": _node_id(),
        "gpu_ids": ",".join(ray_gpu_ids()),  # a string: Tune's loggers take no str lists
        "started_at": t0,
        "seed": config["seed"],
        "stopped_early": False,
    }
    try:
        device = child_device()
        base["device"] = str(device)
        run = ChildRun(
            Genotype.from_dict(config["genotype"]),
            Path(settings.teacher_dir),
            _cache(settings.train_cache),
            _cache(settings.val_cache),
            settings.child,
            settings.reward,
            seed=config["seed"],
            device=device,
            cost=settings.cost,
            latency_table=settings.latency,
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
