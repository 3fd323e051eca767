"""ONNX export: sampled cells (every op, fusion and output of the space among them) equal the
eager network within 1e-4, a mismatch fails the export, and on a tiny exported folder
``nas.segment --onnx`` gives what the TorchScript graphs and the PyTorch network give."""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import math
import warnings
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from bench.onnx_check import randomize
from nas.checkpoint import save_weights, write_json
from nas.export import below_copy, write_cell_folder
from nas.export import main as export_main
from nas.models.config import NetConfig
from nas.models.video import StreamingSegmenter, VideoSegNet
from nas.onnx_export import TOLERANCE, OnnxCheckError, export_onnx
from nas.onnx_net import OnnxVideoNet
from nas.segment import main as segment_main
from search_spaces.genotype import FUSIONS, OUTPUT_MODES, Genotype, copy_genotype
from search_spaces.ops import OP_NAMES
from search_spaces.space import SearchSpace
from tests.fixtures_data import CELL

NET = NetConfig(width_mult=0.35, deep_channels=16)
SIZE = (32, 48)
GENOTYPES = {
    "docs cell": Genotype.load(CELL),  # warp, gated_conv, tdiff; time_to_channel, residual
    "copy": copy_genotype(),  # no fast pathway: zero-channel state, a step without a frame
    "sampled 1": SearchSpace().sample(1),  # conv3x3, sepdil5x5_r6; time_strided_conv, sum
    "sampled 11": SearchSpace().sample(11),  # gap, dilated, sep5x5; alpha 2, concat; 2 nodes unused
}


def test_the_cells_checked_cover_every_op_fusion_and_output():
    ops = {op for g in GENOTYPES.values() for node in g.nodes for op in node.ops}
    assert ops == set(OP_NAMES)
    assert {g.fusion for g in GENOTYPES.values()} == set(FUSIONS)
    assert {g.output for g in GENOTYPES.values()} == set(OUTPUT_MODES)
    # a node the output does not depend on is not computed: the graphs must not need it
    assert any(len(g.live_states() - {0, 1, 2}) < len(g.nodes) for g in GENOTYPES.values())


@pytest.mark.parametrize("name", GENOTYPES)
def test_onnx_graphs_equal_the_eager_network(name, tmp_path):
    net = randomize(VideoSegNet(GENOTYPES[name], 3, NET), 0, SIZE)
    difference = export_onnx(net, SIZE, tmp_path)
    assert 0 <= difference <= TOLERANCE
    assert not net.training  # exporting leaves the network as it was
    assert sorted(p.name for p in tmp_path.iterdir()) == ["key_step.onnx", "step.onnx"]


def test_the_efficientnet_backbone_exports_at_an_odd_size(tmp_path):
    """Its TF "same" padding is computed from the frame size: a negative floor division of
    traced sizes truncated in ONNX and cut a column (240x427 gave a 26-wide state, not 27)."""
    config = NetConfig(backbone="efficientnet_lite0", deep_channels=16)
    net = randomize(VideoSegNet(GENOTYPES["docs cell"], 3, config), 0, (33, 49))
    assert export_onnx(net, (33, 49), tmp_path) <= TOLERANCE


@pytest.mark.parametrize("name", GENOTYPES)
def test_the_torchscript_graphs_run_at_other_sizes_and_trace_without_warnings(name, tmp_path):
    """Traced at one size, key_step.pt and step.pt give the eager network's output at another
    (the branches on sizes that the tracer freezes go the same way at every size:
    nas/tracing.py), so the export does not show torch's TracerWarnings to the user."""
    config = NetConfig(backbone="efficientnet_lite0", deep_channels=16)
    net = randomize(VideoSegNet(GENOTYPES[name], 3, config), 0, SIZE)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        write_cell_folder(net, tmp_path, SIZE, ("torchscript",), {}, {}, log=lambda _: None)
    assert [str(w.message) for w in caught if w.category is torch.jit.TracerWarning] == []
    traced = TorchScriptNet(tmp_path, alpha=4)
    frames = torch.rand(3, 1, 3, 33, 49, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        (eager, state), (graph, graph_state) = net.key_step(frames[0]), traced.key_step(frames[0])
        torch.testing.assert_close(graph, eager, atol=1e-5, rtol=0)
        for frame in frames[1:]:
            (eager, _), (graph, _) = net.step(frame, state), traced.step(frame, graph_state)
            torch.testing.assert_close(graph, eager, atol=1e-5, rtol=0)


def refuse_to_run(*args):
    raise Exception("[ONNXRuntimeError] : 9 : NOT_IMPLEMENTED : GridSample(16)")  # as ORT


@pytest.mark.parametrize(
    "name, replacement, message",
    [
        ("max_difference", lambda *args: 0.25, r"differ from the eager network by up to 0\.25"),
        ("OnnxVideoNet", refuse_to_run, r"onnxruntime: \[ONNXRuntimeError\] : 9"),
    ],
    ids=["differs", "does not run"],
)
def test_a_failed_check_fails_the_export_and_leaves_no_graph(
    tmp_path, monkeypatch, name, replacement, message
):
    import nas.onnx_export

    monkeypatch.setattr(nas.onnx_export, name, replacement)
    net = VideoSegNet(copy_genotype(), 3, NET)
    with pytest.raises(OnnxCheckError, match=message):
        export_onnx(net, SIZE, tmp_path)
    assert not list(tmp_path.glob("*.onnx"))


# ---- a tiny search run, exported, and nas.segment on it -----------------------------------
def write_tiny_run(run: Path) -> VideoSegNet:
    """A search run folder nas.export reads (teacher, cache meta, one recorded child whose
    weights are a randomized network of docs/cell.json); returns that network."""
    torch.manual_seed(0)
    net = randomize(VideoSegNet(GENOTYPES["docs cell"], 3, NET), 0, SIZE)
    teacher = run / "teacher"
    write_json(teacher / "teacher.json", {"key": "tiny", "num_classes": 3, "net": NET.to_dict()})
    save_weights(net.slow, teacher / "teacher.safetensors")
    distilled = {
        k: v for k, v in net.fast.state_dict().items() if k.startswith(("encoder.", "proj."))
    }
    save_weights(distilled, teacher / "fast_1_4.safetensors")
    save_weights(net, run / "children" / "p0.safetensors")
    write_json(run / "cache" / "val" / "meta.json", {"size": list(SIZE)})
    write_json(run / "search.json", {"dataset": "synthetic", "train_split": "train"})
    record = {
        "proposal_id": "p0",
        "trial_id": "t0",
        "controller": "random",
        "genotype": net.genotype.to_dict(),
        "status": "ok",
        "reward": 0.5,
        "quality": 0.5,
        "copy_quality": 0.45,
        "gflops": 0.01,
        "seed": 0,
    }
    (run / "trials.jsonl").write_text(json.dumps(record) + "\n")
    return net


def test_pareto_exports_each_cell_on_the_front_cheapest_first(tmp_path, capsys):
    """Three children: p0 cheap, p1 better and dearer, p2 dearer and worse than both (no
    weights: exporting it would fail). The front is p0 then p1; --top does not mix in."""
    net = write_tiny_run(tmp_path)
    other = dataclasses.replace(net.genotype, alpha=2)
    save_weights(VideoSegNet(other, 3, NET), tmp_path / "children" / "p1.safetensors")
    first = json.loads((tmp_path / "trials.jsonl").read_text())
    more = [
        {**first, "proposal_id": "p1", "genotype": other.to_dict(), "quality": 0.6, "gflops": 0.02},
        {
            **first,
            "proposal_id": "p2",
            "genotype": dataclasses.replace(net.genotype, alpha=8).to_dict(),
            "quality": 0.4,
            "gflops": 0.03,
        },
    ]
    with open(tmp_path / "trials.jsonl", "a") as fh:
        fh.writelines(json.dumps(r) + "\n" for r in more)
    assert export_main([str(tmp_path), "--pareto"]) == 0
    folders = sorted(p.name for p in (tmp_path / "export" / "pareto").iterdir())
    assert folders == ["01-p0", "02-p1"]
    assert "2 cells on the front" in capsys.readouterr().out
    assert export_main([str(tmp_path), "--pareto", "latency"]) == 2  # no latency recorded
    assert "latency_ms" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        export_main([str(tmp_path), "--pareto", "--top", "2"])


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> tuple[Path, str]:
    """The folder of the tiny run's cell exported as TorchScript and ONNX, and what the
    export printed."""
    run = tmp_path_factory.mktemp("run")
    write_tiny_run(run)
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        assert export_main([str(run), "--top", "1", "--format", "torchscript,onnx"]) == 0
    return run / "export" / "01-p0", printed.getvalue()


def test_export_writes_both_formats_the_picture_and_the_card(exported):
    folder, printed = exported
    names = {p.name for p in folder.iterdir()}
    assert names == {
        "cell.json",
        "weights.safetensors",
        "key_step.pt",
        "step.pt",
        "key_step.onnx",
        "step.onnx",
        "cell.svg",
        "cell.png",
        "cell.md",
    }
    assert "max abs difference" in printed and "opset 17" in printed
    assert "note:" not in printed  # quality 0.5 above its copy baseline's 0.45
    card = (folder / "cell.md").read_text()
    assert f"python -m nas.retrain --cell {folder / 'cell.json'} --dataset synthetic" in card
    assert "--resolution 32x48" in card and "--data-root" not in card
    assert "node 0 | warp(D_k) + conv1x1(F_t)" in card and "--onnx" in card


def test_a_cell_not_above_its_copy_baseline_is_exported_with_a_note(tmp_path, capsys):
    record = {"quality": 0.3463, "copy_quality": 0.3651, "genotype": {"alpha": 8}}
    note = below_copy(record)
    assert "0.3463 is not above the copy baseline's 0.3651" in note and "alpha (8)" in note
    assert below_copy({**record, "quality": 0.3651}) is not None  # a tie: not on the front
    assert below_copy({**record, "quality": math.nan}) is not None
    assert below_copy({**record, "quality": 0.37}) is None
    assert below_copy({**record, "copy_quality": None}) is None  # a failed child's record
    # as the export prints it: the tiny run's record, its copy baseline raised above it
    write_tiny_run(tmp_path)
    records = [json.loads(line) for line in (tmp_path / "trials.jsonl").read_text().splitlines()]
    records[0]["copy_quality"] = 0.55
    (tmp_path / "trials.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    assert export_main([str(tmp_path), "--top", "1"]) == 0
    assert (
        "  note: quality 0.5000 is not above the copy baseline's 0.5500" in capsys.readouterr().out
    )


class TorchScriptNet:
    """key_step.pt and step.pt with VideoSegNet's streaming interface."""

    def __init__(self, folder: Path, alpha: int):
        self.alpha = alpha
        self.key = torch.jit.load(str(folder / "key_step.pt"))
        self.next = torch.jit.load(str(folder / "step.pt"))

    def key_step(self, frame):
        return self.key(frame)

    def step(self, frame, state):
        return self.next(frame, *state)


def test_onnx_streaming_equals_the_torchscript_graphs(exported):
    folder, _ = exported
    onnx_net = OnnxVideoNet(folder / "key_step.onnx", folder / "step.onnx", alpha=4)
    streams = StreamingSegmenter(onnx_net), StreamingSegmenter(TorchScriptNet(folder, 4))
    frames = torch.rand(9, 1, 3, *SIZE, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        for frame in frames:
            torch.testing.assert_close(streams[0](frame), streams[1](frame), atol=1e-4, rtol=0)


def write_frames(folder: Path, count: int = 6) -> Path:
    folder.mkdir()
    rng = np.random.default_rng(0)
    base = rng.integers(0, 255, (40, 56, 3), dtype=np.uint8)
    for t in range(count):
        frame = np.roll(base, 3 * t, axis=1)  # a scene moving right
        cv2.imwrite(str(folder / f"{t:03d}.png"), frame)
    return folder


def test_segment_onnx_gives_the_masks_of_the_pytorch_network(exported, tmp_path, capsys):
    folder, _ = exported
    frames = write_frames(tmp_path / "frames")
    cell = str(folder / "cell.json")
    assert segment_main([str(frames), "--cell", cell, "--masks", str(tmp_path / "torch")]) == 0
    argv = [str(frames), "--cell", cell, "--masks", str(tmp_path / "onnx"), "--onnx"]
    assert segment_main(argv + ["--out", str(tmp_path / "o.mp4")]) == 0
    assert "key frames 2 (33%, alpha 4)" in capsys.readouterr().out
    for name in sorted(p.name for p in (tmp_path / "torch").iterdir()):
        eager = cv2.imread(str(tmp_path / "torch" / name), cv2.IMREAD_UNCHANGED)
        onnx = cv2.imread(str(tmp_path / "onnx" / name), cv2.IMREAD_UNCHANGED)
        assert eager.shape == onnx.shape == (40, 56)
        assert (eager != onnx).mean() <= 1e-3  # only a logit tie within 1e-5 may flip
    assert (tmp_path / "o.mp4").stat().st_size > 0


@pytest.mark.parametrize(
    "what, message",
    [
        ("no graphs", "has no key_step.onnx"),
        ("other resolution", "exported at 32x48"),
        ("weights", "--onnx runs the exported graphs"),
    ],
)
def test_what_segment_onnx_cannot_run_is_one_clear_error(exported, tmp_path, capsys, what, message):
    folder, _ = exported
    frames = write_frames(tmp_path / "frames", count=2)
    argv = [str(frames), "--cell", str(folder / "cell.json"), "--onnx"]
    if what == "no graphs":
        bare = tmp_path / "bare"
        bare.mkdir()
        (bare / "cell.json").write_text((folder / "cell.json").read_text())
        argv[2] = str(bare / "cell.json")
    elif what == "other resolution":
        argv += ["--resolution", "64x96"]
    elif what == "weights":
        argv += ["--weights", str(folder / "weights.safetensors")]
    try:
        code = segment_main(argv)
    except SystemExit as exc:  # argparse's own errors
        code = exc.code
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "Traceback" not in err


def test_an_unknown_format_is_refused(capsys):
    with pytest.raises(SystemExit) as exc:
        export_main(["runs/none", "--format", "torchscript,tflite"])
    assert exc.value.code == 2
    assert "give one or more of torchscript, onnx" in capsys.readouterr().err
