"""nas.segment on tiny generated videos: overlay, masks, frame folders, clear errors."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from nas.models.config import NetConfig
from nas.models.video import VideoSegNet
from nas.segment import main, palette
from nas.video_report import export_cell
from search_spaces.genotype import Genotype

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
    assert len(files) == 3
    assert cv2.imread(str(files[0]), cv2.IMREAD_UNCHANGED).shape == (36, 50)


@pytest.mark.parametrize("what", ["missing", "not a video", "empty folder", "missing cell"])
def test_unreadable_input_is_one_clear_error(cell, tmp_path, capsys, what):
    video, cell_path = tmp_path / "in.mp4", cell
    if what == "not a video":
        video.write_text("this is no video")
    elif what == "empty folder":
        video = tmp_path / "empty"
        video.mkdir()
    elif what == "missing cell":
        write_video(video, frames=2)
        cell_path = tmp_path / "nope.json"
    assert main([str(video), "--cell", str(cell_path), "--out", str(tmp_path / "o.mp4")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err
    assert not (tmp_path / "o.mp4").exists()


def test_palette_is_fixed_and_distinct():
    colours = palette(12)
    assert colours.shape == (12, 3) and len({tuple(c) for c in colours}) == 12
    np.testing.assert_array_equal(palette(12), colours)
