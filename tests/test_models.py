import json
from dataclasses import asdict, replace
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
from search_spaces.ops import OP_NAMES, OPS_READING_FAST, GatedConv
from search_spaces.space import SearchSpace

FIXTURES = Path(__file__).parent / "fixtures"
TINY = NetConfig(width_mult=0.35, deep_channels=16, head_hidden=16)


def reached_parts(genotype: Genotype) -> tuple[set[tuple[int, int]], bool, bool]:
    """What the loss reaches through the cell's wiring: the (node, slot) ops on a path to the
    output, and whether that path reads the fast projection and the lateral fusion.

    ``none`` passes nothing; ``tdiff`` ignores its input (it reads fast - fast_key only); an op
    whose input is identically zero (a node of ``none`` ops, or skip / warp / gap of one) has
    nothing to learn from, so it is left out (neither required nor forbidden a gradient)."""
    empty: set[int] = set()
    for k, node in enumerate(genotype.nodes):
        if all(
            op == "none" or (op in ("skip", "warp", "gap") and i in empty)
            for i, op in zip(node.inputs, node.ops)
        ):
            empty.add(3 + k)
    live: set[tuple[int, int]] = set()
    proj = fusion = False
    stack, seen = list(genotype.leaf_nodes()), set()
    while stack:
        state = stack.pop()
        if state < 3 or state in seen:
            continue
        seen.add(state)
        k = state - 3
        for j, (i, op) in enumerate(zip(genotype.nodes[k].inputs, genotype.nodes[k].ops)):
            if op == "none" or (i in empty and op != "tdiff"):
                continue
            live.add((k, j))
            proj |= op in OPS_READING_FAST
            if op != "tdiff":
                proj |= i == 2
                fusion |= i == 1
                stack.append(i)
    return live, proj, fusion


SAMPLED = 100
"""Genotypes the build-run-backprop test samples (200 took 39 s of the suite's 10 minutes)."""


def test_a_hundred_sampled_genotypes_build_run_and_backprop():
    """Every part a child trains (the cell's ops on a path to the output, the fast projection
    and the fusion when the cell reads them, the non-key head) has parameters, and each of
    them gets a finite gradient above float noise from a loss on the logits."""
    space = SearchSpace(n_nodes=4)
    rng = np.random.default_rng(123)
    torch.manual_seed(0)
    clip = torch.rand(2, 3, 3, 32, 32)
    checked, seen_ops = 0, set()
    for _ in range(SAMPLED):
        genotype = space.decode(space.sample_tokens(rng))
        net = VideoSegNet(genotype, num_classes=3, config=TINY).train()
        live, reads_proj, reads_fusion = reached_parts(genotype)
        seen_ops.update(genotype.nodes[k].ops[j] for k, j in live)
        parts = {"step_head": net.step_head}
        for k, j in live:
            if genotype.nodes[k].ops[j] != "skip":  # every other op has weights
                parts[f"cell.ops.{k}.{j}"] = net.cell.ops[k][j]
        if genotype.output == "concat":
            parts["cell.combine"] = net.cell.combine
        if genotype.output == "residual":
            parts["cell.gain"] = torch.nn.ParameterList([net.cell.gain])
        if reads_proj:
            parts["fast.proj"] = net.fast.proj
        if reads_fusion:
            parts["fast.fusion"] = net.fast.fusion
        for name, part in parts.items():
            assert list(part.parameters()), (name, genotype)

        with torch.no_grad():
            for module in net.modules():
                if isinstance(module, GatedConv):  # open every gate where the frame changed
                    module.threshold = 0.0
                    module.gate.weight.abs_()
            for p in net.parameters():  # a zero gain or warp offset blocks what is behind it
                if not p.any():  # on the first step only; move it off zero
                    p.normal_(0.0, 0.1)
        out = net(clip)
        assert out.shape == (2, 3, 3, 32, 32)
        assert torch.isfinite(out).all(), genotype
        (out * torch.randn_like(out)).sum().backward()

        # a BatchNorm bias feeding another BatchNorm through linear maps only is cancelled by
        # that one's batch mean in training: redundant, its gradient is float noise
        bn_biases = {id(m.bias) for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d)}
        for name, part in parts.items():
            for pname, p in part.named_parameters():
                if id(p) in bn_biases:
                    continue
                assert p.grad is not None and torch.isfinite(p.grad).all(), (name, pname, genotype)
                assert p.grad.abs().max() > 1e-5, (name, pname, genotype)
                checked += 1
        assert all(torch.isfinite(p.grad).all() for p in net.parameters() if p.grad is not None)
    assert checked > SAMPLED * 10
    assert seen_ops == set(OP_NAMES) - {"none"}  # every op that can be on a live path


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


def test_nodes_the_output_does_not_depend_on_never_run_and_old_weights_still_load(tmp_path):
    """Node 0 is read by tdiff alone and node 2 by none alone: neither runs, changing their
    weights changes nothing, and the fused input only node 0 read is not built. Weights
    saved while it was (versions up to 2026-12-01) load, by load_state_dict and by a cell
    file, with the fusion's tensors dropped."""
    from nas.cellfile import build_from_cell
    from search_spaces.genotype import Node

    nodes = (
        Node((1, 1), ("conv3x3", "sep3x3")),
        Node((3, 0), ("tdiff", "skip")),
        Node((1, 2), ("gap", "warp")),
        Node((4, 5), ("skip", "none")),
    )
    genotype = Genotype(4, "1/4", "time_strided_conv", nodes, "sum")
    torch.manual_seed(0)
    net = VideoSegNet(genotype, num_classes=3, config=TINY).eval()
    assert net.fast is not None and net.fast.fusion is None
    computed = [id(op) for op in net.cell.computed_ops()]  # what gate densities are read from
    assert computed == [id(op) for k in (1, 3) for op in net.cell.ops[k]]
    ran: list[str] = []
    for k in (0, 2):
        for j, op in enumerate(net.cell.ops[k]):
            op.register_forward_hook(lambda m, i, o, name=f"{k}.{j}": ran.append(name))
    clip = torch.rand(1, 5, 3, 32, 32)
    with torch.no_grad():
        before = net(clip)
        for k in (0, 2):
            for p in net.cell.ops[k].parameters():
                p.add_(1.0)
        torch.testing.assert_close(net(clip), before)
    assert ran == []

    from search_spaces.pathways import build_fusion

    legacy = dict(net.state_dict())
    fusion = build_fusion(genotype.fusion, net.fast.out_channels, TINY.deep_channels, 4)
    legacy.update({f"fast.fusion.{k}": v for k, v in fusion.state_dict().items()})
    fresh = VideoSegNet(genotype, num_classes=3, config=TINY).eval()
    fresh.load_state_dict(legacy)
    with torch.no_grad():
        torch.testing.assert_close(fresh(clip), before)
    save_file({k: v.contiguous() for k, v in legacy.items()}, tmp_path / "weights.safetensors")
    cell = {"genotype": genotype.to_dict(), "num_classes": 3, "net": asdict(TINY)}
    (tmp_path / "cell.json").write_text(json.dumps(cell))
    loaded, _ = build_from_cell(tmp_path / "cell.json")
    with torch.no_grad():
        torch.testing.assert_close(loaded(clip), before)
