"""Official Cityscapes pixel-level evaluation (cityscapesscripts) used as a library.

The official script works on PNG files of *label ids* (0..33). Our networks predict *train ids*
(0..18, 255 = ignore): ``train_ids_to_label_ids`` converts them. ``our_miou_on_label_id_files``
computes our own ``ConfusionMatrix`` mIoU on the same files; both follow one definition, so
they agree exactly: pixels whose ground truth is an ignored label are skipped, a prediction of
an ignored label id is a false negative of the true class and a false positive of none, and a
class with no true positive, false positive or false negative (absent from ground truth and
never predicted on evaluated pixels) is left out of the mean.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

import numpy as np
from PIL import Image

from evaluation.metrics import ConfusionMatrix

_EVAL_MODULE = "cityscapesscripts.evaluation.evalPixelLevelSemanticLabeling"
_ENV_VARS = ("CITYSCAPES_DATASET", "CITYSCAPES_RESULTS", "CITYSCAPES_EXPORT_DIR")
NUM_TRAIN_CLASSES = 19


def _official_module() -> ModuleType:
    """Import the official script once. It reads its paths from the environment at import time
    (and refuses a missing export dir), so point them at a throwaway dir while importing."""
    if _EVAL_MODULE in sys.modules:
        return sys.modules[_EVAL_MODULE]
    saved = {key: os.environ.get(key) for key in _ENV_VARS}
    with tempfile.TemporaryDirectory() as tmp:
        os.environ.update(dict.fromkeys(_ENV_VARS, tmp))
        try:
            return importlib.import_module(_EVAL_MODULE)
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value


def _labels():
    from cityscapesscripts.helpers import labels

    return labels


def _read_labels(path: str | Path) -> np.ndarray:
    """A single-channel label PNG as the official script reads it (PIL)."""
    with Image.open(path) as image:
        array = np.array(image)
    if array.ndim != 2:
        raise ValueError(f"{path}: expected a single-channel label image, got shape {array.shape}")
    if array.dtype != np.uint8:
        raise ValueError(f"{path}: expected 8-bit labels, got {array.dtype}")
    return array


def train_ids_to_label_ids(train_id_map: np.ndarray) -> np.ndarray:
    """Train ids (0..18, 255 = ignore) -> Cityscapes label ids (uint8), for the official script.

    255 becomes 0 ('unlabeled', which is also what ``trainId2label[255]`` names): the official
    script counts it as a false negative of the true class, exactly as our ``ConfusionMatrix``
    counts a 255 prediction. Any other value raises ValueError.
    """
    train_ids = np.asarray(train_id_map)
    valid = ((train_ids >= 0) & (train_ids < NUM_TRAIN_CLASSES)) | (train_ids == 255)
    if not valid.all():
        bad = np.unique(train_ids[~valid])[:10].tolist()
        raise ValueError(f"train ids must be 0..{NUM_TRAIN_CLASSES - 1} or 255, found {bad}")
    trainid2label = _labels().trainId2label
    lut = np.zeros(256, dtype=np.uint8)
    for train_id in [*range(NUM_TRAIN_CLASSES), 255]:
        lut[train_id] = trainid2label[train_id].id
    return lut[train_ids.astype(np.int64)]


def _label_to_train_lut() -> np.ndarray:
    lut = np.full(256, 255, dtype=np.uint8)
    for label in _labels().labels:
        if label.id >= 0 and 0 <= label.trainId < NUM_TRAIN_CLASSES:
            lut[label.id] = label.trainId
    return lut


def _check_pairs(prediction_files: Sequence[str | Path], gt_files: Sequence[str | Path]) -> None:
    if len(prediction_files) != len(gt_files) or not gt_files:
        raise ValueError(
            f"need one prediction per ground-truth file, got {len(prediction_files)} "
            f"predictions for {len(gt_files)} ground-truth files"
        )


def official_miou(
    prediction_files: Sequence[str | Path], gt_files: Sequence[str | Path]
) -> dict[str, object]:
    """mIoU by ``evalPixelLevelSemanticLabeling.evaluateImgLists`` (pairs matched by position).

    Predictions must be label-id PNGs (see ``train_ids_to_label_ids``). Returns
    ``official_mIoU`` (the script's ``averageScoreClasses``: mean over the 19 evaluated
    classes, NaN classes left out), ``class_iou`` (those 19 classes by name, NaN where
    undefined) and ``official_category_mIoU``. The instance-level score (nIoU) is off: it needs
    instance files and calls ``np.in1d``, which numpy >= 2.4 removed.
    """
    _check_pairs(prediction_files, gt_files)
    max_label_id = max(label.id for label in _labels().labels)
    for path in prediction_files:
        values = _read_labels(path)
        if values.max(initial=0) > max_label_id:
            raise ValueError(
                f"{path}: prediction holds values up to {values.max()}, but the official "
                f"script needs label ids 0..{max_label_id}; convert train ids with "
                "train_ids_to_label_ids (which maps 255 to 0 'unlabeled')"
            )

    official = _official_module()
    args = official.args
    args.evalInstLevelScore = False
    args.evalPixelAccuracy = False
    args.JSONOutput = False
    args.quiet = True
    printed = io.StringIO()
    try:
        with contextlib.redirect_stdout(printed):
            result = official.evaluateImgLists(
                [str(p) for p in prediction_files], [str(p) for p in gt_files], args
            )
    except SystemExit:
        raise RuntimeError(
            f"cityscapesscripts evaluation failed: {printed.getvalue().strip()}"
        ) from None

    names = [label.name for label in _labels().labels if label.id >= 0 and not label.ignoreInEval]
    return {
        "official_mIoU": float(result["averageScoreClasses"]),
        "class_iou": {name: float(result["classScores"][name]) for name in names},
        "official_category_mIoU": float(result["averageScoreCategories"]),
    }


def our_miou_on_label_id_files(
    prediction_files: Sequence[str | Path], gt_files: Sequence[str | Path]
) -> float:
    """Our ``ConfusionMatrix`` mIoU over the 19 train classes on the same label-id files
    (both sides mapped to train ids; non-train labels become 255)."""
    _check_pairs(prediction_files, gt_files)
    lut = _label_to_train_lut()
    matrix = ConfusionMatrix(NUM_TRAIN_CLASSES)
    for pred_path, gt_path in zip(prediction_files, gt_files):
        pred, gt = _read_labels(pred_path), _read_labels(gt_path)
        if pred.shape != gt.shape:
            raise ValueError(f"{pred_path} is {pred.shape}, {gt_path} is {gt.shape}")
        matrix.update(lut[pred], lut[gt])
    return matrix.miou()
