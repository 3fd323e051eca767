"""Real-dataset loaders on tiny fixtures written in each benchmark's own layout
(built by tests/fixtures_data.py)."""

from __future__ import annotations

import numpy as np
import pytest

from nas.data import (
    DATASETS,
    DatasetLayoutError,
    ImageReadError,
    class_names,
    iter_clips,
    load_clips,
    num_classes,
    sequence_specs,
)
from nas.data.davis import detect_year, first_frame_mask
from nas.data.images import resize_labels
from tests.fixtures_data import (
    CITY_FRAMES,
    H,
    W,
    camvid_label,
    davis2017_ids,
    davis_mask,
    frame,
    make_camvid,
    make_cityscapes,
    make_davis2016,
    make_davis2017,
    write_png,
)


# --- CamVid -------------------------------------------------------------------------------
def test_camvid_accepts_both_roots_and_groups_sequences(tmp_path):
    parent = make_camvid(tmp_path)
    for root in (parent, parent / "CamVid"):
        specs = sequence_specs("camvid", root, "train")
        assert [(s.sequence, s.frame_ids) for s in specs] == [
            ("0001TP", ("0001TP_006690", "0001TP_006720")),
            ("0006R0", ("0006R0_f00930", "0006R0_f00960")),
            ("0016E5", ("0016E5_00390", "0016E5_00420")),  # cut at the 1980-frame gap
            ("0016E5", ("0016E5_02400",)),
        ]


def test_camvid_reads_frames_and_maps_void(tmp_path):
    clips = load_clips("camvid", make_camvid(tmp_path), "val")
    (clip,) = clips
    assert clip.frames.shape == (3, H, W, 3) and clip.frames.dtype == np.uint8
    assert clip.labelled.all() and clip.num_classes == 11 and clip.dataset == "camvid"
    np.testing.assert_array_equal(clip.frames[1], frame(1))
    raw = camvid_label(1).astype(np.int64)
    np.testing.assert_array_equal(clip.labels[1], np.where(raw == 11, 255, raw))


def test_camvid_video_frames_fill_gaps_unlabelled(tmp_path):
    root = make_camvid(tmp_path, video=True)
    first = load_clips("camvid", root, "train")[0]
    assert first.frame_ids == ["0001TP_006690", "0001TP_006700", "0001TP_006710", "0001TP_006720"]
    assert first.labelled.tolist() == [True, False, False, True]
    assert (first.labels[1:3] == 255).all()
    np.testing.assert_array_equal(first.frames[1], frame(100))
    assert load_clips("camvid", root, "train", labelled_only=True)[0].frame_ids == [
        "0001TP_006690",
        "0001TP_006720",
    ]
    # windows of 2: [6690, 6700] and [6710, 6720] both hold a labelled frame
    clips = load_clips("camvid", root, "train", clip_len=2, max_clips=2)
    assert [c.frame_ids[0] for c in clips] == ["0001TP_006690", "0016E5_00390"]


def test_camvid_resize_and_windows(tmp_path):
    clips = load_clips("camvid", make_camvid(tmp_path), "val", clip_len=2, size=(12, 20))
    assert len(clips) == 1 and clips[0].frames.shape == (2, 12, 20, 3)
    assert set(np.unique(clips[0].labels)) <= set(range(11)) | {255}
    with pytest.raises(ValueError, match="no clip of 5 frames"):
        load_clips("camvid", make_camvid(tmp_path / "b"), "val", clip_len=5)


def test_camvid_without_list_files_uses_folders(tmp_path):
    root = make_camvid(tmp_path)
    (root / "CamVid" / "val.txt").unlink()
    assert len(load_clips("camvid", root, "val")[0]) == 3


def test_camvid_wrong_root_names_path_and_layout(tmp_path):
    with pytest.raises(DatasetLayoutError, match="(?s)camvid data root .*nowhere.*SegNet layout"):
        load_clips("camvid", tmp_path / "nowhere", "train")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetLayoutError, match="trainannot"):
        load_clips("camvid", tmp_path / "empty", "train")


def test_camvid_missing_label_names_file(tmp_path):
    root = make_camvid(tmp_path)
    (root / "CamVid" / "valannot" / "0016E5_07961.png").unlink()
    with pytest.raises(DatasetLayoutError, match="valannot/0016E5_07961.png"):
        load_clips("camvid", root, "val")


def test_corrupt_image_names_file(tmp_path):
    root = make_camvid(tmp_path)
    bad = root / "CamVid" / "val" / "0016E5_07961.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    with pytest.raises(ImageReadError, match="0016E5_07961.png"):
        load_clips("camvid", root, "val")


def test_colour_label_image_is_refused(tmp_path):
    root = make_camvid(tmp_path)
    write_png(root / "CamVid" / "valannot" / "0016E5_07959.png", frame(0))
    with pytest.raises(ImageReadError, match="mode RGB"):
        load_clips("camvid", root, "val")


# --- Cityscapes -----------------------------------------------------------------------------
def test_cityscapes_snippets_with_train_ids(tmp_path):
    root = make_cityscapes(tmp_path)
    clips = load_clips("cityscapes", root, "val")
    assert [c.sequence for c in clips] == CITY_FRAMES
    clip = clips[0]
    assert clip.frames.shape == (30, H, W, 3) and clip.num_classes == 19
    assert clip.labelled.tolist() == [t == 19 for t in range(30)]
    assert clip.frame_ids[0] == "aachen_000000_000000" and clip.frame_ids[19] == CITY_FRAMES[0]
    np.testing.assert_array_equal(clip.frames[19], frame(0))
    np.testing.assert_array_equal(clip.frames[3], frame(3))
    labels = clip.labels[19]
    assert (
        labels[0, 0] == 10 and labels[12, 5] == 13 and labels[8, 20] == 0 and labels[-1, 0] == 255
    )
    assert (clip.labels[:19] == 255).all() and (clip.labels[20:] == 255).all()
    short = load_clips("cityscapes", root, "val", clip_len=4)[0]
    assert short.frame_ids[-1] == CITY_FRAMES[0] and short.labelled.tolist()[-1]


def test_cityscapes_short_snippets_and_no_sequences(tmp_path):
    root = make_cityscapes(tmp_path, snippet_len=6, label_index=3)
    clip = load_clips("cityscapes", root, "val", snippet_len=6, label_index=3)[0]
    assert clip.labelled.tolist() == [False, False, False, True, False, False]
    single = load_clips("cityscapes", root, "val", sequences=False)
    assert [len(c) for c in single] == [1, 1] and single[0].labelled.all()


def test_cityscapes_missing_sequence_frame_and_wrong_root(tmp_path):
    root = make_cityscapes(tmp_path, snippet_len=6, label_index=3)
    with pytest.raises(DatasetLayoutError, match="aachen_000000_000000_leftImg8bit.png"):
        load_clips("cityscapes", root, "val")  # default: 30-frame snippets
    with pytest.raises(DatasetLayoutError, match="(?s)has no .*gtFine/val.*leftImg8bit/<split>"):
        load_clips("cityscapes", tmp_path, "val")
    (root / "leftImg8bit/val/bochum" / f"{CITY_FRAMES[1]}_leftImg8bit.png").unlink()
    with pytest.raises(DatasetLayoutError, match=f"image .*{CITY_FRAMES[1]}_leftImg8bit.png"):
        load_clips("cityscapes", root, "val", sequences=False)


# --- DAVIS ----------------------------------------------------------------------------------
def test_davis2016_binary_masks_la_empty_and_numeric_order(tmp_path):
    root = make_davis2016(tmp_path)
    assert detect_year(root) == 2016 and num_classes("davis", root) == 2
    (blob,) = load_clips("davis", root, "train")
    assert blob.num_classes == 2 and blob.labelled.all() and blob.sequence == "blob"
    np.testing.assert_array_equal(blob.labels[0], davis_mask(0) // 255)
    np.testing.assert_array_equal(blob.labels[2], davis_mask(2) // 255)  # LA mask
    assert (blob.labels[3] == 0).all()  # empty mask
    np.testing.assert_array_equal(first_frame_mask(blob), blob.labels[0])
    (odd,) = load_clips("davis", root / "DAVIS", "val")
    assert odd.frame_ids == ["0", "2", "10"]


def test_davis2017_object_ids_void_and_unlabelled_frames(tmp_path):
    root = make_davis2017(tmp_path, first_only="late")
    assert detect_year(root) == 2017 and num_classes("davis", root) == 3
    two, late = load_clips("davis", root, "val")
    assert two.num_classes == 3 and late.num_classes == 3
    np.testing.assert_array_equal(two.labels[1], davis2017_ids(1))  # palette indices, 255 kept
    assert late.labelled.tolist() == [True, False, False, False]
    assert (late.labels[1:] == 255).all()


def test_davis2017_read_as_2016_merges_objects(tmp_path):
    root = make_davis2017(tmp_path)
    (root / "ImageSets/2016").mkdir()
    (root / "ImageSets/2016/val.txt").write_text("two\n")
    (clip,) = load_clips("davis", root, "val", year=2016)
    assert clip.num_classes == 2 and set(np.unique(clip.labels)) == {0, 1, 255}


def test_davis_errors(tmp_path):
    with pytest.raises(DatasetLayoutError, match="(?s)DAVIS root .*JPEGImages/480p"):
        load_clips("davis", tmp_path, "val")
    root = make_davis2016(tmp_path)
    with pytest.raises(
        DatasetLayoutError, match=r"(?s)test.txt does not exist.*\['train', 'val'\]"
    ):
        load_clips("davis", root, "test")
    with pytest.raises(DatasetLayoutError, match="2016 layout"):
        load_clips("davis", root, "val", year=2017)


# --- registry -------------------------------------------------------------------------------
def test_registry_names_and_errors(tmp_path):
    assert DATASETS == ("synthetic", "camvid", "cityscapes", "davis")
    with pytest.raises(ValueError, match="synthetic, camvid, cityscapes, davis"):
        load_clips("kitti", None, "train")
    with pytest.raises(DatasetLayoutError, match="needs a data root"):
        load_clips("camvid", None, "train")
    assert class_names("camvid")[10] == "Bicyclist" and len(class_names("cityscapes")) == 19
    assert class_names("cityscapes")[13] == "car" and num_classes("cityscapes") == 19
    assert class_names("davis", num_classes=3) == ("background", "object 1", "object 2")


def test_resize_labels_is_nearest_and_adds_no_values():
    labels = np.arange(12).reshape(3, 4)
    np.testing.assert_array_equal(resize_labels(labels, (6, 8))[::2, ::2], labels)
    assert set(np.unique(resize_labels(labels, (2, 3)))) <= set(range(12))


def test_clip_subset_keeps_frames_labels_and_ids_together():
    clip = next(iter_clips("synthetic", None, "train", clip_len=6, size=(24, 32), max_clips=1))
    head = clip.subset(slice(0, 4), "seq[train]")
    assert len(head) == 4 and head.sequence == "seq[train]"
    assert head.frame_ids == clip.frame_ids[:4]
    np.testing.assert_array_equal(head.labels, clip.labels[:4])
    mask = np.array([True, False, True, False, False, True])
    picked = clip.subset(mask)
    assert picked.sequence == clip.sequence
    assert picked.frame_ids == [clip.frame_ids[i] for i in (0, 2, 5)]
    np.testing.assert_array_equal(picked.frames, clip.frames[[0, 2, 5]])
