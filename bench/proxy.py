"""Proxy fidelity: does a short child rank genotypes as a 5x longer training does?

Over N sampled genotypes (default 20), each child is trained for S steps and, separately, for
5 x S steps on the same cached features; prints the Spearman rank correlation of their
qualities (non-key mIoU). Target: >= 0.6 (else the search optimises noise).

Each child's quality is appended to ``--done`` (default ``RUN/proxy.jsonl``) as it finishes,
so a stopped bench reruns only the children it had not finished (same ``--seed``, ``--steps``
and ``--genotypes``: the genotypes are drawn from the seed).

    python bench/proxy.py --run runs/demo [--genotypes 20] [--steps 80] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.stats import spearman  # noqa: E402

Job = tuple[str, dict, int, int]
"""Run folder, genotype, training steps, seed."""


def run_config(run: Path):
    """The run's search settings (its children's batch and learning rate among them); the
    defaults for a folder holding only a teacher and caches."""
    from nas.checkpoint import read_json
    from nas.config import SearchConfig

    saved = run / "search.json"
    return SearchConfig.from_saved(read_json(saved)) if saved.is_file() else SearchConfig()


def make_child(job: Job):
    """The job's child (nas.child.ChildRun), set up as the run's children are, to train for
    the job's steps and be scored once at the end."""
    import torch

    from nas.cache import FeatureCache
    from nas.child import ChildRun
    from search_spaces.genotype import Genotype

    run, genotype, steps, seed = job
    torch.set_num_threads(1)
    run = Path(run)
    return ChildRun(
        Genotype.from_dict(genotype),
        run / "teacher",
        FeatureCache(run / "cache" / "train"),
        FeatureCache(run / "cache" / "val"),
        replace(run_config(run).child_config(), steps=steps, rounds=1),
        seed=seed,
    )


def child_quality(job: Job) -> float:
    """A child trained as the run's children are, for ``steps`` steps, scored once at the end."""
    return make_child(job).run(lambda r: None)["quality"]


def job_key(job: Job) -> str:
    """What decides a child's quality: its genotype, steps and seed (not the run folder)."""
    _, genotype, steps, seed = job
    return json.dumps({"genotype": genotype, "steps": steps, "seed": seed}, sort_keys=True)


def read_done(path: Path) -> dict[str, float]:
    """Qualities finished by an earlier run of the bench, by job key; a torn last line (the
    bench killed mid-write) is skipped and recomputed."""
    done: dict[str, float] = {}
    if path.is_file():
        for line in path.read_text().splitlines():
            try:
                row = json.loads(line)
                done[row["key"]] = float(row["quality"])
            except (json.JSONDecodeError, KeyError, TypeError, ValueError):
                continue
    return done


def run_jobs(jobs: list[Job], workers: int, done_path: Path) -> list[float]:
    """Each job's quality, in order: finished ones read back, the rest trained (in ``workers``
    processes, or in this one when 1) and appended to ``done_path`` as each finishes.

    The processes are spawned, not forked: a caller that has run torch's thread pool or Ray
    (bench.payoff) would hand a fork locks held by threads that do not exist there."""
    done = read_done(done_path)
    todo = [j for j in jobs if job_key(j) not in done]
    if done:
        print(f"[proxy] {len(jobs) - len(todo)} of {len(jobs)} children read from {done_path}")
    done_path.parent.mkdir(parents=True, exist_ok=True)

    def keep(job: Job, quality: float) -> None:
        done[job_key(job)] = quality
        with done_path.open("a") as f:
            f.write(json.dumps({"key": job_key(job), "quality": quality}) + "\n")

    if workers == 1:
        for job in todo:
            keep(job, child_quality(job))
    else:
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
            futures = {pool.submit(child_quality, job): job for job in todo}
            for future in as_completed(futures):
                keep(futures[future], future.result())
    return [done[job_key(j)] for j in jobs]


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
    p.add_argument("--done", help="finished children, appended as they end (RUN/proxy.jsonl)")
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
    done_path = Path(args.done) if args.done else Path(args.run) / "proxy.jsonl"
    qualities = run_jobs(jobs, args.workers, done_path)
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
