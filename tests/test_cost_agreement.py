"""One per-frame cost formula: a search child's GFLOPs (from cached features) equal the retrain
report's (nas.video_eval, running the whole video network on frames) for the same genotype."""

from __future__ import annotations

import pytest

from evaluation.cost import per_frame
from nas.cache import FeatureCache
from nas.child import ChildRun
from nas.config import ChildConfig
from nas.data import load_clips
from nas.teacher_folder import TeacherFolder
from nas.video_eval import per_frame_gflops
from search_spaces.genotype import Genotype, Node, copy_genotype

HEAVY = Genotype(
    4,
    "1/4",
    "time_to_channel",
    (
        Node((0, 2), ("conv3x3", "sep5x5")),
        Node((3, 1), ("dil3x3_r3", "conv3x3")),
        Node((4, 0), ("warp", "dil3x3_r6")),
        Node((5, 2), ("sepdil5x5_r6", "conv3x3")),
    ),
    "residual",
)


def test_per_frame_is_one_key_frame_in_alpha():
    assert per_frame(10.0, 2.0, 1) == 10.0
    assert per_frame(10.0, 2.0, 4) == pytest.approx((10 + 3 * 2) / 4)


@pytest.mark.parametrize("genotype", [HEAVY, copy_genotype(alpha=2)], ids=["heavy", "copy"])
def test_child_gflops_equal_the_retrain_reports(prepared_run, genotype):
    train = FeatureCache(prepared_run / "cache" / "train")
    val = FeatureCache(prepared_run / "cache" / "val")
    child = ChildRun(genotype, prepared_run / "teacher", train, val, ChildConfig(steps=1, rounds=1))
    reported = child.evaluate()

    net = TeacherFolder(prepared_run / "teacher").video_net(genotype)
    size = tuple(val.meta["size"])
    clips = load_clips("synthetic", None, "val", clip_len=9, size=size, max_clips=2)
    measured = per_frame_gflops(net, clips, child.device)["video"]

    assert reported["gflops_key"] == pytest.approx(measured["key"], rel=1e-9)
    assert reported["gflops_nonkey"] == pytest.approx(measured["nonkey"], rel=1e-9)
    assert reported["gflops"] == pytest.approx(measured["per_frame"], rel=1e-9)
    assert reported["gflops"] > 0
