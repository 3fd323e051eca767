"""Which static network for real video, chosen where nothing is scored: each backbone's
teacher trained on 8 DAVIS-2016 training sequences and scored on 2 more (hockey, surf), the
way bench.real scores the unseen ones (semi-supervised: the heads fine-tuned on the first
frame; unsupervised: no mask).

    python -m bench.static_choice [--backbones efficientnet_lite0_s16 efficientnet_lite0]
        [--teacher-steps 250] [--json FILE]

The 4 unseen sequences of ``davis-unseen`` (bench.protocols.DAVIS_UNSEEN) are never read.
Each backbone's teacher is kept under ``--out`` and reused when rerun with the same settings.
"""

from __future__ import annotations

import sys
import time

import torch

from bench import real
from bench.cli import REPO
from bench.protocols import DAVIS_VALIDATE
from nas.checkpoint import json_text
from nas.config import RetrainConfig
from nas.models.backbones import BACKBONES
from nas.teacher_folder import TeacherFolder
from nas.video_eval import evaluate_networks, metric_of
from search_spaces.genotype import copy_genotype


def score_static(prep: real.Prepared, online_steps: int, log) -> dict[str, float]:
    """The prepared teacher's non-key quality on the held-in sequences, both ways."""
    net = TeacherFolder(prep.out / "teacher").video_net(copy_genotype(alpha=4)).to(prep.device)
    cfg = RetrainConfig(online_steps=online_steps)
    scores = {}
    for unsupervised in (False, True):
        metric = metric_of("davis", unsupervised)
        result = evaluate_networks(net, prep.val, metric, cfg, prep.device, log)
        scores[metric] = result["static"]["nonkey"]
    return scores


def main(argv: list[str] | None = None) -> int:
    p = real.parser()
    p.prog = "python -m bench.static_choice"
    p.description = __doc__
    p.add_argument("--backbones", nargs="+", choices=tuple(BACKBONES), default=None)
    p.set_defaults(teacher_steps=250, fast_steps=1, out=REPO / "bench" / "out" / "static_choice")
    args = p.parse_args(argv)
    backbones = args.backbones or ["efficientnet_lite0_s16", "efficientnet_lite0"]
    root = args.data_root / "davis2016"
    if not root.is_dir():
        print(f"skipped: no DAVIS-2016 under {args.data_root} (pass --data-root)")
        return 0
    torch.set_num_threads(args.threads)
    log = lambda text: print(text, flush=True)
    rows = []
    for backbone in backbones:
        args.backbone = backbone
        t0 = time.time()
        try:
            prep = real.prepare(
                DAVIS_VALIDATE, root, args.davis_size, args, args.out / backbone, log
            )
        except (ValueError, FileNotFoundError, ModuleNotFoundError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        scores = score_static(prep, args.online_steps, log)
        rows.append(
            {
                "backbone": backbone,
                "teacher_steps": args.teacher_steps,
                **scores,
                "seconds": round(time.time() - t0, 1),
            }
        )
    print(f"\n{DAVIS_VALIDATE.note}; static network, non-key frames, {args.davis_size}")
    print(f"{'backbone':<24} {'steps':>5} {'J&F':>7} {'J&F unsup':>9} {'s':>6}")
    for row in rows:
        print(
            f"{row['backbone']:<24} {row['teacher_steps']:>5} {row['J&F']:>7.4f} "
            f"{row['J&F unsupervised']:>9.4f} {row['seconds']:>6.0f}"
        )
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json_text({"rows": rows}) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
