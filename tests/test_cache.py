"""The teacher feature cache: reused when it matches, rebuilt when its key is stale, resumed
at the first clip not written after an interruption, and never opened half-built."""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
import torch

from nas.cache import FeatureCache, ensure_cache
from nas.checkpoint import read_json, write_json
from nas.data import load_clips
from nas.data.clip import Clip

FINGERPRINT = {"dataset": "synthetic", "size": [32, 48], "clip_len": 4, "root": None}
CPU = torch.device("cpu")


class Clips(Sequence):
    """The clips, recording which were read; reading clip ``fail_at`` raises once."""

    def __init__(self, clips: list[Clip], fail_at: int | None = None):
        self.clips, self.fail_at, self.read = clips, fail_at, []

    def __len__(self) -> int:
        return len(self.clips)

    def __getitem__(self, i: int) -> Clip:
        self.read.append(i)
        if i == self.fail_at:
            self.fail_at = None
            raise OSError(f"clip {i} could not be read")
        return self.clips[i]


@pytest.fixture(scope="module")
def clips() -> list[Clip]:
    return load_clips("synthetic", None, "train", clip_len=4, size=(32, 48), max_clips=3)


@pytest.fixture(scope="module")
def teacher(prepared_run) -> Path:
    return prepared_run / "teacher"


@pytest.fixture(scope="module")
def reference(teacher, clips, tmp_path_factory) -> FeatureCache:
    """One uninterrupted build, the arrays every other build must reproduce."""
    path = tmp_path_factory.mktemp("cache") / "reference"
    return ensure_cache(path, teacher, clips, FINGERPRINT, CPU, log=lambda _: None)


def assert_same_arrays(cache: FeatureCache, reference: FeatureCache) -> None:
    assert cache.meta["arrays"] == reference.meta["arrays"]
    for name in reference.meta["arrays"]:
        np.testing.assert_array_equal(cache.arrays[name], reference.arrays[name], err_msg=name)


def test_a_built_cache_holds_every_frame_and_is_reused_as_it_is(reference, teacher, clips):
    meta = read_json(reference.path / "meta.json")
    assert meta["complete"] and meta["done"] == 3
    assert (reference.num_clips, reference.clip_len) == (3, 4)
    assert reference.labels.shape == (3, 4, 32, 48)
    assert np.abs(reference.slow.astype(np.float32)).sum(axis=(2, 3, 4)).min() > 0
    for beta in ("1/2", "1/4", "1/8"):
        assert reference.fast(beta).shape[:2] == (3, 4)
    np.testing.assert_array_equal(reference.labels[1], clips[1].labels)

    logged: list[str] = []
    read = Clips(clips)
    again = ensure_cache(reference.path, teacher, read, FINGERPRINT, CPU, log=logged.append)
    assert logged == [] and set(read.read) == {0}  # only its shape was looked at
    assert_same_arrays(again, reference)


@pytest.mark.parametrize("stale", ["fingerprint", "teacher"])
def test_a_cache_for_another_fingerprint_or_teacher_is_rebuilt(
    stale, reference, teacher, clips, tmp_path
):
    path = tmp_path / "cache"
    shutil.copytree(reference.path, path)
    garbage = np.lib.format.open_memmap(path / "slow.npy", "r+")
    garbage[:] = 7.0  # what the stale cache holds must not survive
    garbage.flush()
    del garbage
    fingerprint = FINGERPRINT
    if stale == "fingerprint":  # the same frames, said to come from elsewhere
        fingerprint = {**FINGERPRINT, "root": "/elsewhere"}
    else:  # the same weights, another teacher as far as its key says
        other = tmp_path / "teacher"
        shutil.copytree(teacher, other)
        meta = read_json(other / "teacher.json")
        meta["key"] = "another-teacher"
        write_json(other / "teacher.json", meta)
        teacher = other
    logged: list[str] = []
    cache = ensure_cache(path, teacher, clips, fingerprint, CPU, log=logged.append)
    assert any("rebuilding" in line for line in logged), logged
    assert cache.meta["complete"] and cache.meta["fingerprint"] == fingerprint
    assert cache.meta["teacher_key"] == read_json(teacher / "teacher.json")["key"]
    assert_same_arrays(cache, reference)


def test_a_build_killed_by_a_failing_clip_resumes_at_the_first_clip_not_written(
    reference, teacher, clips, tmp_path
):
    path = tmp_path / "cache"
    flaky = Clips(clips, fail_at=2)
    with pytest.raises(OSError, match="clip 2"):
        ensure_cache(path, teacher, flaky, FINGERPRINT, CPU, log=lambda _: None)
    meta = read_json(path / "meta.json")
    assert meta["done"] == 2 and not meta["complete"]
    with pytest.raises(RuntimeError, match=r"cache .* is incomplete"):
        FeatureCache(path)

    logged: list[str] = []
    again = Clips(clips)
    cache = ensure_cache(path, teacher, again, FINGERPRINT, CPU, log=logged.append)
    assert any("resuming" in line and "clip 2/3" in line for line in logged), logged
    assert 1 not in again.read and again.read[-1] == 2  # 0 read for its shape, 1 kept
    assert_same_arrays(cache, reference)


def test_a_cache_rolled_back_to_fewer_clips_recomputes_the_rest(
    reference, teacher, clips, tmp_path
):
    path = tmp_path / "cache"
    shutil.copytree(reference.path, path)
    meta = read_json(path / "meta.json")
    meta["done"], meta["complete"] = 1, False
    write_json(path / "meta.json", meta)
    for name in meta["arrays"]:  # what a kill leaves past the last clip written: anything
        array = np.lib.format.open_memmap(path / f"{name}.npy", "r+")
        array[1:] = 0
        array.flush()
        del array
    with pytest.raises(RuntimeError, match="incomplete: rerun the search"):
        FeatureCache(path)

    logged: list[str] = []
    read = Clips(clips)
    cache = ensure_cache(path, teacher, read, FINGERPRINT, CPU, log=logged.append)
    assert any("resuming" in line and "clip 1/3" in line for line in logged), logged
    assert {1, 2} <= set(read.read)
    assert_same_arrays(cache, reference)
