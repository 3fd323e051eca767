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
    nonkey, whole = cost_parts.nonkey_parts(net, frames)
    assert whole.gflops == pytest.approx(
        count_flops(net.step, frames[-1:], cost_parts.full_buffer_state(net, frames)).gflops
    )
    for field in ("gflops", "dense_gflops"):
        assert sum(getattr(r, field) for r in nonkey.values()) == pytest.approx(
            getattr(whole, field), rel=1e-6
        )
    # each part as counted alone: the hooks attribute the step's FLOPs to the right module
    x = net.slow.normalize(frames[-1:])
    assert nonkey["fast encoder"].gflops == pytest.approx(count_flops(net.fast.encoder, x).gflops)
    raw = net.fast.encoder(x)
    assert nonkey["fast projection"].gflops == pytest.approx(count_flops(net.fast.proj, raw).gflops)
    assert nonkey["rest"].gflops == pytest.approx(0.0, abs=1e-9)  # a residual cell: nothing else
    assert nonkey["node 3 warp(0)"].gflops > 0
    assert nonkey["node 5 gated_conv(4)"].dense_gflops > nonkey["node 5 gated_conv(4)"].gflops


def test_it_prints_both_frames_and_refuses_a_bad_cell(tmp_path, capsys):
    argv = ["--resolution", "64x96", "--backbone", "mobilenet_v2"]
    assert cost_parts.main(argv) == 0
    out = capsys.readouterr().out
    assert "static frame: all" in out and "non-key frame: fast encoder" in out
    gflops = {
        line[:38].strip(): float(line[38:].split()[0])
        for line in out.splitlines()
        if line.endswith("%") and ": all" in line[:38]
    }
    # a key frame runs the fast encoder too: the per-frame share counts it
    key, nonkey = gflops["key frame: all"], gflops["non-key frame: all"]
    assert key > gflops["static frame: all"]
    share = (key + 3 * nonkey) / 4 / gflops["static frame: all"]
    assert f"per frame at alpha 4, non-key: {share:.1%} of static" in out
    bad = tmp_path / "cell.json"
    bad.write_text(json.dumps({"alpha": 3}))
    assert cost_parts.main(["--cell", str(bad), *argv]) == 2
    assert "error:" in capsys.readouterr().err
