"""Shared fixtures: one Ray session for the whole test run, one tiny prepared search.

Tiny datasets in the benchmarks' layouts (and the documented cell) are built by plain
functions in tests/fixtures_data.py; tests import them from there, never from each other."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")  # bind 127.0.0.1 only
os.environ.setdefault("TUNE_GLOBAL_CHECKPOINT_S", "0")
# one torch thread in the searches tests start as processes too (see pytest_configure): they
# then reuse the prepared run's latency table, timed on one thread, instead of timing anew
os.environ.setdefault("OMP_NUM_THREADS", "1")


def pytest_configure(config):
    """One torch thread: the tests' tensors are tiny, and OpenMP threads competing with Ray
    workers (or anything else on a 2-core machine) slow them down many times over."""
    import torch

    torch.set_num_threads(1)


def tiny_search_config(**overrides):
    from nas.config import SearchConfig

    base = dict(
        budget="2cpu-minutes",
        resolution=(32, 48),
        clip_len=9,
        train_clips=6,
        val_clips=3,
        teacher_clips=8,
        teacher_steps=20,
        fast_steps=8,
        child_steps=12,
        child_rounds=2,
        child_batch=4,
        workers=2,
        dashboard=False,
        max_children=6,
    )
    base.update(overrides)
    return SearchConfig(**base)


@pytest.fixture(scope="session")
def ray_session():
    """One local Ray session shared by the tests that need it (ray.init costs ~8 s)."""
    import ray

    tmp = tempfile.mkdtemp(prefix="ray-t", dir="/tmp")
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        _temp_dir=tmp,
        log_to_driver=False,
        object_store_memory=128 * 2**20,
    )
    yield ray
    ray.shutdown()
    shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture(scope="session")
def prepared_run(tmp_path_factory) -> Path:
    """A run folder holding a tiny teacher, caches and latency table; copy it to start a
    search fast (timing the table costs about 9 s a search; tests/test_latency.py times it)."""
    from nas.run import latency_table, prepare

    out = tmp_path_factory.mktemp("prepared")
    config = tiny_search_config()
    prepare(config, out)
    latency_table(config, out)
    return out


@pytest.fixture
def fresh_run(prepared_run, tmp_path) -> Path:
    out = tmp_path / "run"
    out.mkdir()
    for part in ("teacher", "cache"):
        shutil.copytree(prepared_run / part, out / part)
    shutil.copy2(prepared_run / "latency.json", out / "latency.json")
    return out
