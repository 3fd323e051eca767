"""Controllers on identical budgets over the surrogate reward (``controllers.surrogate``).

Run from the repository root as a module (a script named controllers.py would shadow the
package)::

    python -m bench.controllers --samples 1000 --seeds 10 --json runs/bench_controllers.json

For each controller and seed (the seed picks both the surrogate and the controller's seed) it
runs ask -> reward -> tell, keeping ``--in-flight`` proposals outstanding (told oldest first),
and prints over seeds the median [25th-75th percentile] of the best reward after 100, 300 and
1000 samples, the mean reward of the last 100 samples, and the controller's own time per
proposal (ask + tell, ms). The optimum is 1.0 by construction (exact max-sum DP).
"""

from __future__ import annotations

import argparse
import json
import time
from collections import deque
from pathlib import Path

import numpy as np

from controllers import CONTROLLERS, PPOConfig, make_controller
from controllers.surrogate import Surrogate
from search_spaces.space import SearchSpace

CHECKPOINTS = (100, 300, 1000)


def run_one(name: str, seed: int, samples: int, in_flight: int, kwargs: dict) -> dict:
    """One search: the reward of every sample in order, and the controller's seconds."""
    space = SearchSpace()
    reward_fn = Surrogate(space, seed)
    controller = make_controller(name, space, seed, **kwargs)
    rewards, outstanding, seconds = [], deque(), 0.0
    while len(rewards) < samples:
        while len(outstanding) < in_flight and len(rewards) + len(outstanding) < samples:
            start = time.perf_counter()
            outstanding.append(controller.ask())
            seconds += time.perf_counter() - start
        proposal = outstanding.popleft()
        reward = reward_fn(proposal.tokens)
        start = time.perf_counter()
        controller.tell(proposal, reward, "ok")
        seconds += time.perf_counter() - start
        rewards.append(reward)
    return {"rewards": rewards, "ms_per_proposal": 1000 * seconds / samples}


def summarize(runs: list[dict], samples: int) -> dict:
    """Median and spread over seeds of the figures the README quotes."""

    def stats(values: list[float]) -> dict:
        q25, q50, q75 = np.percentile(values, [25, 50, 75])
        return {"median": q50, "q25": q25, "q75": q75, "min": min(values), "max": max(values)}

    out = {}
    for n in CHECKPOINTS:
        if n <= samples:
            out[f"best@{n}"] = stats([max(r["rewards"][:n]) for r in runs])
    out["last100_mean"] = stats([float(np.mean(r["rewards"][-100:])) for r in runs])
    out["ms_per_proposal"] = stats([r["ms_per_proposal"] for r in runs])
    return out


def parse_overrides(items: list[str]) -> dict:
    """``key=value`` pairs with values parsed as JSON (numbers, booleans) or left as text."""
    out = {}
    for item in items:
        key, _, value = item.partition("=")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=1000, help="children per search")
    parser.add_argument("--seeds", type=int, default=10, help="searches per controller")
    parser.add_argument("--controllers", default="random,tpe,evolution,ppo")
    parser.add_argument("--in-flight", type=int, default=1, help="proposals outstanding")
    parser.add_argument(
        "--tpe-samples", type=int, default=None, help="cap TPE's samples (it is O(n) per ask)"
    )
    parser.add_argument("--ppo", nargs="*", default=[], help="PPOConfig overrides, key=value")
    parser.add_argument("--evolution", nargs="*", default=[], help="e.g. population_size=20")
    parser.add_argument("--json", type=Path, default=None, help="write all figures here")
    args = parser.parse_args(argv)

    kwargs = {"ppo": parse_overrides(args.ppo), "evolution": parse_overrides(args.evolution)}
    names = args.controllers.split(",")
    unknown = [n for n in names if n not in CONTROLLERS]
    if unknown:
        parser.error(f"unknown controllers {unknown}; known {list(CONTROLLERS)}")
    print(
        f"surrogate over SearchSpace() ({len(SearchSpace())} decisions); optimum reward 1.0, "
        f"uniform random genotype ~0.50; {args.seeds} seeds, in-flight {args.in_flight}"
    )
    print(f"PPOConfig: {PPOConfig(**kwargs['ppo'])}")
    header = f"{'controller':<10} {'samples':>7} " + " ".join(
        f"{f'best@{n}':>19}" for n in CHECKPOINTS if n <= args.samples
    )
    print(header + f" {'last-100 mean':>19} {'ms/proposal':>11}")
    report = {"args": {k: str(v) for k, v in vars(args).items()}, "results": {}}
    for name in names:
        samples = args.samples
        if name == "tpe" and args.tpe_samples:
            samples = min(samples, args.tpe_samples)
        runs = [
            run_one(name, seed, samples, args.in_flight, kwargs.get(name, {}))
            for seed in range(args.seeds)
        ]
        summary = summarize(runs, samples)
        report["results"][name] = {"samples": samples, **summary}
        cells = [
            f"{s['median']:.3f} [{s['q25']:.3f}-{s['q75']:.3f}]"
            for key, s in summary.items()
            if key != "ms_per_proposal"
        ]
        print(
            f"{name:<10} {samples:>7} "
            + " ".join(f"{c:>19}" for c in cells)
            + f" {summary['ms_per_proposal']['median']:>11.2f}",
            flush=True,
        )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2))
    return report


if __name__ == "__main__":
    main()
