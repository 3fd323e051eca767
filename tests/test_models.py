import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from nas.models.backbone import MobileNetV2Backbone, PretrainedMismatchError, load_pretrained
from nas.models.config import NetConfig
from nas.models.static import StaticSegNet
from nas.models.video import KeyStep, Step, StreamingSegmenter, VideoSegNet
from search_spaces.genotype import Genotype, copy_genotype
from search_spaces.space import SearchSpace

FIXTURES = Path(__file__).parent / "fixtures"
TINY = NetConfig(width_mult=0.35, deep_channels=16, head_hidden=16)


def test_two_hundred_sampled_genotypes_build_run_and_backprop():
    space = SearchSpace(n_nodes=4)
    rng = np.random.default_rng(123)
    torch.manual_seed(0)
    clip = torch.rand(2, 3, 3, 32, 32)
    for _ in range(200):
        genotype = space.decode(space.sample_tokens(rng))
        net = VideoSegNet(genotype, num_classes=3, config=TINY).train()
        out = net(clip)
        assert out.shape == (2, 3, 3, 32, 32)
        assert torch.isfinite(out).all(), genotype
        out.mean().backward()
        trained = net.cell if genotype.used_inputs() != {0} else net.step_head
        assert any(p.grad is not None for p in trained.parameters()) or not list(
            trained.parameters()
        )


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_traced_key_step_and_step_equal_eager(seed):
    genotype = SearchSpace().sample(seed)
    net = VideoSegNet(genotype, num_classes=4, config=TINY).eval()
    frame0, frame1 = torch.rand(2, 1, 3, 48, 64)
    with torch.no_grad():
        key = torch.jit.trace(KeyStep(net), frame0)
        logits, state = net.key_step(frame0)
        t_logits, t_state = key(frame0)
        step = torch.jit.trace(Step(net), (frame1, *state))
        s_logits, s_state = net.step(frame1, state)
        ts_logits, ts_state = step(frame1, *state)
    torch.testing.assert_close(t_logits, logits, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(ts_logits, s_logits, atol=1e-5, rtol=1e-5)
    for a, b in zip(ts_state, s_state):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


def test_streaming_and_clip_outputs_agree():
    genotype = Genotype.load("docs/cell.json")
    net = VideoSegNet(genotype, num_classes=4, config=TINY).eval()
    clip = torch.rand(1, 9, 3, 32, 48)
    with torch.no_grad():
        whole = net(clip)
        stream = StreamingSegmenter(net)
        frames = [stream(clip[:, t]) for t in range(9)]
        stream.reset()
        again = stream(clip[:, 0])
    torch.testing.assert_close(torch.stack(frames, 1), whole, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(again, whole[:, 0], atol=1e-5, rtol=1e-5)


def test_copy_cell_reuses_the_key_frame_exactly():
    net = VideoSegNet(copy_genotype(alpha=4), num_classes=4, config=TINY).eval()
    assert net.fast is None  # the copy baseline never runs the fast pathway
    clip = torch.rand(1, 4, 3, 32, 32)
    with torch.no_grad():
        out = net(clip)
    for t in range(1, 4):
        assert torch.equal(out[:, t], out[:, 0])


def test_residual_cell_starts_as_the_copy_baseline_and_learns_the_change():
    genotype = replace(Genotype.load("docs/cell.json"), output="residual")
    net = VideoSegNet(genotype, num_classes=4, config=TINY)
    net.eval()
    clip = torch.rand(1, 4, 3, 32, 32)
    with torch.no_grad():
        out = net(clip)
    for t in range(1, 4):
        torch.testing.assert_close(out[:, t], out[:, 0])
    net.train()
    net(clip)[:, 1:].square().mean().backward()
    assert net.cell.gain.grad.abs().sum() > 0  # the gain learns first, then the ops behind it
    torch.optim.SGD([net.cell.gain], lr=1.0).step()
    net.eval()
    with torch.no_grad():
        moved = net(clip)
    assert not torch.allclose(moved[:, 1], moved[:, 0])


def test_key_frame_logits_equal_the_static_network():
    net = VideoSegNet(SearchSpace().sample(5), num_classes=4, config=TINY).eval()
    static = StaticSegNet(4, TINY).eval()
    static.load_state_dict(net.slow.state_dict())
    frame = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(net.key_step(frame)[0], static(frame))


def _layout():
    return json.loads((FIXTURES / "torchvision_mobilenet_v2.json").read_text())


def test_backbone_names_and_shapes_follow_torchvision():
    own = MobileNetV2Backbone(width_mult=1.0).state_dict()
    features = {name: tuple(shape) for name, shape in _layout() if name.startswith("features.")}
    assert {k: tuple(v.shape) for k, v in own.items()} == features


@pytest.mark.parametrize("fmt", ["safetensors", "pt"])
def test_load_pretrained_from_a_torchvision_layout_file(tmp_path, fmt):
    gen = torch.Generator().manual_seed(0)
    state = {
        name: torch.randint(0, 5, shape, generator=gen)
        if name.endswith("num_batches_tracked")
        else torch.randn(shape, generator=gen)
        for name, shape in _layout()
    }
    path = tmp_path / f"mobilenet_v2.{fmt}"
    if fmt == "safetensors":
        save_file(state, str(path))
    else:
        torch.save(state, path)
    backbone = MobileNetV2Backbone()
    skipped = load_pretrained(backbone, path)
    assert skipped == ["classifier.1.bias", "classifier.1.weight"]
    torch.testing.assert_close(
        backbone.features[5].conv[1][0].weight, state["features.5.conv.1.0.weight"]
    )


def test_load_pretrained_mismatch_lists_missing_and_unexpected_keys(tmp_path):
    state = {name: torch.zeros(shape) for name, shape in _layout()}
    del state["features.3.conv.2.weight"]
    state["features.99.weight"] = torch.zeros(1)
    path = tmp_path / "bad.safetensors"
    save_file(state, str(path))
    with pytest.raises(PretrainedMismatchError) as err:
        load_pretrained(MobileNetV2Backbone(), path)
    assert "features.3.conv.2.weight" in str(err.value)
    assert "features.99.weight" in str(err.value)
    with pytest.raises(PretrainedMismatchError, match="shape"):
        load_pretrained(MobileNetV2Backbone(width_mult=0.5), tmp_path / "bad.safetensors")
