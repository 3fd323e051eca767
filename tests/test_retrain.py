"""nas.retrain end to end on tiny data: report, exported cell, resume, DAVIS path, errors."""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from nas.cellfile import build_from_cell
from nas.checkpoint import load_weights, read_json
from nas.config import RetrainConfig
from nas.data.clip import to_tensor
from nas.models.config import NetConfig
from nas.models.heads import upsample_logits
from nas.models.video import VideoSegNet
from nas.retrain import main
from nas.train_utils import augment_window
from nas.video_eval import online_finetune
from nas.video_report import verdict
from nas.video_training import window_features
from search_spaces.genotype import Genotype, Node
from tests.fixtures_data import CELL, make_davis

TINY = [
    "--backbone",
    "mobilenet_v2",
    "--pretrained-backbone",
    "none",
    "--width-mult",
    "0.35",
    "--deep-channels",
    "16",
    "--teacher-steps",
    "3",
    "--teacher-fast-steps",
    "1",
    "--batch-size",
    "2",
    "--steps-per-epoch",
    "2",
]
SYNTHETIC = [
    "--dataset",
    "synthetic",
    "--resolution",
    "32x32",
    "--max-train-clips",
    "2",
    "--max-val-clips",
    "1",
]


@pytest.fixture(scope="module")
def one_epoch(tmp_path_factory) -> Path:
    """A finished 1-epoch run on synthetic 32x32 clips."""
    out = tmp_path_factory.mktemp("retrain") / "run"
    torch.set_num_threads(1)
    assert main(["--cell", str(CELL), "--out", str(out), "--epochs", "1", *SYNTHETIC, *TINY]) == 0
    return out


@pytest.mark.parametrize(
    "video, copy, said",
    [
        (0.52, 0.50, "+0.0200 (above copy)"),
        (0.50, 0.50, "+0.0000 (not above copy: reusing the key frame's features does as well"),
        (0.40, 0.50, "-0.1000 (not above copy"),
        (0.50004, 0.50, "+0.0000 (not above copy"),  # judged on the figure printed
        (None, None, "no J&F on non-key frames to compare"),
    ],
)
def test_the_verdict_compares_the_video_network_with_copy(video, copy, said):
    rows = {"static": 0.6, "copy": copy, "video": video}
    report = {
        "metric": "J&F",
        "genotype": {"alpha": 8},
        "networks": {name: {"quality_nonkey": q, "gflops_ratio": 0.5} for name, q in rows.items()},
    }
    text = verdict(report)
    assert said in text
    if video is not None:
        assert f"{video / 0.6:.1%} of static's J&F at 50.0% of its GFLOPs" in text


def test_report_scores_three_networks_and_exports_a_loadable_cell(one_epoch):
    report = read_json(one_epoch / "report.json")
    assert report["metric"] == "mIoU"
    assert set(report["networks"]) == {"static", "copy", "video"}
    for row in report["networks"].values():
        assert 0.0 <= row["quality_nonkey"] <= 1.0 and 0.0 <= row["quality_all"] <= 1.0
        assert row["gflops_per_frame"] > 0
    nets = report["networks"]
    assert nets["static"]["gflops_ratio"] == 1.0
    assert nets["copy"]["gflops_ratio"] < nets["video"]["gflops_ratio"] < 1.0
    text = (one_epoch / "report.md").read_text()
    gain = nets["video"]["quality_nonkey"] - nets["copy"]["quality_nonkey"]
    assert (
        "| video |" in text
        and f"video vs copy at alpha 4, mIoU on non-key frames: {gain:+.4f}" in text
    )
    assert "one training seed" in text

    net, data = build_from_cell(one_epoch / "cell" / "cell.json")
    assert data["resolution"] == [32, 32] and data["num_classes"] == 5
    assert net.genotype == Genotype.load(CELL)
    trained = load_weights(one_epoch / "train" / "epoch_1.safetensors")
    for key, value in net.state_dict().items():
        torch.testing.assert_close(value, trained[key])
    with torch.no_grad():
        assert net(torch.rand(1, 5, 3, 32, 32)).shape == (1, 5, 5, 32, 32)


def test_resume_continues_from_the_saved_epoch(one_epoch, tmp_path, capsys):
    out = tmp_path / "run"
    shutil.copytree(one_epoch, out)
    teacher_time = (out / "teacher" / "teacher.safetensors").stat().st_mtime_ns
    before = load_weights(out / "train" / "epoch_1.safetensors")
    assert (
        main(
            ["--cell", str(CELL), "--out", str(out), "--epochs", "2", "--resume", *SYNTHETIC, *TINY]
        )
        == 0
    )
    assert "resuming after epoch 1" in capsys.readouterr().out
    progress = read_json(out / "train" / "progress.json")
    assert progress["epoch"] == 2 and [h["epoch"] for h in progress["history"]] == [1, 2]
    assert not (out / "train" / "epoch_1.safetensors").exists()
    after = load_weights(out / "train" / "epoch_2.safetensors")
    assert not torch.equal(before["cell.ops.0.1.op.1.weight"], after["cell.ops.0.1.op.1.weight"])
    assert torch.equal(before["slow.head.classifier.weight"], after["slow.head.classifier.weight"])
    assert (out / "teacher" / "teacher.safetensors").stat().st_mtime_ns == teacher_time


def test_a_finished_run_is_not_overwritten_without_resume(one_epoch, tmp_path, capsys):
    out = tmp_path / "run"
    shutil.copytree(one_epoch, out)
    assert main(["--cell", str(CELL), "--out", str(out), "--epochs", "1", *SYNTHETIC, *TINY]) == 2
    assert "--resume" in capsys.readouterr().err
    assert (out / "train" / "epoch_1.safetensors").is_file()


@pytest.mark.parametrize("other", [["--lr", "0.5"], ["--step-head", "key"]])
def test_resume_with_other_settings_is_refused(one_epoch, tmp_path, capsys, other):
    out = tmp_path / "run"
    shutil.copytree(one_epoch, out)
    args = ["--cell", str(CELL), "--out", str(out), "--epochs", "2", "--resume", *other]
    assert main([*args, *SYNTHETIC, *TINY]) == 2
    assert "other settings (config differ)" in capsys.readouterr().err


def test_resume_from_an_optimizer_of_other_parameters_is_one_clear_error(
    one_epoch, tmp_path, capsys
):
    """What a checkpoint of a version that built a fusion this cell no longer builds gives:
    the weights load (the fusion's dropped), the optimizer's saved groups do not fit."""
    out = tmp_path / "run"
    shutil.copytree(one_epoch, out)
    path = out / "train" / read_json(out / "train" / "progress.json")["state"]
    state = torch.load(path, weights_only=True)
    extra = max(state["optimizer"]["state"]) + 1  # one more parameter than the network trains
    state["optimizer"]["param_groups"][0]["params"].append(extra)
    torch.save(state, path)
    args = ["--cell", str(CELL), "--out", str(out), "--epochs", "2", "--resume"]
    assert main([*args, *SYNTHETIC, *TINY]) == 2
    assert "optimizer state does not fit this network" in capsys.readouterr().err


def test_training_windows_compute_what_streaming_computes():
    genotype = Genotype.load(CELL)
    net = VideoSegNet(genotype, 3, NetConfig(width_mult=0.35, deep_channels=16)).eval()
    clip = torch.rand(2, 6, 3, 32, 48)
    with torch.no_grad():
        _, nonkey = window_features(net, clip)
        streamed = net(clip)
    assert [i for i, _ in nonkey] == [1, 2, 3, 5]
    for i, d_hat in nonkey:
        logits = upsample_logits(net.step_head(d_hat), clip.shape[-2:])
        torch.testing.assert_close(logits, streamed[:, i], atol=1e-4, rtol=1e-4)


def test_augmentation_is_one_transform_for_the_whole_window():
    rng = np.random.default_rng(0)
    base = np.kron(rng.integers(0, 5, (3, 4)), np.ones((8, 8), np.int64))  # 8x8 blocks
    labels = np.stack([base, base, base]).astype(np.int64)
    frames = np.repeat((labels * 50).astype(np.uint8)[..., None], 3, axis=-1)
    for seed in range(5):
        img, lab = augment_window(frames, labels, (20, 28), np.random.default_rng(seed))
        assert img.shape == (3, 20, 28, 3) and lab.shape == (3, 20, 28)
        assert (img == img[0]).all() and (lab == lab[0]).all()
        kept = lab != 255
        agree = img[..., 0][kept] == (lab * 50)[kept]  # all but bilinear block edges
        assert agree.mean() > 0.8
        assert (img[~kept] == 0).all()


def test_davis_uses_the_first_frame_mask_and_scores_j_and_f(tmp_path):
    root = make_davis(tmp_path / "DAVIS")
    out = tmp_path / "run"
    assert (
        main(
            [
                "--cell",
                str(CELL),
                "--dataset",
                "davis",
                "--data-root",
                str(root),
                "--out",
                str(out),
                "--epochs",
                "1",
                "--online-steps",
                "3",
                *TINY,
            ]
        )
        == 0
    )
    report = json.loads((out / "report.json").read_text())
    assert report["metric"] == "J&F" and report["resolution"] == [32, 48]
    assert any("first-frame mask" in note for note in report["notes"])
    for row in report["networks"].values():
        assert 0.0 <= row["quality_nonkey"] <= 1.0 and 0.0 <= row["quality_all"] <= 1.0


def heads_equal(net: VideoSegNet) -> bool:
    key, step = net.slow.head.state_dict(), net.step_head.state_dict()
    return all(torch.equal(key[name], step[name]) for name in key)


def test_a_key_step_head_is_the_key_head_in_training_and_online(tmp_path):
    out = tmp_path / "run"
    args = ["--cell", str(CELL), "--out", str(out), "--epochs", "1", "--step-head", "key"]
    assert main([*args, *SYNTHETIC, *TINY]) == 0
    net, _ = build_from_cell(out / "cell" / "cell.json")
    assert heads_equal(net)  # frozen in training, BatchNorm statistics included
    frame = np.random.default_rng(0).integers(0, 255, (32, 32, 3), dtype=np.uint8)
    mask = np.zeros((32, 32), np.int64)
    mask[8:20, 8:20] = 1
    before = {k: v.clone() for k, v in net.slow.head.state_dict().items()}
    cpu = torch.device("cpu")
    tuned = online_finetune(net, frame, mask, 3, 1e-2, cpu, "key")
    assert heads_equal(tuned)
    assert not torch.equal(
        tuned.slow.head.state_dict()["classifier.weight"], before["classifier.weight"]
    )
    assert not heads_equal(online_finetune(net, frame, mask, 3, 1e-2, cpu, "own"))


def test_the_own_step_head_is_fine_tuned_on_every_buffer_depth(one_epoch):
    """Online, the non-key head learns from the cell's outputs on frame 0 held still for
    alpha - 1 steps (1 to alpha - 1 frames in the fast buffer), not from one step only."""
    net, _ = build_from_cell(one_epoch / "cell" / "cell.json")
    net.eval()
    assert net.alpha >= 3 and net.genotype.fusion == "time_to_channel"
    frame = np.random.default_rng(1).integers(0, 255, (32, 32, 3), dtype=np.uint8)
    mask = np.zeros((32, 32), np.int64)
    mask[4:20, 6:24] = 1
    seen: list[torch.Tensor] = []
    net.step_head.register_forward_hook(lambda m, inp, out: seen.append(inp[0].detach()))
    online_finetune(net, frame, mask, 1, 1e-2, torch.device("cpu"), "own")
    with torch.no_grad():
        z = net.slow.normalize(to_tensor(np.stack([frame, frame[:, ::-1]]), "cpu"))
        fast = net.fast.encoder(z)
        _, state = net.key_from_features(net.slow.neck(net.slow.backbone(z)), fast)
        held = []
        for _ in range(net.alpha - 1):
            d_hat, state = net.cell_features(fast, state)
            held.append(d_hat)
    torch.testing.assert_close(seen[0], torch.cat(held))
    assert not torch.allclose(held[0], held[-1])  # the buffer's depth changes the cell's output


@pytest.mark.parametrize("mode", ["train", "weights", "frozen"])
def test_the_fast_encoder_trains_as_its_mode_says(one_epoch, tmp_path, mode):
    """train: weights and BatchNorm statistics change; weights (the default): the statistics
    stay the distilled ones; frozen: the distilled encoder as is."""
    out = tmp_path / "run"
    shutil.copytree(one_epoch / "teacher", out / "teacher")
    args = ["--cell", str(CELL), "--out", str(out), "--epochs", "1", "--fast-encoder", mode]
    assert main([*args, *SYNTHETIC, *TINY]) == 0
    trained = load_weights(out / "train" / "epoch_1.safetensors")
    beta = Genotype.load(CELL).beta.replace("/", "_")
    distilled = load_weights(out / "teacher" / f"fast_{beta}.safetensors")
    encoder = {
        k: v for k, v in trained.items() if k.startswith("fast.encoder.") and v.is_floating_point()
    }
    statistics = {k for k in encoder if k.endswith(("running_mean", "running_var"))}
    assert statistics and len(encoder) > len(statistics)
    for key, value in encoder.items():
        same = torch.equal(value, distilled[key.removeprefix("fast.")])
        kept = mode == "frozen" or (mode == "weights" and key in statistics)
        assert same == kept, key


def test_an_unknown_step_head_is_refused():
    with pytest.raises(ValueError, match="step_head must be one of"):
        RetrainConfig(step_head="shared")


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda a, t: a.__setitem__(1, str(t / "missing.json")), "does not exist"),
        (lambda a, t: a.__setitem__(1, str(bad_cell(t))), "alpha: got 3"),
        (
            lambda a, t: a.extend(["--dataset", "camvid", "--data-root", str(t / "nope")]),
            "does not exist",
        ),
        (
            lambda a, t: a.extend(["--dataset", "synthetic", "--teacher", str(t / "no.st")]),
            "--teacher file",
        ),
        (  # a teacher of 3 classes for the synthetic 5
            lambda a, t: a.extend(["--dataset", "synthetic", "--teacher", other_teacher(t)]),
            "2 have another shape (head.classifier.bias: (3,) in the file, (5,) expected",
        ),
    ],
)
def test_bad_input_is_one_clear_error_and_computes_nothing(tmp_path, capsys, change, message):
    args = ["--cell", str(CELL), "--out", str(tmp_path / "run"), *TINY]
    change(args, tmp_path)
    if "--dataset" not in args:
        args += ["--dataset", "synthetic"]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and message in err and "\n" not in err
    assert not (tmp_path / "run").exists()


def test_the_teacher_of_another_run_is_reused_as_it_is(one_epoch, tmp_path):
    teacher = one_epoch / "teacher" / "teacher.safetensors"
    out = tmp_path / "again"
    argv = ["--cell", str(CELL), "--out", str(out), "--teacher", str(teacher)]
    assert main([*argv, "--epochs", "1", *SYNTHETIC, *TINY]) == 0
    report = read_json(out / "report.json")
    assert report["teacher"]["source"] == str(teacher.resolve())
    assert (
        report["networks"]["static"] == read_json(one_epoch / "report.json")["networks"]["static"]
    )


def other_teacher(tmp_path: Path) -> str:
    """A static network of TINY's sizes, of 3 classes."""
    from nas.checkpoint import save_weights
    from nas.models.static import StaticSegNet

    path = tmp_path / "teacher3.safetensors"
    net = NetConfig(backbone="mobilenet_v2", width_mult=0.35, deep_channels=16)
    save_weights(StaticSegNet(3, net), path)
    return str(path)


def bad_cell(tmp_path: Path) -> Path:
    data = json.loads(CELL.read_text())
    data["alpha"] = 3
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data))
    return path


def test_help_explains_every_flag_and_shows_defaults():
    from nas.retrain import parser

    p = parser()
    for action in p._actions:
        assert action.help, f"{action.option_strings} has no help"
    text = p.format_help()
    for flag, default in [
        ("--epochs", RetrainConfig.epochs),
        ("--lr", RetrainConfig.lr),
        ("--seed", 0),
        ("--train-split", "train"),
        ("--val-split", "val"),
        ("--teacher-steps", 600),
        ("--teacher-fast-steps", 250),
    ]:
        block = text.split(f"  {flag} ", 1)[1].split("\n  --", 1)[0]
        assert f"(default: {default})" in " ".join(block.split()), (flag, block)
    assert "``report.json``" in text  # the description keeps its own line breaks


@pytest.mark.parametrize(
    "extra, message",
    [(["--lr", "0"], "--lr must be > 0"), (["--steps-per-epoch", "-1"], "--steps-per-epoch")],
)
def test_bad_numbers_are_refused_before_anything_runs(tmp_path, capsys, extra, message):
    out = tmp_path / "run"
    args = ["--cell", str(CELL), "--out", str(out), "--dataset", "synthetic", *TINY, *extra]
    assert main(args) == 2
    assert message in capsys.readouterr().err
    assert not out.exists()


def test_without_a_fast_pathway_the_step_head_is_tuned_on_one_state_as_on_all():
    """A cell reading the key frame's features only gives every non-key frame the same
    state, so the online step head learns from it once: the same head as from alpha - 1
    copies (the mean loss and its gradient are equal), at a fraction of the cost."""
    cell = Genotype(8, "1/4", "time_to_channel", (Node((0, 0), ("conv3x3", "skip")),))
    net = VideoSegNet(cell, 2, NetConfig(width_mult=0.35, deep_channels=16, head_hidden=16))
    net.eval()
    assert net.fast is None
    frame = np.random.default_rng(2).integers(0, 255, (32, 32, 3), dtype=np.uint8)
    mask = np.zeros((32, 32), np.int64)
    mask[4:20, 6:24] = 1
    seen: list[int] = []
    net.step_head.register_forward_hook(lambda m, inp, out: seen.append(len(inp[0])))
    tuned = online_finetune(net, frame, mask, 3, 1e-2, torch.device("cpu"), "own")
    assert seen == [2, 2, 2]  # the frame and its mirror, once a step

    copies = copy.deepcopy(net)
    y = torch.from_numpy(np.stack([mask, mask[:, ::-1]]).copy())
    with torch.no_grad():
        z = copies.slow.normalize(to_tensor(np.stack([frame, frame[:, ::-1]]), "cpu"))
        _, state = copies.key_from_features(copies.slow.neck(copies.slow.backbone(z)), None)
        d_hat = copies.cell_features(None, state)[0].repeat(net.alpha - 1, 1, 1, 1)
    head = copies.step_head.requires_grad_(True)
    opt = torch.optim.Adam(head.parameters(), lr=1e-2)
    for _ in range(3):
        logits = upsample_logits(head(d_hat), y.shape[-2:])
        loss = torch.nn.functional.cross_entropy(logits, y.repeat(net.alpha - 1, 1, 1))
        opt.zero_grad()
        loss.backward()
        opt.step()
    for (name, a), b in zip(tuned.step_head.state_dict().items(), head.state_dict().values()):
        torch.testing.assert_close(a, b, msg=name)


def test_the_report_says_what_the_evaluated_split_shares_with_training():
    from types import SimpleNamespace

    from nas.retrain import shared_with_training

    def clip(sequence: str, *frames: str) -> SimpleNamespace:
        return SimpleNamespace(sequence=sequence, frame_ids=list(frames))

    train = [clip("bear", "00000", "00001"), clip("surf", "00000", "00001")]
    assert shared_with_training(train, [clip("rhino", "00000")], "val") is None
    # CamVid's val: a sequence of train, other frames of it
    said = shared_with_training(train, [clip("surf", "00002")], "val")
    assert said == (
        "the val split shares 1 sequence(s) with the training split (surf); "
        "0 of its frames were trained on"
    )
    said = shared_with_training(train, [clip("surf", "00001", "00002")], "train:surf")
    assert said.endswith("1 of its frames were trained on")
