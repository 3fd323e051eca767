"""`python -m nas.retrain`: a cell trained fully on a real dataset, scored against the static
network and the copy baseline, and exported.

    python -m nas.retrain --cell cell.json --dataset camvid --data-root DIR --out runs/rt \\
        [--epochs 20] [--resolution 360x480] [--teacher FILE | --pretrained-backbone FILE]

1. The teacher (the static network) is trained, or loaded from ``--teacher``, with one fast
   encoder per beta distilled to its deep features (nas.teacher; resumable).
2. The video network is trained end to end on windows of consecutive frames
   (nas.video_training: slow pathway frozen, loss on non-key frames; checkpoint every epoch,
   ``--resume`` continues from the last one; mixed precision on CUDA).
3. ``report.json`` / ``report.md``: quality on the val split (mIoU; J&F for DAVIS, with the
   first-frame mask used by online fine-tuning of the heads on frame 0 of each sequence) on
   non-key frames and on all frames, and per-frame GFLOPs, for the static network, the copy
   baseline (copy_genotype at the cell's alpha) and the video network. Labels are scored at
   the evaluation resolution (resized nearest).
4. ``<out>/cell/``: cell.json + weights.safetensors, readable by nas.segment and
   nas.cellfile.build_from_cell.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, replace
from pathlib import Path

import torch

from nas.cellfile import read_cell
from nas.checkpoint import json_safe
from nas.config import (
    FAST_ENCODERS,
    STEP_HEADS,
    RetrainConfig,
    TeacherConfig,
    default_backbone,
    resolution_arg,
    resolve_pretrained,
)
from nas.data import DATASETS, class_names, load_clips, num_classes
from nas.data.clip import Clip
from nas.data.images import DatasetLayoutError, ImageReadError
from nas.models.backbones import BACKBONES, check_pretrained
from nas.models.config import NetConfig
from nas.models.video import VideoSegNet
from nas.teacher import check_teacher_file, ensure_teacher
from nas.teacher_folder import TeacherFolder
from nas.train_utils import EpochCheckpoints, ResumeError, WindowSampler, pick_device
from nas.video_eval import NETWORKS, evaluate_networks, metric_of, per_frame_gflops
from nas.video_report import (
    build_report,
    export_cell,
    markdown_table,
    report_notes,
    verdict,
    write_report,
)
from nas.video_training import run_identity, train_video
from search_spaces.genotype import Genotype, GenotypeError

Log = Callable[[str], None]


def fingerprint(dataset: str, root: str | Path | None, split: str, clips: Sequence[Clip]) -> dict:
    """What the training data is, compact: a change means another teacher and another run."""
    names = "\n".join(f"{c.sequence}:{c.frame_ids[0]}:{len(c)}" for c in clips)
    return {
        "dataset": dataset,
        "root": str(Path(root).resolve()) if root else None,
        "split": split,
        "size": list(clips[0].frames.shape[1:3]) if clips else None,
        "frames": sum(len(c) for c in clips),
        "clips": hashlib.sha256(names.encode()).hexdigest()[:16],
    }


def retrain_cell(
    genotype: Genotype,
    train: Sequence[Clip],
    val: Sequence[Clip],
    data: dict,
    teacher_dir: Path,
    meta: dict,
    cfg: RetrainConfig,
    run_dir: Path,
    device: torch.device,
    resume: bool = False,
    log: Log = print,
    unsupervised: bool = False,
) -> tuple[VideoSegNet, dict]:
    """Train ``genotype``'s video network on the teacher in ``teacher_dir`` (checkpoints in
    ``run_dir``; ``resume`` continues them) and score it beside the static network and the
    copy baseline on ``val``: the trained network and the report (metric, networks, training
    settings and history). DAVIS is scored semi-supervised, or ``unsupervised``; a run
    trained already (all its epochs checkpointed) is only scored again."""
    torch.manual_seed(cfg.seed)
    net = (
        TeacherFolder(teacher_dir)
        .video_net(
            genotype,
            meta,
            train_fast_encoder=cfg.fast_encoder != "frozen",
            train_step_head=cfg.step_head == "own",
        )
        .to(device)
    )
    sampler = WindowSampler(train, cfg.clip_len, tuple(train[0].frames.shape[1:3]), cfg.scale)
    identity = run_identity(genotype, data, meta["key"], cfg)
    history = train_video(net, sampler, cfg, run_dir, device, identity, resume, log)
    metric = metric_of(data["dataset"], unsupervised)
    quality = evaluate_networks(net, val, metric, cfg, device, log)
    gflops = per_frame_gflops(net, val, device)
    report = build_report(quality, gflops, metric, training={**asdict(cfg), "history": history})
    return net, report


# ---- the command ---------------------------------------------------------------------------
def add_video_net_flags(p: argparse.ArgumentParser) -> None:
    """``--step-head`` and ``--fast-encoder``, shared with bench.real."""
    p.add_argument(
        "--step-head",
        choices=STEP_HEADS,
        default=RetrainConfig.step_head,
        help="non-key head: own (trained with the cell) or key (the frozen key head itself)",
    )
    p.add_argument(
        "--fast-encoder",
        choices=FAST_ENCODERS,
        default=RetrainConfig.fast_encoder,
        help="the fast pathway's encoder: weights (its weights train with the cell, its "
        "BatchNorm statistics stay the distilled ones), train (statistics too) or frozen (the "
        "distilled one as is, as a search child has it)",
    )


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """The description as written, and each option's default after its help (none shown for
    an option without a default or a switch)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if (
            action.option_strings
            and "%(default)" not in text
            and not any(action.default is v for v in (None, False, argparse.SUPPRESS))
        ):
            text += " (default: %(default)s)"
        return text


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m nas.retrain",
        description=__doc__,
        formatter_class=HelpFormatter,
    )
    p.add_argument("--cell", required=True, type=Path, help="genotype or exported cell.json")
    p.add_argument(
        "--dataset",
        required=True,
        choices=DATASETS,
        help="the data to train and score on; synthetic is generated, the others read "
        "--data-root in their own layout",
    )
    p.add_argument("--data-root", help="the dataset's folder (not needed for synthetic)")
    p.add_argument("--out", required=True, type=Path, help="run folder")
    p.add_argument(
        "--train-split",
        default="train",
        help="split the teacher and the video network train on; name sequences with "
        "train:bear,rhino or leave some out with train:-0006R0",
    )
    p.add_argument(
        "--val-split",
        default="val",
        help="split the report scores, e.g. val or train:hockey,surf (sequences never trained on)",
    )
    p.add_argument(
        "--resolution",
        type=resolution_arg,
        help="HxW to train and evaluate at (default: the dataset's own)",
    )
    p.add_argument("--max-train-clips", type=int, help="bound the training sequences loaded")
    p.add_argument("--max-val-clips", type=int, help="bound the evaluated sequences")
    p.add_argument(
        "--epochs",
        type=int,
        default=RetrainConfig.epochs,
        help="epochs of video-network training (>= 1)",
    )
    p.add_argument(
        "--steps-per-epoch",
        type=int,
        default=0,
        help="optimiser steps per epoch (0: one pass over the training frames)",
    )
    p.add_argument(
        "--batch-size",
        type=int,
        default=RetrainConfig.batch_size,
        help="windows of consecutive frames per step",
    )
    p.add_argument(
        "--clip-len",
        type=int,
        default=0,
        help="frames per training window (0: alpha, a key frame and the frames it serves)",
    )
    p.add_argument(
        "--lr",
        type=float,
        default=RetrainConfig.lr,
        help="AdamW peak learning rate of the video network (warm-up, cosine decay)",
    )
    p.add_argument(
        "--online-steps",
        type=int,
        default=RetrainConfig.online_steps,
        help="DAVIS: head fine-tuning steps on each sequence's first frame",
    )
    add_video_net_flags(p)
    p.add_argument(
        "--davis-protocol",
        choices=("semi", "unsupervised"),
        default="semi",
        help="DAVIS: semi-supervised (first-frame mask given, used by online fine-tuning) or "
        "unsupervised (foreground vs background, no mask)",
    )
    p.add_argument(
        "--seed",
        type=int,
        default=0,
        help="seeds the teacher, the cell's initialisation and the window sampling",
    )
    p.add_argument("--teacher", help="StaticSegNet safetensors to use instead of training one")
    p.add_argument(
        "--backbone",
        choices=tuple(BACKBONES),
        help="the teacher's backbone (default: the cell's net; for a cell without one, "
        "efficientnet_lite0 on real data, mobilenet_v2 on synthetic)",
    )
    p.add_argument(
        "--pretrained-backbone",
        help="imagenet (the bundled weights; default for real data on efficientnet_lite0), "
        "a weights file, or none",
    )
    p.add_argument(
        "--teacher-steps",
        type=int,
        default=TeacherConfig.steps,
        help="optimiser steps of the teacher (the static network), when it is trained here",
    )
    p.add_argument(
        "--teacher-fast-steps",
        type=int,
        default=TeacherConfig.fast_steps,
        help="distillation steps of each fast encoder (one per beta) to the teacher",
    )
    p.add_argument(
        "--width-mult", type=float, help="backbone width (default: the cell's net, else 1.0)"
    )
    p.add_argument(
        "--deep-channels", type=int, help="slow-state width (default: the cell's net, else 128)"
    )
    p.add_argument("--device", help="cpu, cuda, cuda:1 ... (default: cuda when available)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out")
    return p


def net_config(args: argparse.Namespace, cell_data: dict) -> NetConfig:
    """The cell's own sizes (an exported cell.json carries them; one without a backbone
    means MobileNetV2, the only one then), overridden by the flags; a bare genotype gets the
    dataset's default backbone."""
    if "net" in cell_data:
        base = NetConfig(**cell_data["net"])
    else:
        base = NetConfig(backbone=default_backbone(args.dataset))
    overrides = {
        "width_mult": args.width_mult,
        "deep_channels": args.deep_channels,
        "backbone": args.backbone,
    }
    return replace(base, **{k: v for k, v in overrides.items() if v is not None})


def shared_with_training(train: list, val: list, split: str) -> str | None:
    """What the evaluated clips share with the training clips (sequences, frames), said in
    the report: CamVid's val shares a sequence with its train (other frames of it), and
    splits named by hand can share frames."""
    trained: dict[str, set[str]] = {}
    for clip in train:
        trained.setdefault(clip.sequence, set()).update(clip.frame_ids)
    shared = sorted({clip.sequence for clip in val} & trained.keys())
    if not shared:
        return None
    frames = sum(
        len(set(clip.frame_ids) & trained[clip.sequence])
        for clip in val
        if clip.sequence in trained
    )
    named = ", ".join(shared[:5]) + (", ..." if len(shared) > 5 else "")
    return (
        f"the {split} split shares {len(shared)} sequence(s) with the training split ({named}); "
        f"{frames} of its frames were trained on"
    )


def check_inputs(args: argparse.Namespace, net: NetConfig, pretrained: str | None) -> None:
    """Every input a user names exists and fits, before anything is computed."""
    if args.teacher and not Path(args.teacher).is_file():
        raise FileNotFoundError(f"--teacher file {args.teacher} does not exist")
    if args.dataset != "synthetic" and not args.data_root:
        raise DatasetLayoutError(f"dataset {args.dataset} needs --data-root")
    if args.dataset != "synthetic" and not Path(args.data_root).is_dir():
        raise DatasetLayoutError(f"{args.dataset} data root {args.data_root} does not exist")
    for flag in ("epochs", "batch_size", "teacher_steps", "teacher_fast_steps"):
        if getattr(args, flag) < 1:
            raise ValueError(f"--{flag.replace('_', '-')} must be >= 1")
    for flag in ("steps_per_epoch", "clip_len", "online_steps"):
        if getattr(args, flag) < 0:
            raise ValueError(f"--{flag.replace('_', '-')} must be >= 0")
    for flag in ("max_train_clips", "max_val_clips"):
        if getattr(args, flag) is not None and getattr(args, flag) < 1:
            raise ValueError(f"--{flag.replace('_', '-')} must be >= 1")
    if args.lr <= 0:
        raise ValueError(f"--lr must be > 0, got {args.lr}")
    if args.clip_len == 1:
        raise ValueError("--clip-len 1 holds no non-key frame; use >= 2 (or 0: alpha)")
    if not args.teacher:
        check_pretrained(net.backbone, net.width_mult, net.output_stride, pretrained)
    else:
        root = args.data_root if args.dataset != "synthetic" else None
        check_teacher_file(args.teacher, num_classes(args.dataset, root), net)
    if EpochCheckpoints(args.out / "train").exists() and not args.resume:
        raise ResumeError(
            f"{args.out} already holds a run; pass --resume to continue it or choose another --out"
        )


def run(args: argparse.Namespace, log: Log) -> dict:
    genotype, cell_data = read_cell(args.cell)
    net_cfg = net_config(args, cell_data)
    pretrained = resolve_pretrained(args.pretrained_backbone, args.dataset, net_cfg.backbone)
    check_inputs(args, net_cfg, pretrained)
    cfg = RetrainConfig(
        epochs=args.epochs,
        steps_per_epoch=args.steps_per_epoch,
        batch_size=args.batch_size,
        clip_len=args.clip_len or genotype.alpha,
        lr=args.lr,
        online_steps=args.online_steps,
        seed=args.seed,
        step_head=args.step_head,
        fast_encoder=args.fast_encoder,
    )
    device = pick_device(args.device)
    root = args.data_root if args.dataset != "synthetic" else None
    train = load_clips(
        args.dataset, root, args.train_split, size=args.resolution, max_clips=args.max_train_clips
    )
    val = load_clips(
        args.dataset, root, args.val_split, size=args.resolution, max_clips=args.max_val_clips
    )
    k = num_classes(args.dataset, root)
    resolution = list(val[0].frames.shape[1:3])
    data = fingerprint(args.dataset, root, args.train_split, train)
    log(
        f"[retrain] {len(train)} training sequences ({data['frames']} frames), {len(val)} "
        f"evaluation sequences, {resolution[0]}x{resolution[1]}, device {device}"
    )
    overlap = shared_with_training(train, val, args.val_split)
    if overlap:
        log(f"[retrain] note: {overlap}")

    teacher_cfg = TeacherConfig(steps=args.teacher_steps, fast_steps=args.teacher_fast_steps)
    teacher_dir = args.out / "teacher"
    meta = ensure_teacher(
        teacher_dir,
        train,
        k,
        data,
        net_cfg,
        teacher_cfg,
        args.seed,
        args.teacher,
        pretrained,
        device,
        log,
    )
    net, report = retrain_cell(
        genotype,
        train,
        val,
        data,
        teacher_dir,
        meta,
        cfg,
        args.out / "train",
        device,
        resume=args.resume,
        log=log,
        unsupervised=args.davis_protocol == "unsupervised",
    )
    metric = report["metric"]
    report = json_safe(
        {
            **report,
            "dataset": args.dataset,
            "split": args.val_split,
            "resolution": resolution,
            "genotype": genotype.to_dict(),
            "net": net_cfg.to_dict(),
            "teacher": {
                "source": meta.get("source"),
                "pretrained": pretrained,
                "steps": teacher_cfg.steps,
                "fast_steps": teacher_cfg.fast_steps,
                "seconds": meta.get("seconds"),
            },
            "notes": report_notes(cfg, metric, args.val_split, resolution)
            + ([overlap] if overlap else []),
        }
    )
    write_report(args.out, report)
    export_cell(
        args.out / "cell",
        net,
        class_names(args.dataset, k),
        resolution,
        metrics={n: report["networks"][n] for n in NETWORKS},
        provenance={
            "dataset": args.dataset,
            "data_root": data["root"],
            "teacher": meta["key"],
            "epochs": cfg.epochs,
            "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        },
    )
    log(
        f"\n{markdown_table(report)}\n\n{verdict(report)}\n\n[retrain] report: "
        f"{args.out / 'report.md'}; cell: "
        f"{args.out / 'cell'}"
    )
    return report


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    log = lambda text: print(text, flush=True)
    try:
        run(args, log)
    except (
        GenotypeError,
        DatasetLayoutError,
        ImageReadError,
        FileNotFoundError,
        ResumeError,
        ValueError,
        ModuleNotFoundError,
    ) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(
            f"interrupted: the last finished epoch is saved; continue with --resume "
            f"--out {args.out}",
            file=sys.stderr,
        )
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
