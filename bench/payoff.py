"""The payoff table: do searched cells beat copying the key frame, hand design and chance, on
DAVIS sequences nothing was trained or tuned on?

    python -m bench.payoff [--children 100] [--seeds 3] [--out bench/out/payoff] [--json FILE]

1. The reference cell docs/cell.json is trained end to end with ``--seeds`` seeds on the
   ``davis-unseen`` teacher (the 10 training sequences; bench.real's code and settings) and
   scored on the 4 unseen sequences, semi-supervised, beside the copy baseline at its alpha
   and the static network: those rows are known before the search.
2. A PPO search on DAVIS-2016 (``nas.run.run_search``, pretrained EfficientNet-Lite0 teacher):
   children train on the training sequences less ``--held-in`` (default hockey, surf,
   scooter-gray, tennis) and are scored on those; the 4 unseen sequences
   (bench.protocols.DAVIS_UNSEEN) are never read; the reward's cost target is the table's
   own 50% (``--target-ratio``). Its top ``--top`` cells by search reward (decided before
   anything is scored on the unseen sequences) and ``--random`` cells drawn uniformly from
   the space (seeded) are trained and scored as the reference.
   The *trained copy* (``copy-trained``: the copy cell trained end to end as every cell is,
   so its non-key head learns too, while copy reads the key head) is trained the same way at
   every alpha of the table: the control that says what a cell adds beyond head training.
3. The table: non-key J&F (mean, std and standard error over seeds), its difference to copy
   and to the trained copy at the same alpha, GFLOPs per frame / static; and the targets of
   the best searched cell (top 1 by search reward): above copy by more than two standard
   errors (and, beside it, above the trained copy by more than two combined standard errors),
   above the mean of the random cells, >= 97% of static quality at <= 50% of its GFLOPs;
   beside them, its gain over copy against the random cells' mean gain over copy, each at its
   own alpha.
4. Does the search's score predict the table? Each row's cell trained as a search child (80
   steps, held-in sequences) beside its table row, with the rank correlations
   (bench.search_outcome).

Scoring is semi-supervised (the first frame's mask fine-tunes the heads online);
``--unsupervised`` scores the same trained networks without it (run it after the first table:
every training is reused, only the scoring runs).

Every step resumes (search, teacher, each video training), so the bench can be stopped and
rerun; ``--retrain-out`` shares the davis-unseen teacher and runs with ``python -m bench.real``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import fields
from pathlib import Path

import numpy as np
import torch

from bench import protocols, real, search_outcome
from bench.cli import (
    REPO,  # noqa: E402
    bench_parser,
)
from bench.stats import figure
from nas.checkpoint import json_text, read_json
from nas.config import FAST_ENCODERS, RetrainConfig, SearchConfig, resolution_arg
from nas.export import top_records
from nas.records import read_records
from nas.run_lock import RunBusyError
from nas.search import SearchError
from search_spaces.genotype import Genotype, GenotypeError, copy_genotype
from search_spaces.space import SearchSpace

TARGETS = {"copy_standard_errors": 2.0, "quality_vs_static": 0.97, "gflops_ratio": 0.50}
REFERENCE = REPO / "docs" / "cell.json"
"""The hand-designed reference cell every payoff table holds."""
TRAINED_COPY = "copy-trained"
"""The table's name for the copy cell trained end to end (bench.real's docs/copy-a4.json run)."""


def search_config(args: argparse.Namespace) -> SearchConfig:
    """The search of step 2: training sequences only, children scored on the held-in ones."""
    split = protocols.validation_protocol(protocols.PROTOCOLS["davis-unseen"], args.held_in)
    return SearchConfig(
        budget="1000cpu-hours",  # --children ends it
        dataset="davis",
        data_root=str(args.data_root / "davis2016"),
        train_split=split.train,
        val_split=split.evaluate,
        controller="ppo",
        workers=args.workers,
        dashboard=False,
        seed=args.seed,
        resolution=args.davis_size,
        max_children=args.children,
        target_ratio=args.target_ratio,
        outputs=args.outputs,
    ).explicit()


def checked_search_config(args: argparse.Namespace, out: Path) -> SearchConfig:
    """The search's settings, checked before anything trains: valid, and those of the search
    ``out`` already holds (a rerun continues it unchanged)."""
    from nas.data import sequence_specs
    from nas.search import MAY_CHANGE_ON_RESUME, validate

    config = search_config(args)
    validate(config)
    for split in (config.train_split, config.val_split):  # a misspelt --held-in, now
        sequence_specs(config.dataset, config.data_root, split)
    if (out / "search.json").is_file():
        saved = SearchConfig.from_saved(read_json(out / "search.json"))
        differ = [
            f"{f.name} (search: {getattr(saved, f.name)!r}, given: {getattr(config, f.name)!r})"
            for f in fields(SearchConfig)
            if f.name not in MAY_CHANGE_ON_RESUME
            and getattr(saved, f.name) != getattr(config, f.name)
        ]
        if differ:
            raise ValueError(
                f"{out} holds a search with other settings: {'; '.join(differ)}. Rerun with "
                "the settings it started with, or give another --out for a new search"
            )
    return config


def run_search(args: argparse.Namespace, config: SearchConfig, out: Path, log) -> list[dict]:
    """Run (or resume) the search until it holds ``--children`` children; its records."""
    from nas.budget import parse_budget
    from nas.run import run_search as search

    done = read_records(out / "trials.jsonl")
    if len(done) < args.children:
        log(f"[payoff] search: {len(done)} of {args.children} children so far")
        search(config, out, parse_budget(config.budget), resume=(out / "searcher.json").is_file())
    return read_records(out / "trials.jsonl")


def random_cells(k: int, seed: int, space: SearchSpace | None = None) -> list[Genotype]:
    """``k`` cells drawn uniformly from the search's space (the full one by default; seeded:
    the same every run)."""
    space = space or SearchSpace()
    rng = np.random.default_rng(seed)
    return [space.decode(space.sample_tokens(rng)) for _ in range(k)]


def summarise(name: str, combined: dict) -> dict:
    """One table row from bench.real's seed-combined report."""
    video = [s["video_nonkey"] for s in combined["seeds"]]
    known = [v for v in video if v is not None]
    mean = float(np.mean(known)) if known else None
    std = combined["video_nonkey_std"]
    nets = combined["networks"]
    return {
        "name": name,
        "quality": mean,
        "std": std,
        "se": std / np.sqrt(len(known)) if std is not None else None,
        "per_seed": video,
        "copy": nets["copy"]["quality_nonkey"],
        "static": nets["static"]["quality_nonkey"],
        "gflops_ratio": nets["video"]["gflops_ratio"],
        "copy_gflops_ratio": nets["copy"]["gflops_ratio"],
    }


def score(
    prep: real.Prepared, name: str, cell: Genotype, real_args, log, unsupervised: bool = False
) -> dict:
    """``cell`` trained with every seed on the davis-unseen teacher: its table row."""
    log(f"[payoff] {name}: {cell.to_json()}")
    combined = real.score_seeds(cell, prep, real_args, log, unsupervised)
    row = summarise(name, combined)
    return {**row, "alpha": cell.alpha, "beta": cell.beta, "genotype": cell.to_dict()}


def trained_copy_rows(
    rows: list[dict], controls: list[dict], prep: real.Prepared, real_args, log, unsup: bool
) -> list[dict]:
    """``controls`` and the trained copy of every alpha of ``rows`` it lacks: the copy cell
    trained with the cells' seeds and settings (a trained run is only scored again)."""
    have = {r["alpha"] for r in controls}
    for alpha in sorted({r["alpha"] for r in rows} - have):
        controls = [
            *controls,
            score(prep, TRAINED_COPY, copy_genotype(alpha), real_args, log, unsup),
        ]
    return controls


def verdict(check: dict) -> str:
    """The targets of the best searched cell, as one printed line."""
    trained = (
        f", {check['minus_trained_copy']:+.4f} over the trained copy (combined SE "
        f"{figure(check['trained_copy_standard_error'])}; > 2 SE: {check['above_trained_copy']})"
        if "minus_trained_copy" in check
        else ""
    )
    return (
        f"best searched cell: {check['minus_copy']:+.4f} over copy (SE "
        f"{check['standard_error']:.4f}; > 2 SE: {check['above_copy']}){trained}, above the random "
        f"cells' mean {figure(check['random_mean'])}: {check['above_random']} (gain over copy at "
        f"its alpha {check['minus_copy']:+.4f} vs the random cells' mean "
        f"{figure(check['random_minus_copy_mean'], '+.4f')}: {check['above_random_minus_copy']}), "
        f"{check['vs_static'] or float('nan'):.1%} of static (>= 97%: {check['quality_met']}) "
        f"at {check['gflops_ratio']:.1%} of its GFLOPs (<= 50%: {check['gflops_met']})"
    )


def trained_copies(rows: list[dict]) -> dict[int, dict]:
    """The trained copy row of each alpha the table holds one for."""
    return {r["alpha"]: r for r in rows if r["name"] == TRAINED_COPY}


def cells(rows: list[dict]) -> list[dict]:
    """The table's cells: every row but the trained copies (controls, not candidates)."""
    return [r for r in rows if r["name"] != TRAINED_COPY]


def minus_trained_copy(row: dict, controls: dict[int, dict]) -> tuple[float | None, float | None]:
    """``row``'s quality less the trained copy's at its alpha, and the standard error of that
    difference, the two means taken as independent (they share seeds, teacher and data: a
    paired per-seed difference could be tighter); the SE is None where either row's is unknown
    (a seed that scored nothing), and both are None where either quality is missing."""
    control = controls.get(row["alpha"])
    if control is None or control["quality"] is None or row["quality"] is None:
        return None, None
    gain = row["quality"] - control["quality"]
    if row["se"] is None or control["se"] is None:
        return gain, None
    return gain, float(np.hypot(row["se"], control["se"]))


def targets(rows: list[dict]) -> dict | None:
    """The best searched cell (top 1 by search reward) against copy, random and static.

    Beside the issue's comparison with the random cells' mean quality (which mixes alphas: a
    random alpha-2 cell outscores any alpha-8 cell by reusing features less), each cell's gain
    over copy at its own alpha, which compares cells whatever alpha they run at; and, where the
    table holds it, the gain over the trained copy at its alpha (what the cell adds beyond
    training a non-key head), against two standard errors of the difference."""
    best = next((r for r in rows if r["name"] == "search-1"), None)
    random_rows = [r for r in rows if r["name"].startswith("random") and r["quality"] is not None]
    if best is None or best["quality"] is None:
        return None
    margin = best["quality"] - best["copy"]
    se = best["se"] or 0.0
    random_mean = float(np.mean([r["quality"] for r in random_rows])) if random_rows else None
    random_gain = (
        float(np.mean([r["quality"] - r["copy"] for r in random_rows])) if random_rows else None
    )
    check = {
        "minus_copy": margin,
        "standard_error": se,
        "above_copy": bool(se > 0 and margin > TARGETS["copy_standard_errors"] * se),
        "random_mean": random_mean,
        "above_random": bool(random_mean is not None and best["quality"] > random_mean),
        "random_minus_copy_mean": random_gain,
        "above_random_minus_copy": bool(random_gain is not None and margin > random_gain),
        "vs_static": best["quality"] / best["static"] if best["static"] else None,
        "quality_met": bool(
            best["static"] and best["quality"] >= TARGETS["quality_vs_static"] * best["static"]
        ),
        "gflops_ratio": best["gflops_ratio"],
        "gflops_met": bool(best["gflops_ratio"] <= TARGETS["gflops_ratio"]),
    }
    gain, gain_se = minus_trained_copy(best, trained_copies(rows))
    if gain is not None:
        check["minus_trained_copy"] = gain
        check["trained_copy_standard_error"] = gain_se
        check["above_trained_copy"] = bool(
            gain_se is not None and gain_se > 0 and gain > TARGETS["copy_standard_errors"] * gain_se
        )
    return check


def table(rows: list[dict]) -> str:
    """The payoff table. Static is scored on each alpha's own non-key frames (they differ by
    alpha), and every "vs static" divides by the static figure of its row's alpha. The trained
    copies follow copy; "- trained" is each cell's gain over the trained copy at its alpha."""
    controls = trained_copies(rows)
    head = (
        f"{'cell':<12} {'alpha':>5} {'beta':>4} {'J&F non-key':>11} {'std':>7} {'SE':>7} "
        f"{'- copy':>8} {'- trained':>9} {'vs static':>9} {'GFLOPs/static':>13}  per seed"
    )
    lines = [head, "-" * len(head)]
    by_alpha: dict[int, dict] = {}
    for row in rows:
        by_alpha.setdefault(row["alpha"], row)
    blank = f"{'':>7} {'':>7} {'':>8} {'':>9}"
    for alpha, row in sorted(by_alpha.items()):
        lines.append(
            f"{'static':<12} {alpha:>5} {'':>4} {figure(row['static']):>11} {blank} "
            f"{'100.0%':>9} {'100.0%':>13}"
        )
    for alpha, row in sorted(by_alpha.items()):
        lines.append(
            f"{'copy':<12} {alpha:>5} {'':>4} {figure(row['copy']):>11} {blank} "
            f"{share(row['copy'], row['static']):>9} {row['copy_gflops_ratio']:>13.1%}"
        )
    for row in [*(controls[a] for a in sorted(controls)), *cells(rows)]:
        minus = None if row["quality"] is None else row["quality"] - row["copy"]
        trained = None if row["name"] == TRAINED_COPY else minus_trained_copy(row, controls)[0]
        seeds = " ".join(figure(v) for v in row["per_seed"])
        lines.append(
            f"{row['name']:<12} {row['alpha']:>5} {row['beta']:>4} {figure(row['quality']):>11} "
            f"{figure(row['std']):>7} {figure(row['se']):>7} {figure(minus, '+.4f'):>8} "
            f"{figure(trained, '+.4f'):>9} {share(row['quality'], row['static']):>9} "
            f"{row['gflops_ratio']:>13.1%}  {seeds}"
        )
    return "\n".join(lines)


def share(value: float | None, static: float | None) -> str:
    return f"{value / static:.1%}" if value is not None and static else "n/a"


def reprint(path: Path) -> int:
    """``--table JSON``: a saved table and its verdict, printed again as this version of the
    bench prints them (no training, no data)."""
    try:
        saved = json.loads(path.read_text())
        rows = saved["rows"]
    except (OSError, json.JSONDecodeError, KeyError, TypeError) as exc:
        print(f"error: {path} is no table this bench wrote ({exc})", file=sys.stderr)
        return 2
    print(f"{path}, as saved:\n{table(rows)}")
    check = targets(rows)
    if check is not None:
        print(verdict(check))
    return 0


def write_json(path: Path | None, rows: list[dict], check: dict | None, outcome) -> None:
    """The table, its verdict and (once measured) the search-vs-payoff comparison."""
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(
            json_text({"rows": rows, "targets": check, "search_vs_payoff": outcome}) + "\n"
        )


def held_in_arg(text: str) -> tuple[str, ...]:
    try:
        return protocols.held_in_names(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def parser() -> argparse.ArgumentParser:
    p = bench_parser("python -m bench.payoff", __doc__, "davis2016/")
    p.add_argument("--children", type=int, default=100, help="children of the PPO search")
    p.add_argument("--workers", type=int, default=2, help="children at once")
    p.add_argument("--top", type=int, default=3, help="searched cells retrained")
    p.add_argument("--random", type=int, default=3, help="random cells retrained")
    p.add_argument("--seeds", type=int, default=3, help="video trainings per cell")
    p.add_argument(
        "--random-seeds",
        type=int,
        help="video trainings per random cell (default: --seeds); their mean is taken over "
        "cells, whose spread is far wider than a cell's over seeds",
    )
    p.add_argument("--seed", type=int, default=0, help="search, teacher and first video seed")
    p.add_argument(
        "--target-ratio",
        type=float,
        default=TARGETS["gflops_ratio"],
        help="the search reward's cost target, a share of the static GFLOPs (the table's own "
        "<= 50%% target by default; nas.search's is 0.4); a search folder refuses a value "
        "other than its own: give a new --out for a new search",
    )
    p.add_argument(
        "--outputs",
        default="",
        help="output kinds the search's cells may have (nas.search --outputs; default all), "
        "e.g. residual",
    )
    p.add_argument(
        "--fast-encoder",
        choices=FAST_ENCODERS,
        default=RetrainConfig.fast_encoder,
        help="the video trainings' fast encoder (nas.retrain --fast-encoder); each mode has "
        "its own trainings",
    )
    p.add_argument(
        "--fast-steps",
        type=int,
        default=real.parser().get_default("fast_steps"),
        help="distillation steps of the davis-unseen teacher's fast encoders (bench.real "
        "--fast-steps); another value distils them again, the static network stays",
    )
    p.add_argument(
        "--held-in",
        type=held_in_arg,
        default=protocols.SEARCH_HELD_IN,
        help="training sequences the search's children are scored on (comma-separated; "
        f"default {protocols.named(protocols.SEARCH_HELD_IN)}); children train on the other "
        "training sequences, never on the unseen four; a search folder refuses another list",
    )
    p.add_argument("--davis-size", type=resolution_arg, default=(240, 427))
    p.add_argument("--reference", type=Path, default=REFERENCE)
    p.add_argument("--out", type=Path, default=REPO / "bench" / "out" / "payoff")
    p.add_argument(
        "--retrain-out",
        type=Path,
        default=REPO / "bench" / "out" / "real" / "davis-unseen",
        help="the davis-unseen teacher and video trainings (shared with bench.real)",
    )
    p.add_argument("--threads", type=int, default=2)
    p.add_argument(
        "--unsupervised",
        action="store_true",
        help="score the same trained networks unsupervised (no first-frame mask: foreground "
        "vs background); run it after the semi-supervised table, the trainings are reused",
    )
    p.add_argument(
        "--no-outcome",
        dest="outcome",
        action="store_false",
        help="skip the search-score-vs-payoff comparison (each row's cell trained once more as "
        "a search child on the held-in sequences, resumable in OUT/held_in.jsonl)",
    )
    p.add_argument("--json", type=Path, help="also write the table here")
    p.add_argument(
        "--table",
        type=Path,
        metavar="JSON",
        help="print the table and verdict a --json file holds, and nothing else (no training)",
    )
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    log = lambda text: print(text, flush=True)
    if args.table:
        return reprint(args.table)
    if not (args.data_root / "davis2016").is_dir():
        print(f"skipped: no DAVIS-2016 under {args.data_root} (pass --data-root)")
        return 0
    start = time.time()

    def seeded(seeds: int) -> argparse.Namespace:
        fast = ("--fast-encoder", args.fast_encoder, "--fast-steps", str(args.fast_steps))
        return real.video_settings(args.seed, seeds, args.threads, *fast)

    real_args = seeded(args.seeds)
    random_args = seeded(args.random_seeds or args.seeds)
    try:
        reference = Genotype.load(args.reference)
        config = checked_search_config(args, args.out / "search")
        torch.set_num_threads(args.threads)
        prep = real.prepare(
            protocols.PROTOCOLS["davis-unseen"],
            args.data_root / "davis2016",
            args.davis_size,
            real_args,
            args.retrain_out,
            log,
        )
        unsup = args.unsupervised
        ref = score(prep, "reference", reference, real_args, log, unsup)  # static, copy early
        records = run_search(args, config, args.out / "search", log)
        torch.set_num_threads(args.threads)  # Ray's session may have changed it
        best = top_records(args.out / "search", args.top)
        searched = [
            score(prep, f"search-{i}", Genotype.from_dict(r["genotype"]), real_args, log, unsup)
            for i, r in enumerate(best[:1], 1)
        ]
        # the trained copies at search-1's and the reference's alphas next (the targets need
        # search-1's), the others last
        controls = trained_copy_rows([*searched, ref], [], prep, real_args, log, unsup)
        # the random cells before search-2 and on: the targets need them, the rest is extra
        randoms = [
            score(prep, f"random-{i}", cell, random_args, log, unsup)
            for i, cell in enumerate(random_cells(args.random, args.seed, config.search_space()), 1)
        ]
        searched += [
            score(prep, f"search-{i}", Genotype.from_dict(r["genotype"]), real_args, log, unsup)
            for i, r in enumerate(best[1:], 2)
        ]
        rows = [*searched, ref, *randoms]
        rows += trained_copy_rows(rows, controls, prep, real_args, log, unsup)
    except (
        GenotypeError,
        ValueError,
        FileNotFoundError,
        ModuleNotFoundError,
        RunBusyError,
        SearchError,
    ) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    check = targets(rows)
    ok = [r for r in records if r.get("status") != "failed"]
    scoring = "unsupervised" if args.unsupervised else "semi-supervised"
    print(
        f"\nDAVIS-2016 unseen sequences ({', '.join(protocols.DAVIS_UNSEEN)}), {scoring} J&F "
        f"on non-key frames; search: {len(records)} children ({len(ok)} finished), trained on "
        f"the other training sequences, children scored on {', '.join(args.held_in)}; "
        f"{args.seeds} video "
        f"seeds a cell ({args.random_seeds or args.seeds} a random cell)"
        f"{'; search outputs: ' + config.outputs if config.outputs else ''}"
        f"; fast encoder: {args.fast_encoder}, distilled {args.fast_steps} steps; "
        f"{time.time() - start:.0f} s\n{table(rows)}"
    )
    if check is not None:
        print(verdict(check))
    write_json(args.json, rows, check, None)  # kept whatever the comparison below does
    if not args.outcome:
        return 0
    search_dir = args.out / "search"
    try:
        outcome = search_outcome.measure(
            cells(rows), search_dir, records, args.seed, args.workers, args.out / "held_in.jsonl"
        )
    except (FloatingPointError, ValueError, FileNotFoundError, OSError) as exc:
        print(
            f"error: the search-score-vs-payoff comparison failed ({exc}); the table above is "
            f"kept{' in ' + str(args.json) if args.json else ''}, and a rerun redoes only the "
            f"children missing from {args.out / 'held_in.jsonl'}",
            file=sys.stderr,
        )
        return 2
    print(search_outcome.report(outcome, ", ".join(args.held_in)))
    write_json(args.json, rows, check, outcome)
    return 0


if __name__ == "__main__":
    sys.exit(main())
