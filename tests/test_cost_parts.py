"""bench/cost_parts: the parts of a static and of a non-key frame add up to the whole."""

import json

import pytest
import torch

from bench import cost_parts
from bench.cli import REPO
from evaluation.cost import count_flops
from nas.models.config import NetConfig
from nas.models.video import VideoSegNet
from search_spaces.genotype import Genotype

CELL = REPO / "docs" / "cell.json"


@pytest.mark.parametrize("backbone", ["mobilenet_v2", "efficientnet_lite0_s16"])
def test_the_parts_add_up_to_the_whole_frame(backbone):
    cell = Genotype.load(CELL)
    torch.manual_seed(0)
    net = VideoSegNet(cell, 2, NetConfig(backbone=backbone)).eval()
    frames = torch.rand(cell.alpha, 3, 64, 96)
    static = cost_parts.static_parts(net, frames[:1])
    assert sum(r.gflops for r in static.values()) == pytest.approx(
        count_flops(net.slow, frames[:1]).gflops, rel=1e-6
    )
    nonkey = cost_parts.nonkey_parts(net, frames)
    whole = count_flops(net.step, frames[-1:], cost_parts.full_buffer_state(net, frames))
    for field in ("gflops", "dense_gflops"):
        assert sum(getattr(r, field) for r in nonkey.values()) == pytest.approx(
            getattr(whole, field), rel=1e-6
        )
    assert nonkey["fast encoder"].gflops > 0 and nonkey["node 3 warp(0)"].gflops > 0
    assert nonkey["node 5 gated_conv(4)"].dense_gflops > nonkey["node 5 gated_conv(4)"].gflops


def test_it_prints_both_frames_and_refuses_a_bad_cell(tmp_path, capsys):
    argv = ["--resolution", "64x96", "--backbone", "mobilenet_v2"]
    assert cost_parts.main(argv) == 0
    out = capsys.readouterr().out
    assert "static frame: all" in out and "non-key frame: fast encoder" in out
    bad = tmp_path / "cell.json"
    bad.write_text(json.dumps({"alpha": 3}))
    assert cost_parts.main(["--cell", str(bad), *argv]) == 2
    assert "error:" in capsys.readouterr().err
