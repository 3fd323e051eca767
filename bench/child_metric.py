"""Would the search rank cells as the payoff table does if its children were scored on the
foreground alone? The payoff table's cells trained as search children once more, each scored
two ways on the held-in sequences: the two-class mIoU the search uses (background's IoU lifts
every figure) and the foreground IoU (DAVIS's J), with copy at each cell's alpha; prints both
beside the table's unseen-sequence gain over copy, and the Spearman of each.

    python -m bench.child_metric [--payoff bench/out/payoff.json] [--run bench/out/payoff/search]

Children are trained with the run's own settings and seed 0, in 2 processes; nothing is kept
between runs (7 children: about 2 minutes here).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from bench import payoff, search_outcome
from bench.cli import REPO
from bench.stats import figure, spearman


def child_scores(job: tuple[str, dict, int, int]) -> dict:
    """One child trained as the run's children are; its and copy's quality both ways."""
    from bench.proxy import make_child

    child = make_child(job)
    child.train_steps(child.cfg.steps)
    cell, copy, static, _ = child.confusions()
    return {
        "miou": cell.miou(),
        "copy_miou": copy.miou(),
        "fg": float(cell.iou()[1]),
        "copy_fg": float(copy.iou()[1]),
        "static_fg": float(static.iou()[1]),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--payoff", type=Path, default=REPO / "bench" / "out" / "payoff.json")
    p.add_argument("--run", type=Path, default=REPO / "bench" / "out" / "payoff" / "search")
    p.add_argument("--workers", type=int, default=2)
    args = p.parse_args(argv)
    if not args.payoff.is_file() or not (args.run / "cache" / "val" / "meta.json").is_file():
        print(f"skipped: needs {args.payoff} (bench.payoff --json) and its search's cache")
        return 0
    rows = payoff.cells(json.loads(args.payoff.read_text())["rows"])  # not the trained copies
    jobs = search_outcome.held_in_jobs(rows, args.run, seed=0)
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(args.workers, mp_context=context) as pool:
        scores = list(pool.map(child_scores, jobs))
    print(f"{'cell':<10} {'alpha':>5} {'mIoU-copy':>9} {'J-copy':>8} {'unseen-copy':>11}")
    for r, s in zip(rows, scores):
        print(
            f"{r['name']:<10} {r['alpha']:>5} {s['miou'] - s['copy_miou']:>+9.4f} "
            f"{s['fg'] - s['copy_fg']:>+8.4f} {r['quality'] - r['copy']:>+11.4f}"
        )
    unseen = [r["quality"] - r["copy"] for r in rows]
    by_miou = spearman([s["miou"] - s["copy_miou"] for s in scores], unseen)
    by_fg = spearman([s["fg"] - s["copy_fg"] for s in scores], unseen)
    static_fg = scores[0]["static_fg"]
    copy_share = {r["alpha"]: s["copy_fg"] / static_fg for r, s in zip(rows, scores)}
    print(
        f"Spearman with the unseen gain over copy over {len(rows)} cells: two-class mIoU "
        f"{figure(by_miou, '.3f')}, foreground IoU {figure(by_fg, '.3f')}; held-in copy keeps "
        + ", ".join(f"{v:.1%} at alpha {a}" for a, v in sorted(copy_share.items()))
        + " of static's foreground IoU"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
