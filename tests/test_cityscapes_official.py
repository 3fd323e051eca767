"""The official Cityscapes script and our ConfusionMatrix agree on label-id PNGs."""

import math

import numpy as np
import pytest
from PIL import Image

from evaluation.cityscapes import (
    official_miou,
    our_miou_on_label_id_files,
    train_ids_to_label_ids,
)
from evaluation.metrics import ConfusionMatrix

# label ids (cityscapesscripts.helpers.labels)
UNLABELED, EGO, ROAD, SIDEWALK, BUILDING, SKY, PERSON, CAR, TRUCK = 0, 1, 7, 8, 11, 23, 24, 26, 27


def _scene(shift: int) -> np.ndarray:
    gt = np.full((64, 128), ROAD, np.uint8)
    gt[:32, :64] = BUILDING
    gt[:32, 64:] = SKY
    gt[28:44, 20 + shift : 50 + shift] = CAR
    gt[56:, :] = EGO  # ignored in evaluation
    gt[:, :2] = UNLABELED
    return gt


def _prediction(gt: np.ndarray) -> np.ndarray:
    pred = gt.copy()
    pred[pred == EGO] = ROAD
    pred[pred == UNLABELED] = PERSON  # on ignored ground truth: must not count
    pred[40:44, :] = SIDEWALK  # sidewalk is absent from the ground truth: IoU 0
    pred[30:34, 20:40] = TRUCK  # car pixels predicted as truck
    pred[10:14, 70:90] = UNLABELED  # an ignored label predicted on sky: a false negative
    pred[0:4, 2:30] = SKY
    return pred


def _write_split(root, scenes):
    """Ground truth in the real Cityscapes layout, predictions in a results folder."""
    gt_files, pred_files = [], []
    for i, (city, gt, pred) in enumerate(scenes):
        stem = f"{city}_000000_{i:06d}"
        gt_path = root / "gtFine" / "val" / city / f"{stem}_gtFine_labelIds.png"
        pred_path = root / "results" / f"{stem}_pred.png"
        for path, array in ((gt_path, gt), (pred_path, pred)):
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(array).save(path)
        gt_files.append(str(gt_path))
        pred_files.append(str(pred_path))
    return pred_files, gt_files


@pytest.fixture
def split(tmp_path):
    scenes = [(city, _scene(s), _prediction(_scene(s))) for city, s in [("lindau", 0), ("ulm", 9)]]
    return _write_split(tmp_path, scenes)


def test_official_miou_equals_ours(split):
    pred_files, gt_files = split
    official = official_miou(pred_files, gt_files)
    ours = our_miou_on_label_id_files(pred_files, gt_files)
    assert official["official_mIoU"] == pytest.approx(ours, abs=1e-6)
    assert 0.3 < ours < 1.0
    ious = official["class_iou"]
    assert len(ious) == 19
    assert ious["sidewalk"] == 0.0
    assert math.isnan(ious["person"])  # predicted only on ignored pixels
    assert math.isnan(ious["bicycle"])
    assert 0 < ious["car"] < 1 and 0 < ious["sky"] < 1
    assert official["official_mIoU"] == pytest.approx(np.nanmean(list(ious.values())))


def test_train_id_predictions_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    train_gt = rng.integers(0, 19, size=(64, 128))
    train_gt[:8] = 255
    train_pred = np.where(
        rng.random(train_gt.shape) < 0.7, train_gt, rng.integers(0, 19, (64, 128))
    )
    train_pred[-4:] = 255  # "unsure" predictions
    train_pred[train_pred == 3] = 4  # wall is never predicted
    pred_files, gt_files = _write_split(
        tmp_path,
        [("zurich", train_ids_to_label_ids(train_gt), train_ids_to_label_ids(train_pred))],
    )
    # ignored gt train ids became 'unlabeled'; the official script ignores it all the same
    reference = ConfusionMatrix(19)
    reference.update(train_pred, train_gt)
    assert official_miou(pred_files, gt_files)["official_mIoU"] == pytest.approx(
        reference.miou(), abs=1e-6
    )


def test_train_ids_to_label_ids():
    mapped = train_ids_to_label_ids(np.array([[0, 1, 18, 255]]))
    assert mapped.tolist() == [[ROAD, SIDEWALK, 33, UNLABELED]]
    assert mapped.dtype == np.uint8
    with pytest.raises(ValueError, match="train ids"):
        train_ids_to_label_ids(np.array([19]))


def test_train_id_255_prediction_gives_clear_error(split, tmp_path):
    pred_files, gt_files = split
    bad = np.asarray(Image.open(pred_files[0])).copy()
    bad[0, 0] = 255
    Image.fromarray(bad).save(pred_files[0])
    with pytest.raises(ValueError, match="train_ids_to_label_ids"):
        official_miou(pred_files, gt_files)


def test_official_errors_become_runtime_errors(split, tmp_path):
    pred_files, gt_files = split
    small = tmp_path / "small_pred.png"
    Image.fromarray(np.zeros((32, 64), np.uint8)).save(small)
    with pytest.raises(RuntimeError, match="widths"):
        official_miou([str(small), pred_files[1]], gt_files)
    with pytest.raises(ValueError, match="one prediction per"):
        official_miou(pred_files[:1], gt_files)
