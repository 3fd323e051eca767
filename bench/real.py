"""Real data: the static network, the copy baseline and the video network of one cell, at
alpha 2 and 4, on CamVid (train -> val) and DAVIS-2016 (each sequence split in time: the first
70% of its frames train, the last 30% are evaluated, semi-supervised from their first frame).

    python -m bench.real [--data-root ../shared/data] [--cell docs/cell.json] [--json FILE]

Quality is scored on non-key frames only (mIoU for CamVid, J&F for DAVIS), next to all frames,
with per-frame GFLOPs and their ratio to the static network. It trains with nas.retrain's own
code (teacher, video training, evaluation), at reduced resolution and short schedules sized for
about 40 minutes of a 2-core CPU: no ImageNet weights, so every network learns from scratch on
a few hundred frames. The video network is trained ``--seeds`` times (3) on the same teacher
and its figures are their mean, each seed's printed beside it: on a few hundred frames one
seed moves it by more than the gap to copy. Issue #5's target (DAVIS, alpha 2): video
non-key quality (the mean) >= 95% of static on the same frames and above copy, at <= 61% of
static per-frame GFLOPs. Runs resume (teacher and video training) when re-run with the same
settings; ``--seed`` also seeds the teacher, so another ``--seed`` (with another ``--out``)
measures another teacher. ``--validate`` chooses settings (``--step-head``, a cell) without
reading the evaluation frames: it trains on the first 70% of the training frames of each
sequence and scores the rest.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from nas.checkpoint import content_key
from nas.data import load_clips, num_classes
from nas.data.clip import Clip
from nas.models.config import NetConfig
from nas.retrain import (
    RetrainConfig,
    add_step_head_flag,
    build_report,
    build_video_net,
    evaluate_networks,
    fingerprint,
    metric_of,
    parse_size,
    per_frame_gflops,
    run_identity,
    train_video,
)
from nas.teacher import TeacherConfig, ensure_teacher
from nas.train_utils import ResumeError, WindowSampler, pick_device
from search_spaces.genotype import Genotype, GenotypeError

REPO = Path(__file__).resolve().parents[1]
TARGET = {"dataset": "davis", "alpha": 2, "quality_vs_static": 0.95, "gflops_ratio": 0.61}


def split_in_time(clip: Clip, share: float) -> tuple[Clip, Clip]:
    """The first ``share`` of a sequence's frames and the rest, as two clips."""
    cut = round(len(clip) * share)
    return (
        clip.subset(slice(0, cut), f"{clip.sequence}[train]"),
        clip.subset(slice(cut, None), f"{clip.sequence}[eval]"),
    )


def load(
    dataset: str, root: Path, size: tuple[int, int], validate: bool = False
) -> tuple[list[Clip], list[Clip]]:
    """Training and evaluation clips; with ``validate``, the training clips split in time
    again (first 70% train, last 30% scored), so that a setting is chosen without reading the
    evaluation frames."""
    if dataset == "camvid":
        train = load_clips("camvid", root, "train", size=size)
        val = [] if validate else load_clips("camvid", root, "val", size=size)
    else:
        parts = [split_in_time(c, 0.7) for c in load_clips("davis", root, "train", size=size)]
        train, val = [p[0] for p in parts], [p[1] for p in parts]
    if validate:
        parts = [split_in_time(c, 0.7) for c in train]
        train, val = [p[0] for p in parts], [p[1] for p in parts]
    return train, val


def cell_tag(genotype: Genotype, step_head: str = "own") -> str:
    """A short name of the cell (and of its non-key head when it is the key head), so that
    benching another cell never meets this one's checkpoints."""
    tag = content_key(genotype.to_dict())[:8]
    return tag if step_head == "own" else f"{tag}-{step_head}head"


def bench_dataset(
    dataset: str,
    root: Path,
    size: tuple[int, int],
    genotype: Genotype,
    args: argparse.Namespace,
    out: Path,
    log,
) -> dict:
    """Teacher once, then per alpha and seed: train the video network, score the three
    networks; per alpha, the mean over seeds."""
    device = pick_device(args.device)
    train, val = load(dataset, root, size, args.validate)
    k = num_classes(dataset, root)
    split = "train" if dataset == "camvid" else "first 70%"
    data = fingerprint(dataset, root, f"{split}, first 70%" if args.validate else split, train)
    log(
        f"[bench] {dataset}: {len(train)} training clips ({data['frames']} frames), "
        f"{sum(len(c) for c in val)} evaluation frames in {len(val)} clips, {size[0]}x{size[1]}"
    )
    net_cfg = NetConfig(width_mult=args.width_mult, deep_channels=args.deep_channels)
    teacher_cfg = TeacherConfig(steps=args.teacher_steps, fast_steps=args.fast_steps)
    t0 = time.time()
    meta = ensure_teacher(
        out / "teacher", train, k, data, net_cfg, teacher_cfg, args.seed, device=device, log=log
    )
    results = {"teacher_seconds": round(time.time() - t0, 1), "alphas": {}}
    for alpha in args.alphas:
        t0 = time.time()
        cell = replace(genotype, alpha=alpha)
        runs = [
            train_and_score(cell, train, val, data, meta, args, seed, out, device, log)
            for seed in range(args.seed, args.seed + args.seeds)
        ]
        results["alphas"][alpha] = combine_seeds(runs, seconds=round(time.time() - t0, 1))
    return results


def train_and_score(
    cell: Genotype,
    train: list[Clip],
    val: list[Clip],
    data: dict,
    meta: dict,
    args: argparse.Namespace,
    seed: int,
    out: Path,
    device: torch.device,
    log,
) -> dict:
    """One video training of ``cell`` (seeded: the cell's initialisation and the windows)
    on the teacher, and the three networks' report."""
    size = train[0].frames.shape[1:3]
    cfg = RetrainConfig(
        epochs=args.epochs,
        steps_per_epoch=args.steps_per_epoch,
        batch_size=max(1, args.frames_per_step // cell.alpha),
        clip_len=cell.alpha,
        lr=args.lr,
        online_steps=args.online_steps,
        seed=seed,
        step_head=args.step_head,
    )
    torch.manual_seed(cfg.seed)
    net = build_video_net(cell, out / "teacher", meta, cfg.step_head).to(device)
    sampler = WindowSampler(train, cfg.clip_len, size, cfg.scale)
    identity = run_identity(cell, data, meta["key"], cfg)
    run_dir = out / f"alpha{cell.alpha}-{cell_tag(cell, cfg.step_head)}-seed{seed}"
    log(f"[bench] alpha {cell.alpha}, video training seed {seed} ({cfg.step_head} non-key head)")
    history = train_video(net, sampler, cfg, run_dir, device, identity, resume=True, log=log)
    metric = metric_of(data["dataset"])
    quality = evaluate_networks(net, val, metric, cfg, device, log)
    gflops = per_frame_gflops(net, val, device)
    return build_report(quality, gflops, metric, loss=history[-1], seed=seed)


def combine_seeds(runs: list[dict], **info) -> dict:
    """One report from the video trainings of several seeds: every figure is the mean over
    seeds (static and copy share the teacher, so only the video network's vary: its quality,
    and its GFLOPs where gated ops learn another density) and ``seeds`` keeps each run's
    video figures, with their spread."""

    def mean(values: list) -> float | None:
        return None if None in values else float(np.mean(values))

    networks = {
        name: {key: mean([r["networks"][name][key] for r in runs]) for key in row}
        for name, row in runs[0]["networks"].items()
    }
    seeds = [
        {
            "seed": r["seed"],
            "video_nonkey": r["networks"]["video"]["quality_nonkey"],
            "video_gflops_ratio": r["networks"]["video"]["gflops_ratio"],
            "loss": r["loss"],
        }
        for r in runs
    ]
    video = [s["video_nonkey"] for s in seeds]
    return {
        "metric": runs[0]["metric"],
        "networks": networks,
        "seeds": seeds,
        "video_nonkey_std": None if None in video else float(np.std(video)),
        **info,
    }


def table(results: dict) -> str:
    head = (
        f"{'dataset':<8} {'alpha':>5} {'network':<7} {'non-key':>8} {'vs static':>9} "
        f"{'all':>7} {'GFLOPs':>8} {'vs static':>9}"
    )
    lines = [head, "-" * len(head)]
    for dataset, res in results.items():
        for alpha, rep in res["alphas"].items():
            static = rep["networks"]["static"]["quality_nonkey"]
            for name, row in rep["networks"].items():
                q = row["quality_nonkey"]
                rel = f"{q / static:.1%}" if q is not None and static else "n/a"
                lines.append(
                    f"{dataset:<8} {alpha:>5} {name:<7} {_f(q):>8} {rel:>9} "
                    f"{_f(row['quality_all']):>7} {row['gflops_per_frame']:>8.3f} "
                    f"{row['gflops_ratio']:>9.1%}"
                )
            per_seed = " ".join(_f(run["video_nonkey"]) for run in rep["seeds"])
            lines.append(
                f"{'':<8} {'':>5} video non-key per seed: {per_seed} (std "
                f"{_f(rep['video_nonkey_std'])})"
            )
        lines.append(f"{'':<8} quality = {rep['metric']}; teacher {res['teacher_seconds']:.0f} s")
    return "\n".join(lines)


def _f(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.4f}"


def target_check(results: dict) -> dict | None:
    """Issue #5's DAVIS alpha-2 target, measured on the mean over the video seeds."""
    rep = results.get(TARGET["dataset"], {}).get("alphas", {}).get(TARGET["alpha"])
    if rep is None:
        return None
    nets = rep["networks"]
    video, static, base = (nets[n]["quality_nonkey"] for n in ("video", "static", "copy"))
    ratio = video / static if video is not None and static else None
    known = video is not None and base is not None
    return {
        "video_vs_static": ratio,
        "video_minus_copy": video - base if known else None,
        "seeds_above_copy": sum(
            run["video_nonkey"] is not None and base is not None and run["video_nonkey"] > base
            for run in rep["seeds"]
        ),
        "seeds": len(rep["seeds"]),
        "gflops_ratio": nets["video"]["gflops_ratio"],
        "quality_met": ratio is not None and ratio >= TARGET["quality_vs_static"],
        "beats_copy": known and video > base,
        "gflops_met": nets["video"]["gflops_ratio"] <= TARGET["gflops_ratio"],
    }


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m bench.real",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--data-root",
        type=Path,
        default=REPO.parent / "shared" / "data",
        help="folder holding camvid/ and davis2016/",
    )
    p.add_argument(
        "--cell",
        type=Path,
        default=REPO / "docs" / "cell.json",
        help="the cell to bench (default: docs/cell.json, a stated reference)",
    )
    p.add_argument(
        "--datasets", nargs="+", default=["camvid", "davis"], choices=["camvid", "davis"]
    )
    p.add_argument("--alphas", nargs="+", type=int, default=[2, 4])
    p.add_argument("--camvid-size", type=parse_size, default=(180, 240))
    p.add_argument("--davis-size", type=parse_size, default=(240, 427))
    p.add_argument("--width-mult", type=float, default=1.0)
    p.add_argument("--deep-channels", type=int, default=128)
    p.add_argument("--teacher-steps", type=int, default=250)
    p.add_argument("--fast-steps", type=int, default=60, help="per beta (three betas)")
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--steps-per-epoch", type=int, default=50)
    p.add_argument("--frames-per-step", type=int, default=8, help="windows x alpha")
    p.add_argument("--lr", type=float, default=RetrainConfig.lr)
    p.add_argument("--online-steps", type=int, default=RetrainConfig.online_steps)
    add_step_head_flag(p)
    p.add_argument(
        "--validate",
        action="store_true",
        help="choose settings without the evaluation frames: train on the first 70%% of "
        "the training frames of each sequence, score the rest (its own teacher)",
    )
    p.add_argument("--seed", type=int, default=0, help="the teacher's seed, the first video seed")
    p.add_argument(
        "--seeds",
        type=int,
        default=3,
        help="video trainings per alpha (seeds --seed, --seed + 1, ...); figures are their mean",
    )
    p.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch CPU threads (1 is fastest on a busy shared machine)",
    )
    p.add_argument("--device")
    p.add_argument(
        "--out",
        type=Path,
        help="run folder (default: bench/out/real, with --validate bench/out/real_validate)",
    )
    p.add_argument("--json", type=Path, help="also write the figures here")
    return p


def main(argv: list[str] | None = None) -> int:
    p = parser()
    args = p.parse_args(argv)
    if args.seeds < 1:
        p.error(f"--seeds must be at least 1, got {args.seeds}")
    if args.out is None:
        args.out = REPO / "bench" / "out" / ("real_validate" if args.validate else "real")
    log = lambda text: print(text, flush=True)
    roots = {"camvid": args.data_root / "camvid", "davis": args.data_root / "davis2016"}
    present = [d for d in args.datasets if roots[d].is_dir()]
    if not present:
        print(
            f"skipped: no real data under {args.data_root} (expected camvid/ and/or "
            "davis2016/; pass --data-root)"
        )
        return 0
    for missing in sorted(set(args.datasets) - set(present)):
        log(f"[bench] {missing}: {roots[missing]} absent, skipped")
    torch.set_num_threads(args.threads)
    sizes = {"camvid": args.camvid_size, "davis": args.davis_size}
    start = time.time()
    try:
        genotype = Genotype.load(args.cell)
        results = {
            d: bench_dataset(d, roots[d], sizes[d], genotype, args, args.out / d, log)
            for d in present
        }
    except (GenotypeError, ResumeError, ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    check = target_check(results)
    print(
        f"\ncell {args.cell} ({genotype.beta}, {genotype.fusion}); {args.step_head} non-key "
        f"head; width {args.width_mult}; {time.time() - start:.0f} s in total"
        + ("; VALIDATION frames (last 30% of the training frames)" if args.validate else "")
        + f"\n{table(results)}"
    )
    if check is not None:
        nan = float("nan")
        vs_static, vs_copy = check["video_vs_static"], check["video_minus_copy"]
        print(
            f"target (DAVIS, alpha 2): video non-key "
            f"{nan if vs_static is None else vs_static:.1%} of static (>= 95%: "
            f"{check['quality_met']}), video - copy {nan if vs_copy is None else vs_copy:+.4f}"
            f" (above copy: {check['beats_copy']}; {check['seeds_above_copy']} of "
            f"{check['seeds']} seeds), GFLOPs {check['gflops_ratio']:.1%} of "
            f"static (<= 61%: {check['gflops_met']})"
        )
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        settings = {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}
        payload = {
            "settings": settings,
            "results": results,
            "target": check,
            "seconds": round(time.time() - start, 1),
        }
        args.json.write_text(json.dumps(payload, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
