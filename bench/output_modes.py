"""The cell's output mode, measured: the same sampled cells as a plain sum of their leaf nodes
and as a residual over the key frame's features (D_k + gain x sum, gain starting at 0).

Each of N sampled genotypes is trained as a child twice on the same cached features, once per
mode, and scored on non-key frames (mIoU); prints both means, how often the residual wins,
and the copy baseline's quality at the genotypes' alphas for reference.

    python bench/output_modes.py --run runs/bench3 [--genotypes 16] [--steps 80] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.proxy import child_quality  # noqa: E402

MODES = ("sum", "residual")


def main(argv: list[str] | None = None) -> int:
    from nas.config import SearchConfig
    from search_spaces.genotype import copy_genotype
    from search_spaces.space import SearchSpace

    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--run", default="runs/demo", help="a search run folder (teacher + cache)")
    p.add_argument("--genotypes", type=int, default=16)
    p.add_argument("--steps", type=int, default=SearchConfig.child_steps)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json")
    args = p.parse_args(argv)
    run = Path(args.run)
    if not (run / "cache" / "train").is_dir():
        print(f"error: {run} holds no feature cache; run `python -m nas.search --out {run}` first")
        return 2

    space = SearchSpace()
    rng = np.random.default_rng(args.seed)
    cells = [space.sample(rng) for _ in range(args.genotypes)]
    jobs = [
        (str(run), replace(g, output=mode).to_dict(), args.steps, args.seed)
        for g in cells
        for mode in MODES
    ]
    alphas = sorted({g.alpha for g in cells})
    jobs += [(str(run), copy_genotype(alpha=a).to_dict(), args.steps, args.seed) for a in alphas]
    t0 = time.time()
    with ProcessPoolExecutor(args.workers) as pool:
        qualities = list(pool.map(child_quality, jobs))
    pairs = np.array(qualities[: 2 * len(cells)]).reshape(len(cells), 2)
    copy = dict(zip(alphas, qualities[2 * len(cells) :]))
    below_copy = {
        m: int(sum(q < copy[g.alpha] for g, q in zip(cells, pairs[:, i])))
        for i, m in enumerate(MODES)
    }
    result = {
        "run": str(run),
        "genotypes": len(cells),
        "steps": args.steps,
        "mean": {m: float(pairs[:, i].mean()) for i, m in enumerate(MODES)},
        "residual_wins": int((pairs[:, 1] > pairs[:, 0]).sum()),
        "below_copy": below_copy,
        "copy": {str(a): q for a, q in copy.items()},
        "pairs": [
            {"genotype": g.to_dict(), **dict(zip(MODES, map(float, q)))}
            for g, q in zip(cells, pairs)
        ],
        "seconds": round(time.time() - t0, 1),
    }
    for g, (s, r) in zip(cells, pairs):
        print(
            f"alpha {g.alpha} beta {g.beta:<4} sum {s:.4f} residual {r:.4f} "
            f"copy {copy[g.alpha]:.4f}"
        )
    print(
        f"{len(cells)} cells, {args.steps} steps: mean non-key mIoU sum {result['mean']['sum']:.4f}"
        f", residual {result['mean']['residual']:.4f}; residual better in "
        f"{result['residual_wins']}/{len(cells)}; below the copy baseline: sum "
        f"{below_copy['sum']}, residual {below_copy['residual']} ({result['seconds']:.0f} s)"
    )
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
