"""nas.segment on tiny generated videos: overlay, masks, frame folders, clear errors."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from nas.checkpoint import save_weights
from nas.evaluate import main as evaluate_main
from nas.models.config import NetConfig
from nas.models.video import VideoSegNet
from nas.segment import main, palette
from nas.video_report import export_cell
from search_spaces.genotype import Genotype
from tests.fixtures_data import CAMVID, make_camvid, make_cityscapes

CELL = Path(__file__).resolve().parents[1] / "docs" / "cell.json"
CLASSES = 3


@pytest.fixture(scope="module")
def cell(tmp_path_factory) -> Path:
    """An exported (untrained) cell at alpha 4, trained-at resolution 32x48."""
    folder = tmp_path_factory.mktemp("cell")
    torch.manual_seed(0)
    net = VideoSegNet(Genotype.load(CELL), CLASSES, NetConfig(width_mult=0.35, deep_channels=16))
    export_cell(folder, net.eval(), ["a", "b", "c"], (32, 48), metrics={}, provenance={})
    return folder / "cell.json"


def write_video(path: Path, frames: int = 7, size: tuple[int, int] = (40, 56)) -> Path:
    h, w = size
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10.0, (w, h))
    assert writer.isOpened()
    for t in range(frames):
        image = np.full((h, w, 3), 30, np.uint8)
        image[8:24, 4 + 4 * t : 20 + 4 * t] = 220
        writer.write(image)
    writer.release()
    return path


def count_frames(path: Path) -> tuple[int, tuple[int, int]]:
    capture = cv2.VideoCapture(str(path))
    count, shape = 0, None
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        count, shape = count + 1, frame.shape[:2]
    capture.release()
    return count, shape


def test_video_file_gives_an_overlay_and_masks(cell, tmp_path, capsys):
    video = write_video(tmp_path / "in.mp4")
    out, masks = tmp_path / "overlay.mp4", tmp_path / "masks"
    assert main([str(video), "--cell", str(cell), "--out", str(out), "--masks", str(masks)]) == 0
    assert count_frames(out) == (7, (40, 56))
    files = sorted(masks.glob("*.png"))
    assert [f.name for f in files] == [f"{t:05d}.png" for t in range(7)]
    for f in files:
        mask = cv2.imread(str(f), cv2.IMREAD_UNCHANGED)
        assert mask.shape == (40, 56) and mask.dtype == np.uint8 and mask.max() < CLASSES
    printed = capsys.readouterr().out
    assert "frames per second" in printed and "key frames 2 (29%, alpha 4)" in printed


def test_frame_folder_resolution_and_max_frames(cell, tmp_path):
    folder = tmp_path / "frames"
    folder.mkdir()
    for t in range(5):
        cv2.imwrite(str(folder / f"f{t:03d}.jpg"), np.full((36, 50, 3), 40 * t, np.uint8))
    masks = tmp_path / "masks"
    assert (
        main(
            [
                str(folder),
                "--cell",
                str(cell),
                "--masks",
                str(masks),
                "--resolution",
                "64x96",
                "--max-frames",
                "3",
            ]
        )
        == 0
    )
    files = sorted(masks.glob("*.png"))
    assert [f.name for f in files] == ["f000.png", "f001.png", "f002.png"]  # the frames' names
    assert cv2.imread(str(files[0]), cv2.IMREAD_UNCHANGED).shape == (36, 50)


def test_masks_of_a_benchmark_frame_folder_are_scored_by_nas_evaluate(cell, tmp_path):
    """segment -> evaluate on CamVid's own layout: the masks carry the label files' names."""
    root = make_camvid(tmp_path)
    masks = tmp_path / "preds"
    frames = root / "CamVid" / "val"
    assert main([str(frames), "--cell", str(cell), "--masks", str(masks)]) == 0
    assert {p.name for p in masks.iterdir()} == {p.name for p in frames.iterdir()}
    argv = ["--dataset", "camvid", "--data-root", str(root), "--split", "val"]
    assert (
        evaluate_main([*argv, "--predictions", str(masks), "--json", str(tmp_path / "r.json")]) == 0
    )
    result = json.loads((tmp_path / "r.json").read_text())
    assert result["frames"] == len(CAMVID["val"]) and 0 <= result["mIoU"] <= 1


def test_masks_of_a_cityscapes_cell_hold_label_ids_and_are_scored(cell, tmp_path):
    """A Cityscapes cell predicts train ids; the official evaluation reads label ids."""
    folder = tmp_path / "cityscapes_cell"
    shutil.copytree(cell.parent, folder)
    data = json.loads((folder / "cell.json").read_text())
    data["provenance"] = {**(data.get("provenance") or {}), "dataset": "cityscapes"}
    (folder / "cell.json").write_text(json.dumps(data))
    root = make_cityscapes(tmp_path)
    preds = tmp_path / "preds"
    for city in ("aachen", "bochum"):
        frames = root / "leftImg8bit" / "val" / city
        argv = [str(frames), "--cell", str(folder / "cell.json"), "--masks", str(preds / city)]
        assert main(argv) == 0
    values = set()
    for path in preds.glob("*/*.png"):
        values |= set(np.unique(cv2.imread(str(path), cv2.IMREAD_UNCHANGED)).tolist())
    assert values and values <= {7, 8, 11}  # road, sidewalk, building: train ids 0, 1, 2
    argv = ["--dataset", "cityscapes", "--data-root", str(root), "--split", "val"]
    assert evaluate_main([*argv, "--predictions", str(preds)]) == 0


def test_masks_never_overwrite_the_frames(cell, tmp_path, capsys):
    folder = tmp_path / "frames"
    folder.mkdir()
    cv2.imwrite(str(folder / "f.png"), np.full((36, 50, 3), 40, np.uint8))
    before = (folder / "f.png").read_bytes()
    assert main([str(folder), "--cell", str(cell), "--masks", str(folder)]) == 2
    assert "the masks would overwrite the frames" in capsys.readouterr().err
    assert (folder / "f.png").read_bytes() == before


@pytest.mark.parametrize(
    "what", ["missing", "not a video", "empty folder", "one name twice", "missing cell"]
)
def test_unreadable_input_is_one_clear_error(cell, tmp_path, capsys, what):
    video, cell_path = tmp_path / "in.mp4", cell
    if what == "not a video":
        video.write_text("this is no video")
    elif what == "empty folder":
        video = tmp_path / "empty"
        video.mkdir()
    elif what == "one name twice":  # f.png and f.jpg would write one mask f.png
        video = tmp_path / "frames"
        video.mkdir()
        for suffix in (".png", ".jpg"):
            cv2.imwrite(str(video / f"f{suffix}"), np.zeros((8, 8, 3), np.uint8))
    elif what == "missing cell":
        write_video(video, frames=2)
        cell_path = tmp_path / "nope.json"
    argv = [str(video), "--cell", str(cell_path), "--out", str(tmp_path / "o.mp4")]
    if what == "one name twice":  # only an error where masks are written
        assert main(argv) == 0
        (tmp_path / "o.mp4").unlink()
        argv += ["--masks", str(tmp_path / "masks")]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err
    assert not (tmp_path / "o.mp4").exists()


def test_palette_is_fixed_and_distinct():
    colours = palette(12)
    assert colours.shape == (12, 3) and len({tuple(c) for c in colours}) == 12
    np.testing.assert_array_equal(palette(12), colours)


# ---- what segment refuses, and the resolution it runs at -------------------------------------
def bare_cell(tmp_path: Path, cell: Path, **changes) -> Path:
    """A copy of ``cell``'s cell.json alone in a folder (no weights beside it), edited."""
    folder = tmp_path / "bare"
    folder.mkdir(exist_ok=True)
    data = {**json.loads(cell.read_text()), **changes}
    path = folder / "cell.json"
    path.write_text(json.dumps(data))
    return path


def run_main(argv: list[str]) -> int:
    try:
        return main(argv)
    except SystemExit as exc:  # argparse's own errors
        return exc.code


@pytest.mark.parametrize(
    "what, message",
    [
        ("no weights", "has no weights.safetensors beside it"),
        ("bare genotype", "python -m nas.export"),
        ("other weights", "does not fit the cell"),
        ("cuda without cuda", "no CUDA GPU"),
        ("no such device", "is no torch device"),
        ("max frames 0", "--max-frames"),
    ],
)
def test_what_cannot_run_is_refused_with_one_clear_error(
    cell, tmp_path, capsys, monkeypatch, what, message
):
    video = write_video(tmp_path / "in.mp4", frames=3)
    out = tmp_path / "o.mp4"
    argv = [str(video), "--out", str(out), "--cell", str(cell)]
    if what == "no weights":
        argv[-1] = str(bare_cell(tmp_path, cell))
    elif what == "bare genotype":
        argv[-1] = str(CELL)
    elif what == "other weights":
        other = VideoSegNet(Genotype.load(CELL), 5, NetConfig(width_mult=0.35, deep_channels=24))
        save_weights(other, tmp_path / "other.safetensors")
        argv += ["--weights", str(tmp_path / "other.safetensors")]
    elif what == "cuda without cuda":
        monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
        argv += ["--device", "cuda"]
    elif what == "no such device":
        argv += ["--device", "gpu0"]
    elif what == "max frames 0":
        argv += ["--max-frames", "0"]
    assert run_main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert message in err, err
    assert "Traceback" not in err and err.count("error:") == 1
    assert not out.exists()


def test_random_weights_runs_a_cell_without_weights_when_asked(cell, tmp_path):
    video = write_video(tmp_path / "in.mp4", frames=2)
    argv = [str(video), "--cell", str(bare_cell(tmp_path, cell)), "--random-weights"]
    assert main(argv) == 0


def sizes_run(monkeypatch) -> list[tuple[int, int]]:
    """Record the frame size each network step gets."""
    import nas.segment

    seen: list[tuple[int, int]] = []
    real = nas.segment.StreamingSegmenter

    class Recording(real):
        def __call__(self, frame):
            seen.append(tuple(frame.shape[-2:]))
            return super().__call__(frame)

    monkeypatch.setattr(nas.segment, "StreamingSegmenter", Recording)
    return seen


@pytest.mark.parametrize("where", ["top level", "provenance only"])
def test_a_cell_runs_at_the_resolution_it_was_trained_at(cell, tmp_path, monkeypatch, where):
    """nas.retrain and nas.export write top-level ``resolution``; cells nas.export wrote
    before keep it only under ``provenance``."""
    path = cell
    if where == "provenance only":
        folder = tmp_path / "old-export"
        shutil.copytree(cell.parent, folder)
        data = json.loads((folder / "cell.json").read_text())
        data["provenance"] = {"resolution": data.pop("resolution")}
        (folder / "cell.json").write_text(json.dumps(data))
        path = folder / "cell.json"
    seen = sizes_run(monkeypatch)
    video = write_video(tmp_path / "in.mp4", frames=2)
    masks = tmp_path / "masks"
    assert main([str(video), "--cell", str(path), "--masks", str(masks)]) == 0
    assert seen == [(32, 48)] * 2
    assert cv2.imread(str(masks / "00000.png"), cv2.IMREAD_UNCHANGED).shape == (40, 56)


def test_a_run_that_fails_midway_leaves_no_partial_video(cell, tmp_path, capsys):
    folder = tmp_path / "frames"
    folder.mkdir()
    for t in range(3):
        cv2.imwrite(str(folder / f"f{t:03d}.png"), np.full((36, 50, 3), 40 * t, np.uint8))
    (folder / "f003.png").write_bytes(b"not an image")
    out = tmp_path / "overlay.mp4"
    assert main([str(folder), "--cell", str(cell), "--out", str(out)]) == 2
    assert "cannot read frame" in capsys.readouterr().err
    assert list(tmp_path.glob("*.mp4")) == [] and not list(tmp_path.glob(".*mp4"))
