"""`python -m nas.evaluate`: score a folder of predictions in each benchmark's own format.

    python -m nas.evaluate --dataset camvid --data-root DIR --split val --predictions DIR
        PNGs of class indices 0..10 named like the label files (any sub-folder): 11-class mIoU.
    python -m nas.evaluate --dataset cityscapes ...
        label-id PNGs named <city>_<seq>_<frame>*.png (any sub-folder, as cityscapesscripts
        expects): our confusion-matrix mIoU and the official script's, side by side.
    python -m nas.evaluate --dataset davis ...
        <predictions>/<sequence>/<frame>.png object-id masks (palette or L; 2016 masks 0/255
        or 0/1): J, F, J&F, semi-supervised by default.

Where ground-truth frames are consecutive (CamVid segments, DAVIS sequences) it also reports
temporal consistency: the share of pixels whose predicted label flips between consecutive
frames where the ground truth does not (lower is steadier; mean over sequences).
"""

from __future__ import annotations

import argparse
import math
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

from evaluation.cityscapes import official_miou, our_miou_on_label_id_files
from evaluation.metrics import (
    ConfusionMatrix,
    davis_summary,
    evaluate_davis_sequence,
    temporal_consistency,
)
from nas.checkpoint import json_text
from nas.data import camvid, cityscapes, davis, sequence_specs
from nas.data.images import read_label


class PredictionError(ValueError):
    """A prediction that is missing, ambiguous or does not fit its ground truth."""


def _by_name(folder: Path) -> dict[str, list[Path]]:
    """Every PNG under folder, by file name."""
    if not folder.is_dir():
        raise PredictionError(f"predictions folder {folder} does not exist")
    found = defaultdict(list)
    for path in sorted(folder.rglob("*.png")):
        found[path.name].append(path)
    return found


def _one(matches: list[Path], what: str, folder: Path) -> Path:
    if not matches:
        raise PredictionError(f"no prediction for {what} in {folder}")
    if len(matches) > 1:
        raise PredictionError(f"several predictions for {what}: {[str(m) for m in matches]}")
    return matches[0]


def _read_prediction(path: Path, shape: tuple[int, ...]) -> np.ndarray:
    pred = read_label(path)
    if pred.shape != shape:
        raise PredictionError(
            f"prediction {path} is {pred.shape[1]}x{pred.shape[0]}, its ground truth is "
            f"{shape[1]}x{shape[0]}"
        )
    return pred


def _mean(values: list[float]) -> float:
    values = [v for v in values if not math.isnan(v)]
    return float(np.mean(values)) if values else math.nan


def evaluate_camvid(root: str, split: str, predictions: Path) -> dict:
    """11-class mIoU accumulated over the split's labelled frames."""
    found = _by_name(predictions)
    matrix = ConfusionMatrix(camvid.NUM_CLASSES)
    flips, frames = [], 0
    lut = camvid.LUT.astype(np.uint8)
    for spec in sequence_specs("camvid", root, split, labelled_only=True):
        gts, preds = [], []
        for label_path in spec.label_paths:
            gts.append(lut[read_label(label_path)])
            pred_path = _one(found.get(label_path.name, []), label_path.name, predictions)
            preds.append(_read_prediction(pred_path, gts[-1].shape))
            matrix.update(preds[-1], gts[-1])
        frames += len(gts)
        if len(gts) > 1:
            flips.append(temporal_consistency(np.stack(preds), np.stack(gts)))
    iou = matrix.iou()
    return {
        "mIoU": matrix.miou(),
        "class_iou": dict(zip(camvid.CLASS_NAMES, iou.tolist())),
        "pixel_accuracy": matrix.pixel_accuracy(),
        "temporal_consistency": _mean(flips),
        "frames": frames,
    }


def evaluate_cityscapes(root: str, split: str, predictions: Path) -> dict:
    """Our mIoU (through train ids) and cityscapesscripts' official mIoU of the same files."""
    by_frame = defaultdict(list)
    for name, paths in _by_name(predictions).items():
        by_frame["_".join(name.split("_")[:3]).removesuffix(".png")] += paths
    gt_files, pred_files = [], []
    for frame_id, gt in cityscapes.label_files(root, split):
        pred_files.append(_one(by_frame.get(frame_id, []), f"{frame_id}*.png", predictions))
        gt_files.append(gt)
    official = official_miou(pred_files, gt_files)
    return {
        "mIoU": our_miou_on_label_id_files(pred_files, gt_files),
        "official_mIoU": official["official_mIoU"],
        "class_iou": official["class_iou"],
        "temporal_consistency": math.nan,  # one labelled frame per snippet: no consecutive gt
        "frames": len(gt_files),
    }


def evaluate_davis(
    root: str, split: str, predictions: Path, year: int | None, semi_supervised: bool
) -> dict:
    """J, F, J&F over the split's sequences (official definitions, evaluation.metrics)."""
    year = davis.detect_year(root) if year is None else year
    results, flips, per_sequence = [], [], {}
    for spec in sequence_specs("davis", root, split, year=year):
        lut = spec.lut.astype(np.uint8)
        gts, preds = [], []
        for frame_id, label_path in zip(spec.frame_ids, spec.label_paths):
            if label_path is None:
                raise PredictionError(f"DAVIS {spec.sequence}/{frame_id} has no ground truth")
            gts.append(lut[read_label(label_path)])
            pred_path = predictions / spec.sequence / f"{frame_id}.png"
            if not pred_path.is_file():
                raise PredictionError(f"missing prediction {pred_path}")
            pred = _read_prediction(pred_path, gts[-1].shape)
            preds.append((pred > 0).astype(np.uint8) if year == 2016 else pred)
        gt, pred = np.stack(gts), np.stack(preds)
        objects = evaluate_davis_sequence(gt, pred, semi_supervised=semi_supervised)
        results.append(objects)
        flips.append(temporal_consistency(pred, gt))
        per_sequence[spec.sequence] = {
            "J": _mean([o["J_mean"] for o in objects.values()]),
            "F": _mean([o["F_mean"] for o in objects.values()]),
            "temporal_consistency": flips[-1],
        }
    return {
        **davis_summary(results),
        "year": year,
        "mode": "semi-supervised" if semi_supervised else "unsupervised",
        "temporal_consistency": _mean(flips),
        "sequences": per_sequence,
    }


def _report(result: dict) -> str:
    lines = []
    for key, value in result.items():
        if isinstance(value, dict):
            lines.append(f"{key}:")
            lines += [f"  {name:<24} {_fmt(v)}" for name, v in value.items()]
        else:
            lines.append(f"{key:<26} {_fmt(value)}")
    return "\n".join(lines)


def _fmt(value: object) -> str:
    if isinstance(value, dict):
        return "  ".join(f"{k}={_fmt(v)}" for k, v in value.items())
    if isinstance(value, float):
        return "n/a" if math.isnan(value) else f"{value:.4f}"
    return str(value)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m nas.evaluate",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--dataset",
        required=True,
        choices=("camvid", "cityscapes", "davis"),
        help="which benchmark's official metric: mIoU (camvid, cityscapes) or J&F (davis)",
    )
    parser.add_argument("--data-root", required=True, help="the dataset's root folder")
    parser.add_argument(
        "--split",
        default="val",
        help="the split whose ground truth is read; for davis and camvid it may name "
        "sequences (val:bear,rhino)",
    )
    parser.add_argument("--predictions", required=True, type=Path, help="folder of PNGs")
    parser.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    parser.add_argument(
        "--year",
        type=int,
        choices=(2016, 2017),
        help="DAVIS year (default: detected from ImageSets/)",
    )
    parser.add_argument(
        "--mode",
        choices=("semi-supervised", "unsupervised"),
        default="semi-supervised",
        help="DAVIS: semi-supervised drops the first and last frame, as the official tool",
    )
    args = parser.parse_args(argv)
    try:
        if args.dataset == "camvid":
            result = evaluate_camvid(args.data_root, args.split, args.predictions)
        elif args.dataset == "cityscapes":
            result = evaluate_cityscapes(args.data_root, args.split, args.predictions)
        else:
            semi = args.mode == "semi-supervised"
            result = evaluate_davis(args.data_root, args.split, args.predictions, args.year, semi)
    except (ValueError, RuntimeError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    result = {"dataset": args.dataset, "split": args.split, **result}
    print(_report(result))
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json_text(result) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
