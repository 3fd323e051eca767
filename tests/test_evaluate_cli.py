"""`python -m nas.evaluate` end to end on tiny fixtures in the benchmarks' own layouts."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from nas.evaluate import main
from tests.fixtures_data import (
    CAMVID,
    CITY_FRAMES,
    cityscapes_label_ids,
    davis2017_ids,
    davis_mask,
    make_camvid,
    make_cityscapes,
    make_davis2016,
    make_davis2017,
    palette_png,
    write_png,
)

REPO = Path(__file__).resolve().parents[1]


def run(tmp_path: Path, *args: str) -> dict:
    out = tmp_path / "result.json"
    assert main([*args, "--json", str(out)]) == 0
    return json.loads(out.read_text())


def half_and_half() -> np.ndarray:
    labels = np.zeros((24, 32), np.uint8)
    labels[:, 16:] = 1
    return labels


def test_camvid_perfect_and_hand_computed(tmp_path):
    root = make_camvid(tmp_path)
    annot = root / "CamVid" / "valannot"
    preds = tmp_path / "preds"
    for name in CAMVID["val"]:
        write_png(annot / f"{name}.png", half_and_half())
        write_png(preds / "nested" / f"{name}.png", half_and_half())
    args = ["--dataset", "camvid", "--data-root", str(root), "--predictions", str(preds)]
    perfect = run(tmp_path, *args)
    assert perfect["mIoU"] == 1.0 and perfect["temporal_consistency"] == 0.0
    assert perfect["class_iou"]["Sky"] == 1.0 and perfect["class_iou"]["Car"] is None
    # first frame predicts all Sky (0): class 0 IoU 1152/1536, class 1 IoU 768/1152;
    # 384 of the 1536 steady pixel pairs flip
    write_png(preds / "nested" / f"{CAMVID['val'][0]}.png", np.zeros((24, 32), np.uint8))
    result = run(tmp_path, *args)
    assert result["mIoU"] == pytest.approx((0.75 + 2 / 3) / 2, abs=1e-9)
    assert result["class_iou"]["Building"] == pytest.approx(2 / 3)
    assert result["temporal_consistency"] == pytest.approx(0.25)


def test_missing_prediction_is_a_clear_error(tmp_path, capsys):
    root = make_camvid(tmp_path)
    preds = tmp_path / "preds"
    for name in CAMVID["val"][1:]:
        write_png(preds / f"{name}.png", half_and_half())
    code = main(["--dataset", "camvid", "--data-root", str(root), "--predictions", str(preds)])
    assert code != 0
    assert f"no prediction for {CAMVID['val'][0]}.png" in capsys.readouterr().err


def test_cityscapes_ours_matches_official(tmp_path, capsys):
    root = make_cityscapes(tmp_path, snippet_len=1, label_index=0)
    preds = tmp_path / "preds"
    gt = cityscapes_label_ids()
    for frame_id in CITY_FRAMES:
        write_png(preds / frame_id.split("_")[0] / f"{frame_id}_pred.png", gt)
    args = ["--dataset", "cityscapes", "--data-root", str(root), "--predictions", str(preds)]
    perfect = run(tmp_path, *args)
    assert perfect["mIoU"] == pytest.approx(1.0) and perfect["official_mIoU"] == pytest.approx(1.0)
    wrong = gt.copy()
    wrong[10:16, 4:8] = 7  # part of the car predicted as road
    wrong[:3] = 21  # part of the sky predicted as vegetation
    wrong[20, :] = 0  # 'unlabeled' predicted on road: a miss
    write_png(preds / "aachen" / f"{CITY_FRAMES[0]}_pred.png", wrong)
    result = run(tmp_path, *args)
    assert 0.3 < result["mIoU"] < 0.95
    assert result["mIoU"] == pytest.approx(result["official_mIoU"], abs=1e-6)
    assert result["class_iou"]["car"] < 1.0
    (preds / "bochum" / f"{CITY_FRAMES[1]}_pred.png").unlink()
    assert main([*args]) == 1
    assert f"no prediction for {CITY_FRAMES[1]}*.png" in capsys.readouterr().err


def test_davis2016_perfect_and_hand_computed(tmp_path):
    root = make_davis2016(tmp_path)
    preds = tmp_path / "preds"
    for t in range(4):  # 0/255 masks like the dataset; frame 3's ground truth is empty
        write_png(preds / "blob" / f"{t:05d}.png", davis_mask(t) * (t != 3))
    args = ["--dataset", "davis", "--data-root", str(root), "--split", "train"]
    perfect = run(tmp_path, *args, "--predictions", str(preds))
    assert perfect["J"] == 1.0 and perfect["F"] == 1.0 and perfect["JF"] == 1.0
    assert perfect["year"] == 2016 and perfect["mode"] == "semi-supervised"
    # semi-supervised scores frames 1 and 2; an empty frame 1 gives J = F = 0 there
    write_png(preds / "blob" / "00001.png", np.zeros((24, 32), np.uint8))
    result = run(tmp_path, *args, "--predictions", str(preds))
    assert result["J"] == pytest.approx(0.5) and result["F"] == pytest.approx(0.5)
    assert result["JF"] == pytest.approx(0.5)
    (preds / "blob" / "00002.png").unlink()
    assert main([*args, "--predictions", str(preds)]) == 1


def test_davis2017_palette_predictions(tmp_path):
    root = make_davis2017(tmp_path)
    preds = tmp_path / "preds"
    for t in range(4):
        ids = davis2017_ids(t)
        ids[ids == 255] = 0
        palette_png(preds / "two" / f"{t:05d}.png", ids)
    result = run(
        tmp_path, "--dataset", "davis", "--data-root", str(root), "--predictions", str(preds)
    )
    assert result["year"] == 2017 and result["J"] == 1.0 and result["F"] == 1.0


def test_cli_runs_as_a_module(tmp_path):
    root = make_davis2016(tmp_path)
    preds = tmp_path / "preds"
    for name in ["0", "2", "10"]:
        write_png(preds / "odd" / f"{name}.png", davis_mask(int(name) % 5) // 255)  # 0/1 masks
    out = tmp_path / "davis.json"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "nas.evaluate",
            "--dataset",
            "davis",
            "--data-root",
            str(root),
            "--predictions",
            str(preds),
            "--json",
            str(out),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "JF" in done.stdout and json.loads(out.read_text())["JF"] == 1.0
