"""Real data: the static network, the copy baseline and the video network of one cell, at
alpha 2 and 4, each scored where nothing was trained or tuned.

    python -m bench.real [--protocols davis-unseen camvid-val camvid-1hz] [--json FILE]

Protocols (every printed row names its own):
- ``davis-unseen``: DAVIS-2016, trained on 10 of the 14 training sequences in ../shared/data,
  scored on the other 4 (car-turn, dog-agility, paragliding, rhino), semi-supervised (the
  first frame's mask used by online fine-tuning) and unsupervised (no mask: foreground vs
  background from the frames alone).
- ``camvid-val``: CamVid train -> val (15 Hz frames; val sits inside a gap of a training
  sequence, so it is close to train in content: an optimistic figure).
- ``camvid-1hz``: trained on 0001TP and 0016E5, scored on 0006R0 (a sequence never trained
  on, labelled at 1 Hz: the motion between labelled frames is real).
- ``davis-in-time``: each sequence's first 70% train, the last 30% scored (sequences seen in
  training; the earlier headline, kept for comparison, never the headline).

Quality on non-key frames only (mIoU; J&F for DAVIS), next to all frames, with per-frame
GFLOPs and their ratio to the static network. It trains with nas.retrain's own code from an
ImageNet-initialised EfficientNet-Lite0 teacher by default (``--backbone``,
``--pretrained-backbone none`` for from scratch), at reduced resolution and short schedules.
The video network is trained ``--seeds`` times (3) on the same teacher; its figures are their
mean, each seed's printed beside it. Runs resume (teacher and video training) when re-run with
the same settings; ``--seed`` also seeds the teacher. ``--validate`` chooses settings (a
``--step-head``, a cell) without reading the scored frames: DAVIS trains on 8 sequences and
scores hockey and surf; CamVid trains on the first 70% of each training sequence and scores
the rest.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from bench.cli import (
    REPO,  # noqa: E402
    bench_parser,
)
from bench.protocols import (
    PROTOCOLS,
    STATIC_TARGETS,
    Protocol,
    load,
    validation_protocol,
)
from nas.checkpoint import content_key, json_text
from nas.config import (
    REAL_DATA_BACKBONE,
    RetrainConfig,
    TeacherConfig,
    resolution_arg,
    resolve_pretrained,
)
from nas.data import num_classes
from nas.data.clip import Clip
from nas.models.backbones import BACKBONES, check_pretrained
from nas.models.config import NetConfig
from nas.retrain import add_video_net_flags, fingerprint, retrain_cell
from nas.teacher import ensure_teacher
from nas.train_utils import ResumeError, pick_device
from search_spaces.genotype import Genotype, GenotypeError

DEFAULT_EPOCHS = 4


def cell_tag(
    genotype: Genotype,
    step_head: str = "own",
    fast_encoder: str = "train",
    epochs: int = DEFAULT_EPOCHS,
) -> str:
    """A short name of the cell (and of its non-key head when it is the key head, of its fast
    encoder's mode unless train, the mode of the runs made before the modes existed, and of
    the training's length unless the default), so that benching another cell or setting never
    meets this one's checkpoints. The length must be named: a video training resumes into more
    epochs, and its cosine schedule would restart rather than be that of a run of that
    length."""
    tag = content_key(genotype.to_dict())[:8]
    if step_head != "own":
        tag += f"-{step_head}head"
    if fast_encoder != "train":
        tag += f"-{fast_encoder}fast"
    return tag if epochs == DEFAULT_EPOCHS else f"{tag}-{epochs}ep"


@dataclass
class Prepared:
    """A protocol's data and trained teacher: what every video training of it shares."""

    protocol: Protocol
    train: list[Clip]
    val: list[Clip]
    data: dict
    meta: dict
    out: Path
    device: torch.device
    teacher_seconds: float


def prepare(
    protocol: Protocol, root: Path, size: tuple[int, int], args: argparse.Namespace, out: Path, log
) -> Prepared:
    """Load the protocol's clips and train (or reuse) its teacher in ``out/teacher``."""
    device = pick_device(args.device)
    train, val = load(protocol, root, size)
    k = num_classes(protocol.dataset, root)
    data = fingerprint(protocol.dataset, root, protocol.train, train)
    log(
        f"[bench] {protocol.note}: {len(train)} training clips ({data['frames']} frames), "
        f"{sum(len(c) for c in val)} scored frames in {len(val)} clips, {size[0]}x{size[1]}"
    )
    net_cfg = NetConfig(
        width_mult=args.width_mult, deep_channels=args.deep_channels, backbone=args.backbone
    )
    pretrained = resolve_pretrained(args.pretrained_backbone, protocol.dataset, args.backbone)
    teacher_cfg = TeacherConfig(steps=args.teacher_steps, fast_steps=args.fast_steps)
    t0 = time.time()
    meta = ensure_teacher(
        out / "teacher",
        train,
        k,
        data,
        net_cfg,
        teacher_cfg,
        args.seed,
        pretrained_backbone=pretrained,
        device=device,
        log=log,
    )
    return Prepared(protocol, train, val, data, meta, out, device, round(time.time() - t0, 1))


def scorings(protocol: Protocol) -> list[bool]:
    """Whether each scoring is unsupervised: DAVIS both ways, the rest once."""
    return [False, True] if protocol.dataset == "davis" else [False]


def row_name(protocol: Protocol, unsupervised: bool) -> str:
    return f"{protocol.name} unsup" if unsupervised else protocol.name


def bench_protocol(
    protocol: Protocol,
    root: Path,
    size: tuple[int, int],
    genotype: Genotype,
    args: argparse.Namespace,
    out: Path,
    log,
) -> dict[str, dict]:
    """Teacher once, then per alpha and seed: train the video network, score the three
    networks (DAVIS: semi-supervised and unsupervised); per alpha, the mean over seeds.
    Returns one result a row: the protocol's name (and ``<name> unsup`` for DAVIS)."""
    prep = prepare(protocol, root, size, args, out, log)
    rows = {
        row_name(protocol, unsup): {
            "teacher_seconds": prep.teacher_seconds,
            "note": protocol.note,
            "alphas": {},
        }
        for unsup in scorings(protocol)
    }
    for alpha in args.alphas:
        cell = replace(genotype, alpha=alpha)
        for unsup in scorings(protocol):
            rows[row_name(protocol, unsup)]["alphas"][alpha] = score_seeds(
                cell, prep, args, log, unsup
            )
    return rows


def score_seeds(
    cell: Genotype, prep: Prepared, args: argparse.Namespace, log, unsupervised: bool = False
) -> dict:
    """``cell`` trained with ``args.seeds`` seeds on the prepared teacher, scored, combined."""
    t0 = time.time()
    runs = [
        train_and_score(cell, prep, args, seed, log, unsupervised)
        for seed in range(args.seed, args.seed + args.seeds)
    ]
    return combine_seeds(runs, seconds=round(time.time() - t0, 1))


def train_and_score(
    cell: Genotype,
    prep: Prepared,
    args: argparse.Namespace,
    seed: int,
    log,
    unsupervised: bool = False,
) -> dict:
    """One video training of ``cell`` (seeded: the cell's initialisation and the windows)
    on the prepared teacher, and the three networks' report (a trained run is only scored
    again)."""
    cfg = RetrainConfig(
        epochs=args.epochs,
        steps_per_epoch=args.steps_per_epoch,
        batch_size=max(1, args.frames_per_step // cell.alpha),
        clip_len=cell.alpha,
        lr=args.lr,
        online_steps=args.online_steps,
        seed=seed,
        step_head=args.step_head,
        fast_encoder=args.fast_encoder,
    )
    # named by the teacher too: a retrained teacher never meets the runs of the one before
    teacher = prep.meta["key"][:6]
    tag = cell_tag(cell, cfg.step_head, cfg.fast_encoder, cfg.epochs)
    run_dir = prep.out / f"alpha{cell.alpha}-{tag}-t{teacher}-seed{seed}"
    log(f"[bench] alpha {cell.alpha}, video training seed {seed} ({cfg.step_head} non-key head)")
    _, report = retrain_cell(
        cell,
        prep.train,
        prep.val,
        prep.data,
        prep.out / "teacher",
        prep.meta,
        cfg,
        run_dir,
        prep.device,
        resume=True,
        log=log,
        unsupervised=unsupervised,
    )
    history = report.pop("training")["history"]
    return {**report, "loss": history[-1], "seed": seed}


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
        "video_nonkey_std": None
        if None in video or len(video) < 2
        else float(np.std(video, ddof=1)),
        **info,
    }


def table(results: dict) -> str:
    head = (
        f"{'protocol':<18} {'alpha':>5} {'network':<7} {'non-key':>8} {'vs static':>9} "
        f"{'all':>7} {'GFLOPs':>8} {'vs static':>9}"
    )
    lines = [head, "-" * len(head)]
    for row_name, res in results.items():
        for alpha, rep in res["alphas"].items():
            static = rep["networks"]["static"]["quality_nonkey"]
            for name, row in rep["networks"].items():
                q = row["quality_nonkey"]
                rel = f"{q / static:.1%}" if q is not None and static else "n/a"
                lines.append(
                    f"{row_name:<18} {alpha:>5} {name:<7} {_f(q):>8} {rel:>9} "
                    f"{_f(row['quality_all']):>7} {row['gflops_per_frame']:>8.3f} "
                    f"{row['gflops_ratio']:>9.1%}"
                )
            per_seed = " ".join(_f(run["video_nonkey"]) for run in rep["seeds"])
            lines.append(
                f"{'':<18} {'':>5} video non-key per seed: {per_seed} (std "
                f"{_f(rep['video_nonkey_std'])}); video - copy {_signed(video_minus_copy(rep))}"
            )
        lines.append(
            f"{'':<18} {res['note']}; quality = {rep['metric']}; teacher "
            f"{res['teacher_seconds']:.0f} s"
        )
    return "\n".join(lines)


def _f(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.4f}"


def _signed(v: float | None) -> str:
    return "n/a" if v is None else f"{v:+.4f}"


def video_minus_copy(rep: dict) -> float | None:
    video = rep["networks"]["video"]["quality_nonkey"]
    base = rep["networks"]["copy"]["quality_nonkey"]
    return None if video is None or base is None else video - base


def static_targets(results: dict) -> list[dict]:
    """Issue 16's static targets, on each protocol benched that has one (the static network
    is the same at every alpha: read at the first)."""
    checks = []
    for name, target in STATIC_TARGETS.items():
        if name not in results or not results[name]["alphas"]:
            continue
        rep = next(iter(results[name]["alphas"].values()))
        static = rep["networks"]["static"]["quality_nonkey"]
        checks.append(
            {
                "protocol": name,
                "metric": rep["metric"],
                "static": static,
                "target": target,
                "met": static is not None and static >= target,
            }
        )
    return checks


def parser() -> argparse.ArgumentParser:
    p = bench_parser("python -m bench.real", __doc__, "camvid/ and davis2016/")
    p.add_argument(
        "--cell",
        type=Path,
        default=REPO / "docs" / "cell.json",
        help="the cell to bench (default: docs/cell.json, a stated reference)",
    )
    p.add_argument(
        "--protocols",
        nargs="+",
        default=["davis-unseen", "camvid-val", "camvid-1hz"],
        choices=list(PROTOCOLS),
    )
    p.add_argument("--alphas", nargs="+", type=int, default=[2, 4])
    p.add_argument("--camvid-size", type=resolution_arg, default=(180, 240))
    p.add_argument("--davis-size", type=resolution_arg, default=(240, 427))
    p.add_argument("--backbone", choices=tuple(BACKBONES), default=REAL_DATA_BACKBONE)
    p.add_argument(
        "--pretrained-backbone",
        help="imagenet (default on efficientnet_lite0), a weights file, or none",
    )
    p.add_argument("--width-mult", type=float, default=1.0)
    p.add_argument("--deep-channels", type=int, default=128)
    p.add_argument("--teacher-steps", type=int, default=TeacherConfig.steps)
    p.add_argument("--fast-steps", type=int, default=150, help="per beta (three betas)")
    p.add_argument("--epochs", type=int, default=DEFAULT_EPOCHS)
    p.add_argument("--steps-per-epoch", type=int, default=50)
    p.add_argument("--frames-per-step", type=int, default=8, help="windows x alpha")
    p.add_argument("--lr", type=float, default=RetrainConfig.lr)
    p.add_argument("--online-steps", type=int, default=RetrainConfig.online_steps)
    add_video_net_flags(p)
    p.add_argument(
        "--validate",
        action="store_true",
        help="choose settings without the scored frames: DAVIS scores hockey and surf, "
        "CamVid the last 30%% of each training sequence (each its own teacher)",
    )
    p.add_argument("--seed", type=int, default=0, help="the teacher's seed, the first video seed")
    p.add_argument(
        "--seeds",
        type=int,
        default=3,
        help="video trainings per alpha (seeds --seed, --seed + 1, ...); figures are their mean",
    )
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    p.add_argument("--device")
    p.add_argument(
        "--out",
        type=Path,
        help="run folder (default: bench/out/real, with --validate bench/out/real_validate)",
    )
    p.add_argument("--json", type=Path, help="also write the figures here")
    return p


def video_settings(seed: int, seeds: int, threads: int, *flags: str) -> argparse.Namespace:
    """This bench's settings for other benches' video trainings: ``seeds`` seeds from ``seed``
    (the teacher's seed too), ``flags`` more of its flags, its defaults for the rest."""
    argv = ["--seed", str(seed), "--seeds", str(seeds), "--threads", str(threads), *flags]
    return parser().parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    p = parser()
    args = p.parse_args(argv)
    if args.seeds < 1:
        p.error(f"--seeds must be at least 1, got {args.seeds}")
    if args.out is None:
        args.out = REPO / "bench" / "out" / ("real_validate" if args.validate else "real")
    log = lambda text: print(text, flush=True)
    roots = {"camvid": args.data_root / "camvid", "davis": args.data_root / "davis2016"}
    sizes = {"camvid": args.camvid_size, "davis": args.davis_size}
    protocols = [PROTOCOLS[name] for name in args.protocols]
    present = [p for p in protocols if roots[p.dataset].is_dir()]
    if not present:
        print(
            f"skipped: no real data under {args.data_root} (expected camvid/ and/or "
            "davis2016/; pass --data-root)"
        )
        return 0
    for missing in (p for p in protocols if p not in present):
        log(f"[bench] {missing.name}: {roots[missing.dataset]} absent, skipped")
    torch.set_num_threads(args.threads)
    start = time.time()
    pretrained = resolve_pretrained(args.pretrained_backbone, "davis", args.backbone)  # real data
    try:
        genotype = Genotype.load(args.cell)
        if args.validate:
            present = [validation_protocol(p) for p in present]
        check_pretrained(
            args.backbone,
            args.width_mult,
            NetConfig.output_stride,
            pretrained,
        )
        results = {}
        for protocol in present:
            root, size = roots[protocol.dataset], sizes[protocol.dataset]
            out = args.out / protocol.name
            results.update(bench_protocol(protocol, root, size, genotype, args, out, log))
    except (GenotypeError, ResumeError, ValueError, FileNotFoundError, ModuleNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    targets = static_targets(results)
    print(
        f"\ncell {args.cell} ({genotype.beta}, {genotype.fusion}); {args.step_head} non-key "
        f"head; {args.backbone} width {args.width_mult}, "
        f"{pretrained or 'from scratch'}"
        f"; {time.time() - start:.0f} s in total\n{table(results)}"
    )
    for check in targets:
        print(
            f"target ({check['protocol']}): static {check['metric']} {_f(check['static'])} "
            f">= {check['target']:.2f}: {check['met']}"
        )
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        settings = {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}
        payload = {
            "settings": settings,
            "results": results,
            "targets": targets,
            "seconds": round(time.time() - start, 1),
        }
        args.json.write_text(json_text(payload) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
