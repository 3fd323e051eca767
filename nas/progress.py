"""The live terminal line of a search: done, running, failed, budget, best reward."""

from __future__ import annotations

import sys
import time

from ray.tune import Callback

from nas.ctrl_c import raise_if_heard
from nas.records import RunLog


class ProgressLine(Callback):
    """Rewrites one line on a terminal; prints a line per finished child otherwise."""

    def __init__(self, run_log: RunLog, searcher, budget_seconds: float):
        self.log, self.searcher, self.budget = run_log, searcher, budget_seconds
        self.tty = sys.stdout.isatty()
        self.t0 = time.time()

    def line(self) -> str:
        records = self.log.records
        failed = sum(r["status"] == "failed" for r in records)
        spent = self.log.spent_seconds()
        best = self.log.best()
        best_text = f"{best['reward']:.4f}" if best else "-"
        return (
            f"[search] {len(records)} done ({failed} failed), "
            f"{len(self.searcher.proposals)} running | budget {spent:.0f}/{self.budget:.0f} "
            f"device-s, {max(self.budget - spent, 0):.0f} left | best reward {best_text} | "
            f"{time.time() - self.t0:.0f} s"
        )

    def on_step_begin(self, iteration, trials, **info):
        raise_if_heard()  # Ray runs this hook unguarded: a Ctrl-C it swallowed ends the search

    def on_trial_result(self, iteration, trials, trial, result, **info):
        if self.tty:
            sys.stdout.write("\r" + self.line().ljust(110))
            sys.stdout.flush()

    def on_trial_complete(self, iteration, trials, trial, **info):
        if self.tty:
            sys.stdout.write("\r" + self.line().ljust(110))
        else:
            sys.stdout.write(self.line() + "\n")
        sys.stdout.flush()

    on_trial_error = on_trial_complete
