"""`python -m nas.segment`: run an exported video network on a video, write an overlay.

    python -m nas.segment clip.mp4 --cell runs/rt/cell/cell.json [--weights W.safetensors]
        [--out overlay.mp4] [--masks DIR] [--resolution HxW] [--max-frames N] [--onnx]

VIDEO is a file OpenCV decodes or a folder of frames (png/jpg/bmp, sorted by name). Frames run
one by one through StreamingSegmenter (the slow pathway on every alpha-th frame, the fast
pathway and the cell on the others) at ``--resolution`` (default: the resolution the cell was
trained at, from its cell.json, else the video's own); predictions are resized back to the
frame size. It prints the network's frames per second and the share of key frames.
``--masks DIR`` writes class-index PNGs named after a folder's frame files or 00000.png, ...
for a video file; for a cell trained on Cityscapes, label ids (what its official evaluation
reads) instead of train ids. ``nas.evaluate`` scores the masks of CamVid's frame folder, of a
DAVIS sequence's (``--masks preds/<sequence>``; ``--mode unsupervised``: segment is given no
first-frame mask) and of Cityscapes' city folders as they are.

The cell needs its trained weights: weights.safetensors beside cell.json (as nas.export and
nas.retrain write them) or --weights; --random-weights runs an untrained network on purpose.
A run that fails leaves no partial overlay video behind.

``--onnx`` runs the folder's ONNX graphs (``key_step.onnx``, ``step.onnx`` beside cell.json,
written by ``nas.export --format torchscript,onnx``) with onnxruntime instead of PyTorch: the
same streaming, at the resolution the graphs were exported at.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import torch

from evaluation.cityscapes import train_ids_to_label_ids
from nas.cellfile import build_from_cell, cell_resolution
from nas.config import at_least, resolution_arg
from nas.data.clip import to_tensor
from nas.models.heads import label_map
from nas.models.video import StreamingSegmenter
from nas.train_utils import autocast, pick_device
from search_spaces.genotype import GenotypeError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")


class VideoReadError(ValueError):
    """A video OpenCV cannot decode, or a folder without frames."""


def palette(num_classes: int) -> np.ndarray:
    """Fixed RGB colours, one per class (the PASCAL VOC bit-interleaving palette)."""
    colours = np.zeros((max(num_classes, 1), 3), np.uint8)
    for c in range(len(colours)):
        value, shift = c + 1, 7  # +1: class 0 gets a colour too (it is a class, e.g. Sky)
        while value:
            for channel in range(3):
                colours[c, channel] |= ((value >> channel) & 1) << shift
            value >>= 3
            shift -= 1
    return colours


def blend(frame: np.ndarray, mask: np.ndarray, colours: np.ndarray, weight: float = 0.5):
    """The class colours laid over an RGB frame (uint8 H x W x 3)."""
    mixed = (1 - weight) * frame + weight * colours[mask]
    return mixed.round().astype(np.uint8)


def read_frames(
    source: Path, max_frames: int | None, one_name_each: bool = False
) -> tuple[Iterator[tuple[str, np.ndarray]], float]:
    """(name, RGB uint8 frame) of a video file or a folder of images, and the frame rate.

    A folder's frames keep their file's stem as name, so masks written under it match the
    benchmark's label files (``nas.evaluate``); a video's are numbered 00000, 00001, ...
    ``one_name_each``: a folder holding two frames of one name is an error (their masks
    would overwrite each other)."""
    if not source.exists():
        raise VideoReadError(f"video {source} does not exist")
    if source.is_dir():
        files = sorted(p for p in source.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise VideoReadError(f"folder {source} holds no {'/'.join(IMAGE_SUFFIXES)} frames")
        stems = Counter(p.stem for p in files)
        twice = sorted(stem for stem, n in stems.items() if n > 1)
        if twice and one_name_each:
            raise VideoReadError(
                f"folder {source} holds frames of the same name in two formats "
                f"({', '.join(twice[:3])}): keep one of each"
            )
        return _folder_frames(files[:max_frames]), 25.0
    capture = cv2.VideoCapture(str(source))
    ok, first = capture.read() if capture.isOpened() else (False, None)
    if not ok:
        capture.release()
        raise VideoReadError(
            f"OpenCV cannot decode {source} as a video (nor is it a folder of frames)"
        )
    fps = capture.get(cv2.CAP_PROP_FPS) or 25.0
    return _video_frames(capture, first, max_frames), fps


def _folder_frames(files: list[Path]) -> Iterator[tuple[str, np.ndarray]]:
    for path in files:
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is None:
            raise VideoReadError(f"cannot read frame {path}")
        yield path.stem, cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def _video_frames(
    capture: cv2.VideoCapture, first: np.ndarray, max_frames: int | None
) -> Iterator[tuple[str, np.ndarray]]:
    frame, count = first, 0
    try:
        while frame is not None and (max_frames is None or count < max_frames):
            yield f"{count:05d}", cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
            count += 1
            ok, frame = capture.read()
            frame = frame if ok else None
    finally:
        capture.release()


def choose_device(name: str | None) -> torch.device:
    """``--device`` as asked, or one clear error when it cannot be used here."""
    try:
        device = pick_device(name)
    except RuntimeError:
        raise ValueError(
            f"--device {name!r} is no torch device: write cpu, cuda or cuda:1"
        ) from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(
                f"--device {name}: torch sees no CUDA GPU on this machine; use --device cpu"
            )
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ValueError(
                f"--device {name}: this machine has {torch.cuda.device_count()} CUDA GPU(s)"
            )
    return device


def segment(args: argparse.Namespace) -> dict:
    """Run the network over the video; write what was asked; return the figures."""
    if getattr(args, "onnx", False):
        # the CPU unless asked: onnxruntime's CUDA provider is another package (onnxruntime-gpu)
        device = choose_device(args.device) if args.device else torch.device("cpu")
        from nas.onnx_net import load_onnx_cell  # onnxruntime only when asked for

        net, data = load_onnx_cell(args.cell, device)
        num_classes, size = net.num_classes, onnx_size(args.resolution, net.resolution)
        device = torch.device("cpu")  # onnxruntime reads frames from host memory
    else:
        net, data = build_from_cell(
            args.cell, args.weights, require_weights=not getattr(args, "random_weights", False)
        )
        device = choose_device(args.device)
        net = net.to(device)
        num_classes, size = net.slow.num_classes, args.resolution or cell_resolution(data)
    colours = palette(num_classes)
    if args.masks and args.video.is_dir() and args.masks.resolve() == args.video.resolve():
        raise VideoReadError(
            f"--masks {args.masks} is the frame folder itself: the masks would overwrite the "
            "frames; give another folder"
        )
    # Cityscapes' evaluation reads label ids; its cells predict train ids
    cityscapes = (data.get("provenance") or {}).get("dataset") == "cityscapes"
    frames, fps = read_frames(args.video, args.max_frames, one_name_each=bool(args.masks))
    stream = StreamingSegmenter(net)
    writer, count, keys, seconds = None, 0, 0, 0.0
    partial = args.out.with_name(f".{args.out.stem}.partial{args.out.suffix}") if args.out else None
    if args.masks:
        args.masks.mkdir(parents=True, exist_ok=True)
    done = False
    try:
        for name, frame in frames:
            h, w = frame.shape[:2]
            small = (
                frame
                if size is None
                else cv2.resize(frame, size[::-1], interpolation=cv2.INTER_AREA)
            )
            keys += stream.is_key()
            start = time.perf_counter()
            with torch.no_grad(), autocast(device):
                logits = stream(to_tensor(small, device)[None])
            mask = label_map(logits)[0].to(torch.uint8).cpu().numpy()
            seconds += time.perf_counter() - start
            if mask.shape != (h, w):
                mask = cv2.resize(mask, (w, h), interpolation=cv2.INTER_NEAREST)
            if args.out:
                if writer is None:
                    writer = open_writer(partial, fps, (w, h))
                writer.write(cv2.cvtColor(blend(frame, mask, colours), cv2.COLOR_RGB2BGR))
            if args.masks:
                written = train_ids_to_label_ids(mask).astype(np.uint8) if cityscapes else mask
                cv2.imwrite(str(args.masks / f"{name}.png"), written)
            count += 1
        done = True
    finally:
        if writer is not None:
            writer.release()
        if partial is not None:
            if done and writer is not None:
                os.replace(partial, args.out)
            else:  # a failed or interrupted run leaves no partial video
                with contextlib.suppress(FileNotFoundError):
                    partial.unlink()
    return {
        "frames": count,
        "key_frames": keys,
        "alpha": net.alpha,
        "seconds": seconds,
        "fps": count / seconds if seconds else float("nan"),
    }


def onnx_size(asked: tuple[int, int] | None, exported: tuple[int, int]) -> tuple[int, int]:
    """The ONNX graphs take frames of the size they were exported at, and only that."""
    if asked and tuple(asked) != exported:
        raise ValueError(
            f"--resolution {asked[0]}x{asked[1]}: the ONNX graphs were exported at "
            f"{exported[0]}x{exported[1]} and take only that size; drop --resolution with "
            "--onnx, or run the PyTorch network"
        )
    return exported


def open_writer(path: Path, fps: float, size: tuple[int, int]) -> cv2.VideoWriter:
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, size)
    if not writer.isOpened():
        raise VideoReadError(f"OpenCV cannot write an mp4v video to {path}")
    return writer


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m nas.segment",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("video", type=Path, help="video file or folder of frames")
    p.add_argument("--cell", required=True, type=Path, help="exported cell.json")
    p.add_argument(
        "--weights",
        type=Path,
        help="the cell's trained network (default: weights.safetensors beside the cell)",
    )
    p.add_argument(
        "--random-weights",
        action="store_true",
        help="run an untrained network when the cell has no weights (for timing only)",
    )
    p.add_argument("--out", type=Path, help="overlay video to write (.mp4, mp4v codec)")
    p.add_argument(
        "--masks",
        type=Path,
        help="folder for class-index PNG masks, named after the frame files of a folder",
    )
    p.add_argument(
        "--resolution",
        type=resolution_arg,
        help="HxW the network runs at (default: the cell's trained resolution from cell.json, "
        "else the video's own)",
    )
    p.add_argument("--max-frames", type=at_least(1), help="stop after this many frames (>= 1)")
    p.add_argument("--device", help="cpu, cuda ... (default: cuda when available)")
    p.add_argument(
        "--onnx",
        action="store_true",
        help="run key_step.onnx and step.onnx beside the cell (nas.export --format onnx) with "
        "onnxruntime instead of the PyTorch network",
    )
    args = p.parse_args(argv)
    if args.random_weights and args.weights:
        p.error("--random-weights and --weights exclude each other")
    if args.onnx and (args.weights or args.random_weights):
        p.error("--onnx runs the exported graphs, which hold their weights: no --weights")
    try:
        result = segment(args)
    except (GenotypeError, VideoReadError, FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\ninterrupted: no overlay video written", file=sys.stderr)
        return 130
    if result["frames"] == 0:
        print(f"error: {args.video} yielded no frame", file=sys.stderr)
        return 2
    share = result["key_frames"] / result["frames"]
    print(
        f"{result['frames']} frames in {result['seconds']:.2f} s of network time: "
        f"{result['fps']:.1f} frames per second; key frames {result['key_frames']} "
        f"({share:.0%}, alpha {result['alpha']})"
    )
    for what, path in (("overlay", args.out), ("masks", args.masks)):
        if path:
            print(f"{what}: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
