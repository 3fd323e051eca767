"""Proxy fidelity: does a short child rank genotypes as a 5x longer training does?

Over N sampled genotypes (default 20), each child is trained for S steps and, separately, for
5 x S steps on the same cached features; prints the Spearman rank correlation of their
qualities (non-key mIoU). Target: >= 0.6 (else the search optimises noise).

    python bench/proxy.py --run runs/demo [--genotypes 20] [--steps 80] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.stats import spearman  # noqa: E402


def child_quality(args: tuple[str, dict, int, int]) -> float:
    import torch

    from nas.cache import FeatureCache
    from nas.child import ChildConfig, ChildRun
    from search_spaces.genotype import Genotype

    run, genotype, steps, seed = args
    torch.set_num_threads(1)
    run = Path(run)
    child = ChildRun(
        Genotype.from_dict(genotype),
        run / "teacher",
        FeatureCache(run / "cache" / "train"),
        FeatureCache(run / "cache" / "val"),
        ChildConfig(steps=steps, rounds=1),
        seed=seed,
    )
    return child.run(lambda r: None)["quality"]


def main(argv: list[str] | None = None) -> int:
    from nas.config import SearchConfig
    from search_spaces.space import SearchSpace

    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--run", default="runs/demo")
    p.add_argument("--genotypes", type=int, default=20)
    p.add_argument("--steps", type=int, default=SearchConfig.child_steps)
    p.add_argument("--factor", type=int, default=5)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json")
    args = p.parse_args(argv)
    if not (Path(args.run) / "cache" / "val" / "meta.json").is_file():
        print(f"{args.run} holds no teacher cache: run `make demo` (or a search) first")
        return 1
    space = SearchSpace()
    rng = np.random.default_rng(args.seed)
    genotypes = [space.decode(space.sample_tokens(rng)).to_dict() for _ in range(args.genotypes)]
    t0 = time.time()
    jobs = [
        (args.run, g, s, args.seed)
        for s in (args.steps, args.factor * args.steps)
        for g in genotypes
    ]
    with ProcessPoolExecutor(args.workers) as pool:
        qualities = list(pool.map(child_quality, jobs))
    short, long = qualities[: len(genotypes)], qualities[len(genotypes) :]
    rho = spearman(short, long)
    for g, s, lq in zip(genotypes, short, long):
        print(
            f"alpha {g['alpha']} beta {g['beta']:>3}  {args.steps:4d} steps {s:.4f}   "
            f"{args.factor * args.steps:4d} steps {lq:.4f}"
        )
    print(
        f"Spearman rank correlation over {len(genotypes)} genotypes, {args.steps} vs "
        f"{args.factor * args.steps} steps: {rho:.3f} (target >= 0.6) "
        f"[{time.time() - t0:.0f} s on {args.workers} workers]"
    )
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                {
                    "spearman": rho,
                    "short": short,
                    "long": long,
                    "steps": args.steps,
                    "factor": args.factor,
                    "genotypes": genotypes,
                },
                indent=2,
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
