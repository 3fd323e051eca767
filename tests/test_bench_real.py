"""bench/real's summary of several video trainings: the figures it prints are their mean."""

import pytest

from bench.protocols import PROTOCOLS, Protocol, load, validation_protocol
from bench.real import DEFAULT_EPOCHS, cell_tag, combine_seeds, static_targets, video_minus_copy
from search_spaces.genotype import Genotype
from tests.fixtures_data import CELL, make_davis


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


def test_seeds_are_averaged_and_the_static_target_reads_the_mean():
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
    assert rep["video_nonkey_std"] == pytest.approx(0.0208167, abs=1e-6)  # ddof=1
    assert rep["seconds"] == 1.0 and "seed" not in rep
    assert video_minus_copy(rep) == pytest.approx(0.0133333, abs=1e-6)

    (check,) = static_targets({"davis-unseen": {"alphas": {2: rep}}, "other": {"alphas": {}}})
    assert check["protocol"] == "davis-unseen" and check["static"] == pytest.approx(0.60)
    assert not check["met"]  # 0.60 < 0.70


def test_unseen_protocols_never_score_a_trained_sequence(tmp_path):
    root = make_davis(tmp_path / "DAVIS", sequences=3, frames=6)
    protocol = Protocol("t", "davis", "train:-seq2", "train:seq2")
    train, scored = load(protocol, root, (32, 48))
    assert {c.sequence for c in train} == {"seq0", "seq1"}
    assert [c.sequence for c in scored] == ["seq2"]
    unseen, held_in = PROTOCOLS["davis-unseen"], validation_protocol(PROTOCOLS["davis-unseen"])
    for name in ("car-turn", "dog-agility", "paragliding", "rhino"):
        assert f"-{name}" not in held_in.evaluate and name in unseen.evaluate
        assert name in held_in.train and name in unseen.train  # both exclude them
    assert held_in.train.startswith("train:-") and unseen.train.startswith("train:-")
    assert PROTOCOLS["camvid-1hz"].train == "train:-0006R0"


def test_validation_scores_held_out_training_frames_never_the_evaluation_frames(tmp_path):
    root = make_davis(tmp_path / "DAVIS", sequences=2, frames=10)
    train, evaluation = load(PROTOCOLS["davis-in-time"], root, (32, 48))
    for whole, part in zip(
        load(Protocol("w", "davis", "train", "train"), root, (32, 48))[0], train
    ):
        assert list(part.frame_ids) == list(whole.frame_ids)[:7]
    assert [len(e) for e in evaluation] == [3, 3]
    camvid = validation_protocol(PROTOCOLS["camvid-val"])
    assert camvid.in_time and camvid.train == camvid.evaluate == "train"
    with pytest.raises(ValueError, match="davis-unseen"):
        validation_protocol(PROTOCOLS["davis-in-time"])


def test_a_key_step_head_gets_its_own_checkpoints():
    cell = Genotype.load(CELL)
    assert cell_tag(cell) != cell_tag(cell, "key") and cell_tag(cell, "key").endswith("-keyhead")


def test_each_fast_encoder_mode_gets_its_own_checkpoints():
    cell = Genotype.load(CELL)
    tags = {cell_tag(cell, "own", mode) for mode in ("train", "weights", "frozen")}
    assert len(tags) == 3 and cell_tag(cell, "own", "train") == cell_tag(cell)
    assert cell_tag(cell, "key", "frozen").endswith("-keyhead-frozenfast")


def test_a_training_of_another_length_gets_its_own_checkpoints():
    """A longer training must start afresh, not resume the default one's last epoch."""
    cell = Genotype.load(CELL)
    assert cell_tag(cell, epochs=DEFAULT_EPOCHS) == cell_tag(cell)
    assert cell_tag(cell, epochs=12) != cell_tag(cell) and cell_tag(cell, epochs=12).endswith(
        "-12ep"
    )
    assert cell_tag(cell, "key", "weights", 8).endswith("-keyhead-weightsfast-8ep")
