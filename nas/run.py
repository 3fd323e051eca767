"""Running one search: data -> teacher -> cache -> Ray Tune children -> records and summary."""

from __future__ import annotations

import errno
import json
import os
import re
import sys
import time
from collections.abc import Iterable
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from nas.budget import Budget
from nas.checkpoint import write_json
from nas.config import ChildSettings, SearchConfig
from nas.ctrl_c import raise_if_heard, remembered_ctrl_c
from nas.data.clip import Clip
from nas.pareto import COST_FIELDS, pareto_front
from nas.ray_session import dashboard_line, quiet_ray_resume_advice, start_ray
from nas.records import RunLog, read_records
from nas.run_lock import run_lock


class SearchStopped(RuntimeError):
    """The children phase stopped on an error raised inside Ray Tune (a write to a full disk,
    a failing callback); the message names the error and how to continue."""


DISK_FULL = {errno.ENOSPC, errno.EFBIG, errno.EDQUOT}
_LAST_ERROR = re.compile(r"^([A-Za-z_][\w.]*(?:Error|Exception)): (.*)$", re.MULTILINE)


def stopped_message(error_text: str, out: Path) -> str:
    """One error for a search Ray Tune stopped: the original exception (Ray passes it on as a
    traceback's text), what to do about it, and the records kept."""
    errors = _LAST_ERROR.findall(error_text)
    if errors:
        name, detail = errors[-1]
    else:
        name, detail = "an error", (error_text.strip().splitlines() or ["no message"])[-1]
    code = re.match(r"\[Errno (\d+)\]", detail)
    kept = (
        f"{_children(len(read_records(out / 'trials.jsonl')))} recorded in {out / 'trials.jsonl'}"
    )
    resume = f"continue with --resume --out {out}"
    if code and int(code.group(1)) in DISK_FULL:
        return (
            f"the disk is full (or a file-size limit was reached) while the children ran: "
            f"{name}: {detail}. {kept}; free space where {out} lives, then {resume}"
        )
    return f"the search stopped inside Ray Tune on {name}: {detail}. {kept}; {resume}"


def counted(n: int, one: str, many: str) -> str:
    """``1 child``, ``2 children``: a count with its noun in the right number."""
    return f"{n} {one if n == 1 else many}"


def _children(n: int) -> str:
    return counted(n, "child", "children")


def _log(msg: str) -> None:
    print(msg, flush=True)


def _labelled_frames(clips: Iterable[Clip]) -> list[Clip]:
    """Each clip cut to its labelled frames: all the teacher reads, so real datasets with
    sparse labels (Cityscapes: 1 in 30) stay small in memory."""
    return [clip.subset(clip.labelled) for clip in clips if clip.labelled.any()]


def prepare(config: SearchConfig, out: Path, device: Any = None) -> dict[str, Any]:
    """Teacher and caches for ``config`` in ``out`` (built, resumed or reused) on ``device``
    (a torch device; default CUDA when there is one)."""
    from nas.cache import ensure_cache
    from nas.data import iter_clips, load_clips, num_classes
    from nas.teacher import ensure_teacher

    size = config.resolved_resolution()
    fingerprint = {
        "dataset": config.dataset,
        "size": list(size),
        "clip_len": config.clip_len,
        "root": str(Path(config.data_root).resolve()) if config.data_root else None,
    }
    splits = {"train": config.train_split, "val": config.val_split}
    if splits != {"train": "train", "val": "val"}:  # the default keeps earlier runs' keys
        fingerprint["splits"] = splits
    t0 = time.time()
    clips = {
        part: load_clips(
            config.dataset,
            config.data_root,
            splits[part],
            config.clip_len,
            size,
            max_clips=n,
        )
        for part, n in (("train", config.resolved_train_clips()), ("val", config.val_clips))
    }
    for split, got in clips.items():
        if not got:
            raise ValueError(
                f"{config.dataset} {splits[split]} split gave no clip of "
                f"{config.clip_len} frames: lower clip_len or check --data-root"
            )
    k = num_classes(config.dataset, config.data_root)
    _log(
        f"[data] {config.dataset}: {len(clips['train'])} train and {len(clips['val'])} val "
        f"clips of {config.clip_len} frames at {size[0]}x{size[1]}, {k} classes "
        f"({time.time() - t0:.0f} s)"
    )
    t0 = time.time()
    teacher_clips = config.resolved_teacher_clips()
    ensure_teacher(
        out / "teacher",
        lambda: _labelled_frames(
            iter_clips(
                config.dataset,
                config.data_root,
                config.train_split,
                config.clip_len,
                size,
                max_clips=teacher_clips,
            )
        ),
        k,
        {**fingerprint, "teacher_clips": teacher_clips},
        config.net_config(),
        config.teacher_config(),
        config.seed,
        config.teacher,
        config.resolved_pretrained(),
        device=device,
        log=_log,
    )
    teacher_seconds = time.time() - t0
    t0 = time.time()
    caches = {
        split: ensure_cache(
            out / "cache" / split,
            out / "teacher",
            clips[split],
            {**fingerprint, "split": split},
            device=device,
            log=_log,
        )
        for split in ("train", "val")
    }
    return {
        "teacher_seconds": teacher_seconds,
        "cache_seconds": time.time() - t0,
        "static_gflops": caches["train"].meta["static_gflops"],
    }


def latency_table(config: SearchConfig, out: Path) -> dict[str, Any]:
    """The run's latency table on this machine (nas.latency), timed after the teacher and
    cache and before any child, so nothing of the search's own runs meanwhile; reused by a
    resume on the same machine."""
    from nas.latency import ensure_table
    from nas.models.config import NetConfig
    from nas.teacher_folder import TeacherFolder

    meta = TeacherFolder(out / "teacher").meta()
    return ensure_table(
        out,
        NetConfig(**meta["net"]),
        meta["num_classes"],
        config.resolved_deploy_resolution(),
        config.n_nodes,
        log=_log,
    )


def interrupted_message(out: Path | None) -> str:
    """What a search stopped by Ctrl-C says: what is kept and how to continue."""
    if out is None or not (out / "search.json").is_file():
        return "interrupted before the search started: nothing to continue"
    records = read_records(out / "trials.jsonl")
    recorded = {r.get("proposal_id") for r in records}
    try:
        state = json.loads((out / "searcher.json").read_text())
        stopped = [p for p in state.get("proposals", {}).values() if p["id"] not in recorded]
    except (OSError, ValueError, KeyError, TypeError):
        stopped = []

    flight = (
        f"; {_children(len(stopped))} in flight stopped, to run again on resume" if stopped else ""
    )
    return (
        f"interrupted: {_children(len(records))} recorded in {out / 'trials.jsonl'}{flight}; "
        f"continue with --resume --out {out}"
    )


def budget_lines(budget: Budget, gpus: float, gpus_per_child: float, workers: int) -> list[str]:
    """How the budget is counted on this cluster: device-seconds of the devices children
    actually run on (a gpu budget on a cluster without GPUs counts CPU-worker seconds)."""
    lines = []
    if budget.device == "gpu" and not gpus:
        lines.append(
            f"[search] no GPU in the cluster: the {budget.text} budget counts CPU-worker "
            "seconds instead"
        )
        budget = replace(budget, device="cpu")
    elif budget.device == "cpu" and gpus and gpus_per_child:
        lines.append(
            f"[search] children run on GPUs: the {budget.text} budget counts GPU-worker seconds"
        )
        budget = replace(budget, device="gpu")
    lines.append(f"[search] budget {budget.describe(workers)}")
    return lines


def run_search(
    config: SearchConfig, out: Path, budget: Budget, resume: bool = False
) -> dict[str, Any]:
    """Run (or resume) the search ``config`` with its validated ``budget`` in run folder
    ``out`` (locked for the whole search: RunBusyError if another search holds it); return
    the summary. Ctrl-C raises KeyboardInterrupt out of any phase: the children in flight are
    stopped (Ray's own SIGINT handling, which would end the search as if it had finished, is
    turned off), the records and the searcher state are as the last child left them, and no
    summary.json is written."""
    with run_lock(out):
        return _run_search(config, out, budget, resume)


def _run_search(config: SearchConfig, out: Path, budget: Budget, resume: bool) -> dict[str, Any]:
    os.environ["TUNE_DISABLE_SIGINT_HANDLER"] = "1"  # Ctrl-C raises KeyboardInterrupt
    quiet_ray_resume_advice()
    write_json(out / "search.json", config.to_dict())
    prep = prepare(config, out)
    t0 = time.time()
    latency = latency_table(config, out)
    prep["latency_table_seconds"] = time.time() - t0
    ray, started_here, url = start_ray(config)
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler, FIFOScheduler

    from controllers import make_controller
    from controllers.memo import MemoizedController
    from nas.progress import ProgressLine
    from nas.searcher import BudgetSearcher
    from nas.trainable import child_trainable

    ray_start = time.time()
    try:
        resources = ray.cluster_resources()
        gpus = resources.get("GPU", 0)
        gpus_per_child = config.gpus_per_child or (1.0 if gpus else 0.0)
        workers = config.workers or (
            int(gpus / gpus_per_child) if gpus else int(resources.get("CPU", 1))
        )
        for line in budget_lines(budget, gpus, gpus_per_child, workers):
            _log(line)
        if config.outputs:
            _log(f"[search] the cells' outputs: {config.outputs} only (--outputs)")
        if url:
            _log(dashboard_line(url))
        run_log = RunLog(out, warn=_log)
        controller = MemoizedController(
            make_controller(
                config.controller, config.search_space(), seed=config.seed, **config.ppo
            )
        )
        state_path = out / "searcher.json"
        searcher = BudgetSearcher(
            controller,
            run_log,
            budget.seconds,
            state_path,
            config.controller,
            config.seed,
            config.max_children,
            max_iterations=config.child_rounds,
        )
        if resume and state_path.is_file():
            n = searcher.resume()
            _log(
                f"[search] resumed: {len(run_log.records)} children kept, {n} in flight "
                f"rerun, {searcher.budget_left():.0f} device-seconds left"
            )
        if searcher.budget_left() <= 0:
            _log("[search] the budget is spent already")
        settings = ChildSettings(
            teacher_dir=str((out / "teacher").resolve()),
            train_cache=str((out / "cache" / "train").resolve()),
            val_cache=str((out / "cache" / "val").resolve()),
            children_dir=str((out / "children").resolve()),
            child=config.child_config(),
            reward=config.reward_config(),
            cost=config.cost,
            latency=latency,
        )
        (out / "children").mkdir(exist_ok=True)
        scheduler = (
            ASHAScheduler(
                time_attr="training_iteration",
                max_t=config.child_rounds,
                grace_period=1,
                reduction_factor=2,
            )
            if config.scheduler == "asha"
            else FIFOScheduler()
        )
        trainable = tune.with_resources(
            tune.with_parameters(child_trainable, settings=settings),
            {"cpu": 1, "gpu": gpus_per_child},
        )
        session = (
            sum(1 for _ in (out / "ray_results").glob("session-*"))
            if (out / "ray_results").is_dir()
            else 0
        )
        tuner = tune.Tuner(
            trainable,
            tune_config=tune.TuneConfig(
                search_alg=searcher,
                scheduler=scheduler,
                metric="reward",
                mode="max",
                num_samples=-1,
                max_concurrent_trials=workers,
                reuse_actors=True,
            ),
            run_config=tune.RunConfig(
                storage_path=str((out / "ray_results").resolve()),
                name=f"session-{session}",
                verbose=0,
                callbacks=[ProgressLine(run_log, searcher, budget.seconds)],
                failure_config=tune.FailureConfig(max_failures=0),
            ),
        )
        n_before = len(run_log.records)
        if searcher.budget_left() > 0:
            from ray.tune.error import TuneError

            with remembered_ctrl_c():
                try:
                    tuner.fit()
                except TuneError as exc:  # Ray passes the error on as a traceback's text
                    raise_if_heard()  # the error a Ctrl-C became inside Ray
                    raise SearchStopped(stopped_message(str(exc), out)) from None
                raise_if_heard()  # one that Ray or a library swallowed all the same
        sys.stdout.write("\n")
        new = run_log.records[n_before:]
        span = (searcher.last_end or time.time()) - ray_start
        busy = sum(r.get("device_seconds") or 0 for r in new) / max(workers * span, 1e-9)
        summary = {
            "children": len(run_log.records),
            "children_this_session": len(new),
            "failed": sum(r["status"] == "failed" for r in run_log.records),
            "best": run_log.best(),
            "spent_device_seconds": run_log.spent_seconds(),
            "budget_device_seconds": budget.seconds,
            "workers": workers,
            "busy_share": busy if new else None,
            "wall_seconds_children": span,
            "front": {cost: len(pareto_front(run_log.records, cost)) for cost in COST_FIELDS},
            **prep,
            "config": asdict(config),
        }
        write_json(out / "summary.json", summary)
        if run_log.records:
            run_log.plot()
            run_log.update_front()
        run_log.close()
        _log(
            f"[search] {_children(len(new))} this session in {span:.0f} s on "
            f"{counted(workers, 'worker', 'workers')}: busy share {busy:.2f}; "
            f"teacher {prep['teacher_seconds']:.0f} s, cache {prep['cache_seconds']:.0f} s "
            f"and latency table {prep['latency_table_seconds']:.0f} s before that; the front "
            f"holds {counted(summary['front']['gflops'], 'cell', 'cells')} by GFLOPs and "
            f"{summary['front']['latency']} by latency ({out / 'pareto.json'}, {out / 'front.png'})"
        )
        return summary
    finally:
        if started_here:
            ray.shutdown()
