"""The search's own record: ``trials.jsonl`` (one line per finished child, appended and
flushed at once), TensorBoard scalars and ``progress.png``."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

from nas.checkpoint import json_text


def read_records(path: Path) -> list[dict[str, Any]]:
    """Every complete line of trials.jsonl (a line cut by a kill is skipped)."""
    if not path.is_file():
        return []
    records = []
    for line in path.read_text().splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return records


class RunLog:
    """Appends records and keeps the monitoring files of one run folder up to date."""

    def __init__(self, out: Path):
        self.out = out
        self.path = out / "trials.jsonl"
        self.records = read_records(self.path)
        self.recorded = {r["proposal_id"] for r in self.records}
        self._writer = None

    def append(self, record: dict[str, Any]) -> bool:
        """Append one finished child; False (nothing written) if it is recorded already."""
        if record["proposal_id"] in self.recorded:
            return False
        line = json_text(record, indent=None)
        record = json.loads(line)
        with open(self.path, "a") as fh:
            fh.write(line + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        self.records.append(record)
        self.recorded.add(record["proposal_id"])
        self._tensorboard(record)
        self.plot()
        return True

    def spent_seconds(self) -> float:
        return sum(r.get("device_seconds") or 0.0 for r in self.records)

    def best(self) -> dict[str, Any] | None:
        ok = [
            r for r in self.records if r.get("status") != "failed" and r.get("reward") is not None
        ]
        return max(ok, key=lambda r: r["reward"]) if ok else None

    def _tensorboard(self, record: dict[str, Any]) -> None:
        try:
            if self._writer is None:
                from tensorboardX import SummaryWriter

                self._writer = SummaryWriter(str(self.out / "tb"))
            step = len(self.records)
            for key in ("reward", "quality", "gflops", "device_seconds"):
                if isinstance(record.get(key), (int, float)):
                    self._writer.add_scalar(f"child/{key}", record[key], step)
            best = self.best()
            if best:
                self._writer.add_scalar("search/best_reward", best["reward"], step)
            self._writer.flush()
        except ImportError:  # monitoring is optional; the record above is what counts
            pass

    def plot(self) -> None:
        """progress.png: reward per child and the running best."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

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

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
