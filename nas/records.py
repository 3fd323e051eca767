"""The search's own record: ``trials.jsonl`` (one line per finished child, appended and
flushed at once), TensorBoard scalars, ``progress.png``, and the front of quality against
cost (``pareto.json``, ``front.png``).

Each record is one line written by one ``write`` of the whole line and its newline, then
flushed to disk. A line a crash cut short (a *torn* record) is detected when the file is read:
readers skip it with a warning naming the line; a run that appends (``RunLog``) first moves
such lines aside to ``trials.torn.jsonl`` and rewrites the file whole, so the next record
never lands on a fragment, and the searcher runs the torn record's child again."""

from __future__ import annotations

import contextlib
import json
import math
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from nas.checkpoint import atomic_write_text, json_text
from nas.front_plot import draw_front
from nas.pareto import write_front

TORN_NAME = "trials.torn.jsonl"
"""Where RunLog moves torn or unreadable lines of trials.jsonl (appended, never overwritten)."""

Warn = Callable[[str], None]


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _salvage(line: str) -> dict[str, Any] | None:
    """A whole record written after a fragment on the same line (what versions before the
    repair wrote after a torn record), else None."""
    start = line.find('{"', 1)
    while start != -1:
        try:
            record = json.loads(line[start:])
        except json.JSONDecodeError:
            record = None
        if isinstance(record, dict) and "proposal_id" in record:
            return record
        start = line.find('{"', start + 1)
    return None


def scan_records(path: Path) -> tuple[list[dict[str, Any]], list[tuple[int, str]]]:
    """(readable records, [(line number, text)] of the torn or unreadable lines).

    A line holding a fragment followed by a whole record gives that record and counts as
    unreadable too (its fragment is lost)."""
    if not path.is_file():
        return [], []
    records: list[dict[str, Any]] = []
    bad: list[tuple[int, str]] = []
    for number, line in enumerate(path.read_text(errors="replace").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            record = None
        if isinstance(record, dict) and "proposal_id" in record:
            records.append(record)
            continue
        bad.append((number, line))
        salvaged = _salvage(line)
        if salvaged is not None:
            records.append(salvaged)
    return records, bad


def describe_bad(path: Path, bad: list[tuple[int, str]]) -> str:
    """One line naming the torn or unreadable lines of ``path``."""
    numbers = ", ".join(str(n) for n, _ in bad[:10]) + (", ..." if len(bad) > 10 else "")
    kind = "torn or unreadable record" + ("s" if len(bad) > 1 else "")
    return f"{path} has {len(bad)} {kind} (line {numbers}: a write cut short by a crash?)"


def read_records(path: Path, warn: Warn | None = None) -> list[dict[str, Any]]:
    """Every readable record of trials.jsonl; a torn or unreadable line is skipped, and
    ``warn`` (if given) hears of it with the line number."""
    records, bad = scan_records(path)
    if bad and warn is not None:
        warn(f"warning: {describe_bad(path, bad)}: skipped")
    return records


def repair_records(path: Path, warn: Warn = _stderr) -> list[dict[str, Any]]:
    """Read ``path`` and, if a line is torn or unreadable (or the last line lacks its
    newline), move the bad lines to ``trials.torn.jsonl`` beside it and rewrite ``path``
    with the readable records only, so that the next append starts on a line of its own."""
    records, bad = scan_records(path)
    ends_whole = not path.is_file() or path.stat().st_size == 0 or _ends_with_newline(path)
    if not bad and ends_whole:
        return records
    if bad:
        aside = path.with_name(TORN_NAME)
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S")
        with open(aside, "a") as fh:
            for number, line in bad:
                fh.write(json.dumps({"moved_at": stamp, "line": number, "text": line}) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        warn(
            f"warning: {describe_bad(path, bad)}: moved to {aside}; a child whose record was "
            "lost runs again"
        )
    atomic_write_text(path, "".join(json_text(r, indent=None) + "\n" for r in records))
    return records


def _ends_with_newline(path: Path) -> bool:
    with open(path, "rb") as fh:
        fh.seek(-1, os.SEEK_END)
        return fh.read(1) == b"\n"


def _append_line(path: Path, line: str) -> None:
    """One ``write`` of the whole line (O_APPEND), then fsync: a kill leaves the line whole
    or absent, and a crash of the machine at worst a torn tail that the next read repairs.
    A write that fails (a full disk) is undone: the file is cut back to where it was."""
    data = (line + "\n").encode()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        start = os.fstat(fd).st_size
        try:
            written = os.write(fd, data)
            while written < len(data):  # a short write
                written += os.write(fd, data[written:])
            os.fsync(fd)
        except OSError:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, start)
            raise
    finally:
        os.close(fd)


def _import_pyplot():
    """matplotlib's pyplot on the file-only backend. Imported when a run log opens: a
    Ctrl-C that lands inside matplotlib's first import turns into an ImportError
    ("initialization failed"); pyplot's backend, imported at the first figure, can still
    meet one, and nas.ctrl_c gives that one back as the Ctrl-C it was."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _import_summary_writer():
    """tensorboardX's SummaryWriter, or None where it is not installed."""
    try:
        from tensorboardX import SummaryWriter
    except ImportError:
        return None
    return SummaryWriter


class RunLog:
    """Appends records and keeps the monitoring files of one run folder up to date."""

    def __init__(self, out: Path, warn: Warn = _stderr):
        self.out = out
        self.path = out / "trials.jsonl"
        self.records = repair_records(self.path, warn)
        self.recorded = {r["proposal_id"] for r in self.records}
        self._writer = None
        # imported now, not when a Ctrl-C can land in the import (see _import_pyplot)
        self._pyplot = _import_pyplot()
        self._summary_writer = _import_summary_writer()

    def append(self, record: dict[str, Any]) -> bool:
        """Append one finished child; False (nothing written) if it is recorded already."""
        if record["proposal_id"] in self.recorded:
            return False
        line = json_text(record, indent=None)
        record = json.loads(line)
        _append_line(self.path, line)
        self.records.append(record)
        self.recorded.add(record["proposal_id"])
        self._tensorboard(record)
        self.plot()
        self.update_front()
        return True

    def spent_seconds(self) -> float:
        return sum(r.get("device_seconds") or 0.0 for r in self.records)

    def best(self) -> dict[str, Any] | None:
        ok = [
            r for r in self.records if r.get("status") != "failed" and r.get("reward") is not None
        ]
        return max(ok, key=lambda r: r["reward"]) if ok else None

    def _tensorboard(self, record: dict[str, Any]) -> None:
        if self._summary_writer is None:  # monitoring is optional; the record is what counts
            return
        if self._writer is None:
            self._writer = self._summary_writer(str(self.out / "tb"))
        step = len(self.records)
        for key in ("reward", "quality", "gflops", "device_seconds"):
            if isinstance(record.get(key), (int, float)):
                self._writer.add_scalar(f"child/{key}", record[key], step)
        best = self.best()
        if best:
            self._writer.add_scalar("search/best_reward", best["reward"], step)
        self._writer.flush()

    def plot(self) -> None:
        """progress.png: reward per child and the running best."""
        plt = self._pyplot
        rewards = [r.get("reward") if r.get("status") != "failed" else None for r in self.records]
        xs = [i + 1 for i, r in enumerate(rewards) if r is not None]
        ys = [r for r in rewards if r is not None]
        best, running = [], -math.inf
        for y in ys:
            running = max(running, y)
            best.append(running)
        fig, ax = plt.subplots(figsize=(7, 3.5), dpi=100)
        ax.scatter(xs, ys, s=10, alpha=0.6, label="child reward")
        ax.plot(xs, best, color="C3", label="best so far")
        failed = [i + 1 for i, r in enumerate(rewards) if r is None]
        if failed:
            ax.scatter(
                failed, [min(ys, default=0)] * len(failed), marker="x", color="k", label="failed"
            )
        ax.set_xlabel("child")
        ax.set_ylabel("reward")
        ax.legend(loc="lower right")
        ax.grid(alpha=0.3)
        fig.tight_layout()
        tmp = self.out / ".progress.png"
        fig.savefig(tmp)
        plt.close(fig)
        os.replace(tmp, self.out / "progress.png")

    def update_front(self) -> None:
        """pareto.json and front.png: the front of the children recorded so far."""
        write_front(self.out, self.records)
        draw_front(self._pyplot, self.records, self.out / "front.png")

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
