"""Segmentation metrics: hand-computed mIoU cases and the official DAVIS reference values."""

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from evaluation.metrics import (
    ConfusionMatrix,
    davis_summary,
    db_eval_boundary,
    db_eval_iou,
    db_statistics,
    evaluate_davis_sequence,
    temporal_consistency,
)

FIXTURES = Path(__file__).parent / "fixtures"
CASES = json.loads((FIXTURES / "cases.json").read_text())


def test_miou_hand_case_with_ignore_and_absent_class():
    gt = np.array([[0, 0, 1, 1], [0, 255, 1, 1]])
    pred = np.array([[0, 1, 1, 1], [0, 2, 1, 0]])
    cm = ConfusionMatrix(num_classes=4)
    cm.update(pred, gt)
    # class 0: tp 2, fn 1 (a 1), fp 1 -> 2/4; class 1: tp 3, fn 1, fp 1 -> 3/5;
    # class 2: only predicted on an ignored pixel -> absent; class 3 absent
    np.testing.assert_allclose(cm.iou(), [0.5, 0.6, np.nan, np.nan])
    assert cm.miou() == pytest.approx(0.55)
    assert cm.pixel_accuracy() == pytest.approx(5 / 7)
    assert cm.matrix.dtype == np.int64 and cm.matrix.shape == (4, 4)
    assert cm.matrix.sum() == 7


def test_class_only_predicted_counts_as_zero():
    cm = ConfusionMatrix(3)
    cm.update(np.array([0, 2]), np.array([0, 0]))
    np.testing.assert_allclose(cm.iou(), [0.5, np.nan, 0.0])
    assert cm.miou() == pytest.approx(0.25)


def test_out_of_range_prediction_is_a_false_negative_only():
    cm = ConfusionMatrix(2)
    cm.update(np.array([255, 0, 1, -3]), np.array([0, 0, 1, 1]))
    # class 0: tp 1, fn 1 (the 255); class 1: tp 1, fn 1 (the -3); no false positives
    np.testing.assert_allclose(cm.iou(), [0.5, 0.5])
    assert cm.out_of_range.tolist() == [1, 1]
    assert cm.pixel_accuracy() == pytest.approx(0.5)


def test_accumulation_merge_and_torch_inputs_match_one_update():
    rng = np.random.default_rng(0)
    gt = rng.integers(0, 6, size=(4, 16, 16))
    gt[rng.random(gt.shape) < 0.1] = 255
    pred = rng.integers(0, 6, size=(4, 16, 16))
    whole = ConfusionMatrix(6)
    whole.update(pred, gt)

    parts = ConfusionMatrix(6)
    for t in range(2):
        parts.update(torch.from_numpy(pred[t]), torch.from_numpy(gt[t]))
    other = ConfusionMatrix(6)
    other.update(pred[2:], gt[2:])
    parts.merge(other)
    np.testing.assert_array_equal(parts.matrix, whole.matrix)
    assert parts.miou() == whole.miou()


def test_confusion_matrix_rejects_bad_inputs():
    cm = ConfusionMatrix(3)
    with pytest.raises(ValueError, match="outside"):
        cm.update(np.array([0]), np.array([7]))
    with pytest.raises(ValueError, match="shape"):
        cm.update(np.zeros(3, int), np.zeros(4, int))
    with pytest.raises(TypeError, match="integer"):
        cm.update(np.zeros(3), np.zeros(3, int))
    with pytest.raises(ValueError, match="merge"):
        cm.merge(ConfusionMatrix(4))
    assert math.isnan(cm.miou()) and math.isnan(cm.pixel_accuracy())


def _case(name):
    h, w = CASES[name]["shape"]
    packed = np.load(FIXTURES / "cases.npz")

    def unpack(key):
        return np.unpackbits(packed[f"{name}__{key}"])[: h * w].reshape(h, w).astype(bool)

    return unpack("gt"), unpack("pred")


@pytest.mark.parametrize("name", sorted(CASES))
def test_davis_j_and_f_match_official(name):
    gt, pred = _case(name)
    assert db_eval_iou(gt, pred) == pytest.approx(CASES[name]["J"], abs=1e-6)
    assert db_eval_boundary(gt, pred) == pytest.approx(CASES[name]["F"], abs=1e-6)


def test_void_pixels_are_left_out_of_j():
    gt = np.array([[1, 1, 0, 0]], bool)
    pred = np.array([[1, 0, 1, 0]], bool)
    assert db_eval_iou(gt, pred) == pytest.approx(1 / 3)
    assert db_eval_iou(gt, pred, void_pixels=np.array([[0, 1, 1, 0]], bool)) == 1.0


def test_db_statistics_hand_case():
    # 8 frames: the official bin edges are frames 0, 2, 4, 5, 7 (bins include both edges),
    # so the first bin is frames 0-2 and the last frames 5-7
    values = np.array([1.0, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3])
    mean, recall, decay = db_statistics(values)
    assert mean == pytest.approx(0.65)
    assert recall == pytest.approx(5 / 8)  # 0.5 itself is not a success
    assert decay == pytest.approx(0.9 - 0.4)
    mean, recall, decay = db_statistics(np.array([1.0, np.nan, 0.0, 0.0, 0.2]))
    # bins [0:2] and [3:5]; the NaN frame is skipped everywhere
    assert (mean, recall, decay) == pytest.approx((0.3, 0.25, 1.0 - 0.1))
    assert all(math.isnan(v) for v in db_statistics(np.array([np.nan])))


def _square(size, top, left, side, value=1):
    mask = np.zeros((size, size), np.uint8)
    mask[top : top + side, left : left + side] = value
    return mask


def test_semi_supervised_drops_first_and_last_frame():
    gt = np.stack([_square(32, 8, 8, 10)] * 4)
    gt[1] += _square(32, 24, 24, 4, value=2)
    pred = gt.copy()
    pred[0] = 0  # first and last frame are wrong: they must not count
    pred[3] = 0
    pred[2, gt[2] == 1] = 0  # object 1 lost in frame 2
    full = evaluate_davis_sequence(gt, pred, semi_supervised=False)
    semi = evaluate_davis_sequence(gt, pred)
    assert sorted(semi) == [1, 2]
    np.testing.assert_allclose(semi[1]["J"], [1.0, 0.0])
    np.testing.assert_allclose(semi[1]["F"], [1.0, 0.0])
    np.testing.assert_allclose(full[1]["J"], [0.0, 1.0, 0.0, 0.0])
    # object 2 exists only in frame 1; frame 2 has it in neither mask -> J = F = 1
    np.testing.assert_allclose(semi[2]["J"], [1.0, 1.0])
    assert semi[1]["J_mean"] == pytest.approx(0.5)
    assert semi[1]["J_recall"] == pytest.approx(0.5)
    assert semi[1]["J_decay"] == pytest.approx(1.0)

    summary = davis_summary([semi])
    assert summary["J"] == pytest.approx(0.75)
    assert summary["F"] == pytest.approx(0.75)
    assert summary["JF"] == pytest.approx(0.75)
    assert summary["J_decay"] == pytest.approx(0.5)
    assert set(summary) == {"J", "F", "JF", "J_recall", "J_decay", "F_recall", "F_decay"}


def test_void_is_background_unless_excluded():
    gt = np.stack([_square(32, 8, 8, 10)] * 3)
    gt[1, 0:4, 0:4] = 255
    pred = gt.copy()
    pred[pred == 255] = 1  # the prediction claims the void corner
    official = evaluate_davis_sequence(gt, pred)
    assert official[1]["J"][0] == pytest.approx(100 / 116)
    excluded = evaluate_davis_sequence(gt, pred, exclude_void=True)
    assert excluded[1]["J"][0] == 1.0


def test_temporal_consistency_hand_case():
    gts = np.array([[[0, 0, 1, 255]], [[0, 1, 1, 1]], [[0, 1, 1, 1]]])
    preds = np.array([[[0, 1, 1, 0]], [[2, 1, 0, 1]], [[2, 1, 1, 1]]])
    # pairs with steady, non-ignored gt: (0->1) pixels 0, 2; (1->2) pixels 0, 1, 2, 3
    # flips among them: pixel 0 (0->2), pixel 2 (1->0), then pixel 2 (0->1) -> 3 of 6
    assert temporal_consistency(preds, gts) == pytest.approx(0.5)
    assert temporal_consistency(gts, gts) == 0.0
    with pytest.raises(ValueError):
        temporal_consistency(preds[:1], gts[:1])
