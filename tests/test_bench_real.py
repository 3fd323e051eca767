"""bench/real's summary of several video trainings: the figures it prints are their mean."""

import pytest

from bench.real import cell_tag, combine_seeds, load, target_check
from search_spaces.genotype import Genotype
from tests.test_retrain import CELL, make_davis


def report(seed: int, static: float, copy: float, video: float, video_gflops: float = 0.55) -> dict:
    def row(quality: float, ratio: float) -> dict:
        return {
            "quality_nonkey": quality,
            "quality_all": quality - 0.01,
            "gflops_per_frame": ratio * 2.0,
            "gflops_key": 2.0,
            "gflops_nonkey": ratio,
            "gflops_ratio": ratio,
        }

    networks = {
        "static": row(static, 1.0),
        "copy": row(copy, 0.5),
        "video": row(video, video_gflops),
    }
    return {"metric": "J&F", "networks": networks, "loss": {"loss": 0.1}, "seed": seed}


def test_seeds_are_averaged_and_the_target_reads_the_mean():
    runs = [
        report(0, 0.60, 0.58, 0.57, 0.54),
        report(1, 0.60, 0.58, 0.61, 0.55),
        report(2, 0.60, 0.58, 0.60, 0.59),
    ]
    rep = combine_seeds(runs, seconds=1.0)
    video = rep["networks"]["video"]
    assert video["quality_nonkey"] == pytest.approx(0.5933333, abs=1e-6)
    assert video["quality_all"] == pytest.approx(0.5833333, abs=1e-6)
    assert video["gflops_ratio"] == pytest.approx(0.56)  # gated ops: each seed its own density
    assert rep["networks"]["copy"]["quality_nonkey"] == pytest.approx(0.58)
    assert [s["video_nonkey"] for s in rep["seeds"]] == [0.57, 0.61, 0.60]
    assert rep["video_nonkey_std"] == pytest.approx(0.0169967, abs=1e-6)
    assert rep["seconds"] == 1.0 and "seed" not in rep

    check = target_check({"davis": {"alphas": {2: rep}}})
    assert check["beats_copy"] and check["quality_met"] and check["gflops_met"]
    assert check["gflops_ratio"] == pytest.approx(0.56)
    assert check["video_minus_copy"] == pytest.approx(0.0133333, abs=1e-6)
    assert (check["seeds_above_copy"], check["seeds"]) == (2, 3)


def test_a_mean_below_copy_misses_the_target_even_if_one_seed_beats_it():
    runs = [report(0, 0.60, 0.58, 0.55), report(1, 0.60, 0.58, 0.59)]
    check = target_check({"davis": {"alphas": {2: combine_seeds(runs)}}})
    assert not check["beats_copy"]
    assert check["seeds_above_copy"] == 1


def test_validation_scores_held_out_training_frames_never_the_evaluation_frames(tmp_path):
    root = make_davis(tmp_path / "DAVIS", sequences=2, frames=10)
    train, evaluation = load("davis", root, (32, 48))
    fit, held_out = load("davis", root, (32, 48), validate=True)
    for whole, part, val, test in zip(train, fit, held_out, evaluation):
        assert list(part.frame_ids) + list(val.frame_ids) == list(whole.frame_ids)
        assert len(part) == 5 and len(val) == 2 and not set(val.frame_ids) & set(test.frame_ids)


def test_a_key_step_head_gets_its_own_checkpoints():
    cell = Genotype.load(CELL)
    assert cell_tag(cell) != cell_tag(cell, "key") and cell_tag(cell, "key").endswith("-keyhead")
