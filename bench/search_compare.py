"""PPO vs random vs TPE on the synthetic default, the same number of children each.

Each controller runs a real search (`nas.run.run_search`, Ray Tune, 2 workers) sharing one
teacher and cache; then per controller: children, best reward, mean reward of the first and
last quarter, and whether the best cell beats the copy baseline's quality at its alpha.

    python bench/search_compare.py --base runs/demo [--children 150] [--out bench/out/compare]
    python bench/search_compare.py --analyze-only --out bench/out/compare
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from collections import Counter
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

CONTROLLERS = ("ppo", "random", "tpe")


def summarise(records: list[dict]) -> dict:
    rewards = np.array([r["reward"] if r.get("reward") is not None else np.nan for r in records])
    q = max(1, len(rewards) // 4)
    ok = [r for r in records if r.get("reward") is not None]
    best = max(ok, key=lambda r: r["reward"]) if ok else None
    seconds = [r["device_seconds"] for r in records]
    outputs = lambda part: dict(Counter(r["genotype"]["output"] for r in part))  # noqa: E731
    return {
        "children": len(records),
        "failed": int(np.isnan(rewards).sum()),
        "best_reward": float(np.nanmax(rewards)) if ok else None,
        "first_quarter_mean": float(np.nanmean(rewards[:q])) if ok else None,
        "last_quarter_mean": float(np.nanmean(rewards[-q:])) if ok else None,
        "best_quality": best and best["quality"],
        "best_copy_quality": best and best["copy_quality"],
        "best_alpha": best and best["genotype"]["alpha"],
        "best_gflops": best and best["gflops"],
        "child_seconds_median": float(np.median(seconds)),
        "child_seconds_max": float(np.max(seconds)),
        "outputs_first_quarter": outputs(records[:q]),
        "outputs_last_quarter": outputs(records[-q:]),
    }


def main(argv: list[str] | None = None) -> int:
    from nas.checkpoint import read_json
    from nas.config import SearchConfig
    from nas.records import read_records

    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--base", default="runs/demo", help="run folder whose teacher/cache to use")
    p.add_argument(
        "--children",
        type=int,
        default=150,
        help="children per search; with --analyze-only, the first this many are summarised",
    )
    p.add_argument("--controllers", default=",".join(CONTROLLERS))
    p.add_argument("--child-steps", type=int, default=SearchConfig.child_steps)
    p.add_argument("--out", default="bench/out/compare")
    p.add_argument("--analyze-only", action="store_true")
    args = p.parse_args(argv)
    out = Path(args.out)
    controllers = args.controllers.split(",")
    if not args.analyze_only:
        from nas.budget import parse_budget
        from nas.run import run_search

        base = Path(args.base)
        if not (base / "cache" / "val" / "meta.json").is_file():
            print(f"{base} holds no teacher cache: run `make demo` (or a search) first")
            return 1
        search = read_json(base / "search.json")
        for name in controllers:
            run = out / name
            if not (run / "teacher").is_dir():
                run.mkdir(parents=True, exist_ok=True)
                for part in ("teacher", "cache"):
                    shutil.copytree(base / part, run / part)
            done = len(read_records(run / "trials.jsonl"))
            if done >= args.children:
                continue
            config = SearchConfig.from_dict(
                {
                    **search,
                    "controller": name,
                    "budget": "1000cpu-hours",
                    "max_children": args.children,
                    "child_steps": args.child_steps,
                    "dashboard": False,
                }
            )
            run_search(
                config, run, parse_budget(config.budget), resume=(run / "searcher.json").is_file()
            )
    rows = {}
    for name in controllers:
        records = read_records(out / name / "trials.jsonl")
        if records:
            rows[name] = summarise(records[: args.children])
            summary = out / name / "summary.json"
            if summary.is_file() and len(records) <= args.children:  # the last session's
                rows[name]["busy_share"] = read_json(summary)["busy_share"]
    print(
        f"{'controller':10} {'children':>8} {'failed':>6} {'best':>7} {'1st 1/4':>8} "
        f"{'last 1/4':>8} {'best q':>7} {'copy q':>7} {'alpha':>5} {'busy':>5} "
        f"{'child s (median/max)':>20}"
    )
    for name, r in rows.items():
        fmt = lambda v: f"{v:.4f}" if isinstance(v, float) else str(v)  # noqa: E731
        print(
            f"{name:10} {r['children']:8d} {r['failed']:6d} {fmt(r['best_reward']):>7} "
            f"{fmt(r['first_quarter_mean']):>8} {fmt(r['last_quarter_mean']):>8} "
            f"{fmt(r['best_quality']):>7} {fmt(r['best_copy_quality']):>7} "
            f"{r['best_alpha']!s:>5} {fmt(r.get('busy_share')):>5} "
            f"{r['child_seconds_median']:>10.1f}/{r['child_seconds_max']:.1f}"
        )
    for name, r in rows.items():
        print(
            f"{name}: cell outputs chosen, first quarter {r['outputs_first_quarter']}, last "
            f"quarter {r['outputs_last_quarter']}"
        )
    (out / "summary.json").parent.mkdir(parents=True, exist_ok=True)
    (out / "summary.json").write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
