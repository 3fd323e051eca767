"""Segmentation quality: confusion-matrix mIoU, DAVIS J / F / J&F, temporal consistency.

The DAVIS functions re-derive the definitions of the official evaluation
(davisvideochallenge/davis2017-evaluation, ``davis2017/metrics.py``, ``utils.py`` and
``evaluation.py``) so that our numbers can be quoted next to published ones; the tests check
them against values the official code produced.
"""

from __future__ import annotations

import math
from typing import Any

import cv2
import numpy as np


def _to_numpy(array: Any) -> np.ndarray:
    """numpy view of a numpy array or a torch tensor (torch is not imported here)."""
    if hasattr(array, "detach"):
        array = array.detach().cpu().numpy()
    return np.asarray(array)


def _require_integer(array: np.ndarray, what: str) -> None:
    if not (np.issubdtype(array.dtype, np.integer) or array.dtype == bool):
        raise TypeError(f"{what} must hold integer labels, got dtype {array.dtype}")


class ConfusionMatrix:
    """Pixel confusion matrix accumulated over a whole dataset (rows = ground truth).

    Pixels whose ground truth is ``ignore_index`` are skipped. A prediction outside
    ``[0, num_classes)`` (e.g. 255 for "unsure") is always wrong: it is counted in
    ``out_of_range`` as a false negative of its ground-truth class and a false positive of no
    class, which is also how the official Cityscapes script treats a prediction of an ignored
    label id.
    """

    def __init__(self, num_classes: int, ignore_index: int = 255) -> None:
        if num_classes < 1:
            raise ValueError(f"num_classes must be >= 1, got {num_classes}")
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.matrix = np.zeros((num_classes, num_classes), dtype=np.int64)
        self.out_of_range = np.zeros(num_classes, dtype=np.int64)

    def update(self, pred: Any, gt: Any) -> None:
        """Add one batch of labels (numpy arrays or torch tensors of equal shape)."""
        pred, gt = _to_numpy(pred), _to_numpy(gt)
        if pred.shape != gt.shape:
            raise ValueError(f"prediction shape {pred.shape} != ground-truth shape {gt.shape}")
        _require_integer(pred, "prediction")
        _require_integer(gt, "ground truth")
        keep = gt != self.ignore_index
        gt = gt[keep].astype(np.int64)
        pred = pred[keep].astype(np.int64)
        n = self.num_classes
        if gt.size and (gt.min() < 0 or gt.max() >= n):
            bad = np.unique(gt[(gt < 0) | (gt >= n)])[:10].tolist()
            raise ValueError(
                f"ground truth holds labels {bad} outside [0, {n}) that are not the "
                f"ignore index {self.ignore_index}"
            )
        pred = np.where((pred >= 0) & (pred < n), pred, n)
        counts = np.bincount(gt * (n + 1) + pred, minlength=n * (n + 1)).reshape(n, n + 1)
        self.matrix += counts[:, :n]
        self.out_of_range += counts[:, n]

    def merge(self, other: ConfusionMatrix) -> ConfusionMatrix:
        """Add another matrix (e.g. from another worker) into this one; returns self."""
        if (other.num_classes, other.ignore_index) != (self.num_classes, self.ignore_index):
            raise ValueError("cannot merge confusion matrices with different classes or ignore")
        self.matrix += other.matrix
        self.out_of_range += other.out_of_range
        return self

    def iou(self) -> np.ndarray:
        """Per-class IoU; NaN for a class absent from both prediction and ground truth."""
        tp = np.diag(self.matrix).astype(np.float64)
        fn = self.matrix.sum(axis=1) + self.out_of_range - tp
        fp = self.matrix.sum(axis=0) - tp
        denom = tp + fp + fn
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(denom > 0, tp / denom, np.nan)

    def miou(self) -> float:
        """Mean IoU over the classes that are not NaN (NaN if there are none)."""
        iou = self.iou()
        valid = ~np.isnan(iou)
        return float(iou[valid].mean()) if valid.any() else math.nan

    def pixel_accuracy(self) -> float:
        """Share of non-ignored pixels predicted correctly (NaN if there are none)."""
        total = self.matrix.sum() + self.out_of_range.sum()
        return float(np.trace(self.matrix) / total) if total else math.nan


def db_eval_iou(
    annotation: np.ndarray, segmentation: np.ndarray, void_pixels: np.ndarray | None = None
) -> float:
    """DAVIS region similarity J: IoU of two binary masks, 1 when both are empty."""
    annotation, segmentation = np.asarray(annotation, bool), np.asarray(segmentation, bool)
    if annotation.shape != segmentation.shape:
        raise ValueError(f"shapes differ: {annotation.shape} vs {segmentation.shape}")
    valid = np.ones_like(annotation) if void_pixels is None else ~np.asarray(void_pixels, bool)
    inter = np.count_nonzero(annotation & segmentation & valid)
    union = np.count_nonzero((annotation | segmentation) & valid)
    return 1.0 if union == 0 else inter / union


def _seg2bmap(seg: np.ndarray) -> np.ndarray:
    """One-pixel boundary map, offset half a pixel towards the origin (Martin et al. 2003).

    A pixel is boundary when it differs from its east, south or south-east neighbour; the last
    row compares east only, the last column south only, the corner is never boundary.
    """
    seg = seg.astype(bool)
    east, south, south_east = (np.zeros_like(seg) for _ in range(3))
    east[:, :-1] = seg[:, 1:]
    south[:-1, :] = seg[1:, :]
    south_east[:-1, :-1] = seg[1:, 1:]
    bmap = (seg ^ east) | (seg ^ south) | (seg ^ south_east)
    bmap[-1, :] = seg[-1, :] ^ east[-1, :]
    bmap[:, -1] = seg[:, -1] ^ south[:, -1]
    bmap[-1, -1] = False
    return bmap


def _disk(radius: int) -> np.ndarray:
    """{(x, y): x^2 + y^2 <= r^2} as uint8, identical to skimage.morphology.disk(r)."""
    axis = np.arange(-radius, radius + 1)
    return (axis[None, :] ** 2 + axis[:, None] ** 2 <= radius**2).astype(np.uint8)


def db_eval_boundary(
    annotation: np.ndarray,
    segmentation: np.ndarray,
    void_pixels: np.ndarray | None = None,
    bound_th: float = 0.008,
) -> float:
    """DAVIS contour accuracy F: boundary F-measure with a tolerance disk.

    The tolerance is ``bound_th`` pixels when >= 1, else ``ceil(bound_th * image diagonal)``
    (8 px at 854x480). Empty cases follow the official rules: no predicted boundary gives
    precision 1 / recall 0, no ground-truth boundary precision 0 / recall 1, neither gives 1.
    """
    annotation, segmentation = np.asarray(annotation, bool), np.asarray(segmentation, bool)
    if annotation.shape != segmentation.shape or annotation.ndim != 2:
        raise ValueError(f"need 2-D masks of one shape: {annotation.shape}, {segmentation.shape}")
    valid = np.ones_like(annotation) if void_pixels is None else ~np.asarray(void_pixels, bool)
    bound_pix = bound_th if bound_th >= 1 else math.ceil(bound_th * math.hypot(*annotation.shape))
    disk = _disk(int(bound_pix))

    fg_boundary = _seg2bmap(segmentation & valid)
    gt_boundary = _seg2bmap(annotation & valid)
    fg_dil = cv2.dilate(fg_boundary.astype(np.uint8), disk).astype(bool)
    gt_dil = cv2.dilate(gt_boundary.astype(np.uint8), disk).astype(bool)

    n_fg, n_gt = np.count_nonzero(fg_boundary), np.count_nonzero(gt_boundary)
    if n_fg == 0 and n_gt == 0:
        precision, recall = 1.0, 1.0
    elif n_fg == 0:
        precision, recall = 1.0, 0.0
    elif n_gt == 0:
        precision, recall = 0.0, 1.0
    else:
        precision = np.count_nonzero(fg_boundary & gt_dil) / n_fg
        recall = np.count_nonzero(gt_boundary & fg_dil) / n_gt
    if precision + recall == 0:
        return 0.0
    return 2 * precision * recall / (precision + recall)


def db_statistics(per_frame: np.ndarray) -> tuple[float, float, float]:
    """(mean, recall, decay) of per-frame scores, as the official ``db_statistics``.

    Recall is the share of frames scoring > 0.5. Decay splits the frames into 4 overlapping
    bins (official index rule) and subtracts the last bin's mean from the first's. NaN frames
    are left out of all three (the official recall would count them as failures); no valid
    frame gives NaN.
    """
    values = np.asarray(per_frame, dtype=np.float64).ravel()
    valid = ~np.isnan(values)
    if not valid.any():
        return math.nan, math.nan, math.nan
    mean = float(values[valid].mean())
    recall = float((values[valid] > 0.5).mean())
    ids = (np.round(np.linspace(1, len(values), 5) + 1e-10) - 1).astype(np.int64)
    bins = [values[ids[i] : ids[i + 1] + 1] for i in range(4)]
    first, last = bins[0][~np.isnan(bins[0])], bins[3][~np.isnan(bins[3])]
    decay = float(first.mean() - last.mean()) if first.size and last.size else math.nan
    return mean, recall, decay


def evaluate_davis_sequence(
    gt: np.ndarray, pred: np.ndarray, semi_supervised: bool = True, exclude_void: bool = False
) -> dict:
    """Per-object J and F of one sequence (T x H x W object-id masks).

    Objects are the ids present in ``gt`` other than 0 (background) and 255 (void); on DAVIS
    2017, where every object is annotated in the first frame with ids 1..K, this is the
    official object list. Semi-supervised evaluation drops the first frame (it is given) and
    the last. Like the official tool, void (255) counts as background unless ``exclude_void``
    is set, which removes void pixels from J and F. Prediction ids that are no gt object count
    as background (the official tool refuses such files).

    Returns ``{object_id: {"J": per-frame array, "F": per-frame array, "J_mean", "J_recall",
    "J_decay", "F_mean", "F_recall", "F_decay"}}``.
    """
    gt, pred = _to_numpy(gt), _to_numpy(pred)
    if gt.shape != pred.shape or gt.ndim != 3:
        raise ValueError(f"need T x H x W gt and pred of one shape: {gt.shape}, {pred.shape}")
    object_ids = [int(i) for i in np.unique(gt) if i not in (0, 255)]
    if semi_supervised:
        if gt.shape[0] < 3:
            raise ValueError("semi-supervised evaluation needs >= 3 frames (first and last drop)")
        gt, pred = gt[1:-1], pred[1:-1]
    void = gt == 255
    objects = {}
    for obj in object_ids:
        j = np.empty(len(gt))
        f = np.empty(len(gt))
        for t in range(len(gt)):
            void_t = void[t] if exclude_void else None
            j[t] = db_eval_iou(gt[t] == obj, pred[t] == obj, void_t)
            f[t] = db_eval_boundary(gt[t] == obj, pred[t] == obj, void_t)
        result: dict[str, Any] = {"J": j, "F": f}
        for name, values in (("J", j), ("F", f)):
            mean, recall, decay = db_statistics(values)
            result.update({f"{name}_mean": mean, f"{name}_recall": recall, f"{name}_decay": decay})
        objects[obj] = result
    return objects


def davis_summary(sequence_results: list[dict]) -> dict:
    """Dataset-level J, F, J&F, recalls and decays: plain means over all objects of all
    sequences, as the official tool's global table (J&F = (J + F) / 2)."""
    objects = [obj for seq in sequence_results for obj in seq.values()]
    if not objects:
        raise ValueError("no objects to summarise")

    def mean(key: str) -> float:
        return float(np.mean([obj[key] for obj in objects]))

    j, f = mean("J_mean"), mean("F_mean")
    return {
        "JF": (j + f) / 2,
        "J": j,
        "J_recall": mean("J_recall"),
        "J_decay": mean("J_decay"),
        "F": f,
        "F_recall": mean("F_recall"),
        "F_decay": mean("F_decay"),
    }


def temporal_consistency(preds: np.ndarray, gts: np.ndarray, ignore_index: int = 255) -> float:
    """Flip rate (lower is steadier): share of pixel pairs (t, t+1) whose predicted label
    changes although the ground truth does not. Pairs where either gt frame is ignored are
    skipped; NaN when no pair is left."""
    preds, gts = _to_numpy(preds), _to_numpy(gts)
    if preds.shape != gts.shape or preds.ndim != 3 or preds.shape[0] < 2:
        raise ValueError(f"need T x H x W inputs of one shape with T >= 2: {preds.shape}")
    steady = (gts[1:] == gts[:-1]) & (gts[1:] != ignore_index) & (gts[:-1] != ignore_index)
    count = np.count_nonzero(steady)
    if count == 0:
        return math.nan
    return np.count_nonzero((preds[1:] != preds[:-1]) & steady) / count
