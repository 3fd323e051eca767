"""The teacher's data: many clips' labelled frames, loaded only when there is training to do."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from nas.checkpoint import read_json
from nas.config import SearchConfig
from nas.data import load_clips
from nas.models.config import NetConfig
from nas.run import _labelled_frames, prepare
from nas.teacher import TeacherConfig, ensure_teacher, teacher_key
from tests.conftest import tiny_search_config


def test_labelled_frames_keeps_only_frames_with_ground_truth():
    clip = load_clips("synthetic", None, "train", clip_len=5, size=(16, 24), max_clips=1)[0]
    clip.labelled[[1, 3]] = False
    clip.labels[[1, 3]] = 255
    unlabelled = load_clips("synthetic", None, "train", clip_len=5, size=(16, 24), max_clips=1)[0]
    unlabelled.labelled[:] = False
    kept = _labelled_frames([clip, unlabelled])
    assert len(kept) == 1
    assert kept[0].frame_ids == [clip.frame_ids[i] for i in (0, 2, 4)]
    np.testing.assert_array_equal(kept[0].frames, clip.frames[[0, 2, 4]])
    np.testing.assert_array_equal(kept[0].labels, clip.labels[[0, 2, 4]])
    assert kept[0].labelled.all()


def test_teacher_learns_from_more_clips_than_the_cache(prepared_run):
    """The tiny config caches 6 train clips but its teacher read 8 clips' frames."""
    config = tiny_search_config()
    assert config.resolved_teacher_clips() == 8 > config.train_clips
    assert read_json(prepared_run / "teacher" / "teacher.json")["data"]["teacher_clips"] == 8
    assert SearchConfig(dataset="synthetic").resolved_teacher_clips() == 1024
    assert SearchConfig(dataset="camvid").resolved_teacher_clips() is None  # all of them
    assert SearchConfig().resolved_train_clips() == 256  # 48 let children overfit
    assert SearchConfig(dataset="camvid", train_clips=12).resolved_train_clips() == 12


def test_a_finished_teacher_never_loads_its_clips(prepared_run, tmp_path):
    out = tmp_path / "run"
    shutil.copytree(prepared_run / "teacher", out / "teacher")
    config = tiny_search_config()

    def must_not_load():
        raise AssertionError("the teacher is trained: its clips must not be loaded")

    meta = read_json(out / "teacher" / "teacher.json")
    again = ensure_teacher(
        out / "teacher",
        must_not_load,
        meta["num_classes"],
        meta["data"],
        NetConfig(**meta["net"]),
        TeacherConfig(steps=config.teacher_steps, fast_steps=config.fast_steps),
        config.seed,
    )
    assert again["key"] == meta["key"]


def test_teacher_clip_count_is_part_of_the_teacher_key():
    fingerprint = {"dataset": "synthetic", "size": [32, 48], "clip_len": 9, "root": None}
    keys = {
        teacher_key({**fingerprint, "teacher_clips": n}, NetConfig(), TeacherConfig(), 0, None)
        for n in (8, 1024)
    }
    assert len(keys) == 2


def test_prepare_reports_the_teacher_frames(tmp_path, capsys):
    prepare(tiny_search_config(teacher_clips=2, teacher_steps=2, fast_steps=1), tmp_path)
    assert "[teacher] learning from 18 labelled frames" in capsys.readouterr().out


def test_a_slow_teacher_is_never_silent(tmp_path, monkeypatch):
    """Between checkpoints the teacher still says how far it is (every PROGRESS_SECONDS)."""
    import nas.teacher
    from nas.data import load_clips

    monkeypatch.setattr(nas.teacher, "PROGRESS_SECONDS", 0.0)
    lines: list[str] = []
    clips = load_clips("synthetic", None, "train", clip_len=2, size=(32, 32), max_clips=2)
    ensure_teacher(
        tmp_path / "teacher",
        clips,
        5,
        {"dataset": "synthetic"},
        NetConfig(width_mult=0.35, deep_channels=16),
        TeacherConfig(steps=3, fast_steps=1, checkpoint_every=50),
        log=lines.append,
    )
    progress = [line for line in lines if line.startswith("[teacher] static: step")]
    assert [line.split()[3] for line in progress] == ["1/3", "2/3", "3/3"]
    assert all("s/step" in line for line in progress)


@pytest.mark.parametrize(
    "done, checkpoint, since, due",
    [
        (50, True, 0.4, False),  # a checkpoint right after a timed line: said already
        (50, True, 10.0, True),
        (49, False, 20.0, True),  # PROGRESS_SECONDS without a line
        (10, False, 5.0, False),
        (250, False, 0.1, True),  # the last step, always
    ],
)
def test_a_progress_line_is_due_without_repeating_itself(done, checkpoint, since, due):
    from nas.teacher import PROGRESS_SECONDS, progress_due

    assert PROGRESS_SECONDS == 20.0
    assert progress_due(done, 250, checkpoint, since) is due


def test_other_fast_steps_keep_the_static_network(tmp_path):
    """Distilling the fast encoders longer re-distills them only; other static settings
    retrain the static network too."""
    clips = load_clips("synthetic", None, "train", clip_len=2, size=(32, 32), max_clips=2)
    net = NetConfig(width_mult=0.35, deep_channels=16)

    def teacher(cfg: TeacherConfig) -> tuple[dict, list[str]]:
        lines: list[str] = []
        meta = ensure_teacher(
            tmp_path, clips, 5, {"dataset": "synthetic"}, net, cfg, log=lines.append
        )
        return meta, lines

    first, _ = teacher(TeacherConfig(steps=2, fast_steps=1))
    weights = (tmp_path / "teacher.safetensors").read_bytes()
    fast = (tmp_path / "fast_1_4.safetensors").read_bytes()
    longer, lines = teacher(TeacherConfig(steps=2, fast_steps=3))
    assert longer["key"] != first["key"] and longer["static_key"] == first["static_key"]
    assert any("fast-encoder steps: distilling them" in line for line in lines)
    assert not any(line.startswith("[teacher] static: step") for line in lines)
    assert any(line.startswith("[teacher] fast encoders: step 3/3") for line in lines)
    assert (tmp_path / "teacher.safetensors").read_bytes() == weights
    assert (tmp_path / "fast_1_4.safetensors").read_bytes() != fast
    assert longer["seconds"]["static"] == first["seconds"]["static"]
    _, lines = teacher(TeacherConfig(steps=3, fast_steps=3))
    assert any("data or settings: retraining" in line for line in lines)
    assert any(line.startswith("[teacher] static: step 3/3") for line in lines)
    (tmp_path / "teacher.safetensors").unlink()  # a static network gone is trained again
    _, lines = teacher(TeacherConfig(steps=3, fast_steps=1))
    assert any(line.startswith("[teacher] static: step 3/3") for line in lines)
