"""Search budgets: "2gpu-days", "6gpu-hours", "90cpu-minutes" -> device-seconds.

The budget counts device-seconds spent inside children (one GPU, or one CPU worker, for one
second is one device-second), not wall time: with W workers the wall time is about budget / W.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

UNITS = {"seconds": 1, "minutes": 60, "hours": 3600, "days": 86400}
_ALIASES = {
    "s": "seconds",
    "sec": "seconds",
    "second": "seconds",
    "seconds": "seconds",
    "m": "minutes",
    "min": "minutes",
    "minute": "minutes",
    "minutes": "minutes",
    "h": "hours",
    "hour": "hours",
    "hours": "hours",
    "d": "days",
    "day": "days",
    "days": "days",
}
_PATTERN = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*-?\s*(gpu|cpu)\s*-?\s*([a-z]+)\s*$", re.I)


class BudgetError(ValueError):
    """A budget string that cannot be read."""


@dataclass(frozen=True)
class Budget:
    """An amount of device time for children."""

    device: str  # "gpu" | "cpu"
    seconds: float
    text: str

    def describe(self, workers: int) -> str:
        wall = self.seconds / max(workers, 1)
        return (
            f"{self.text} = {self.seconds:,.0f} {self.device}-seconds inside children; "
            f"with {workers} {self.device.upper()} worker(s) about {_human(wall)} of wall "
            "time (plus teacher and cache)"
        )


def parse_budget(text: str) -> Budget:
    """Parse '2gpu-days', '6gpu-hours', '90cpu-minutes', '300cpu-seconds' (also '1.5gpu-h')."""
    match = _PATTERN.match(str(text))
    unit = _ALIASES.get(match.group(3).lower()) if match else None
    if not match or unit is None:
        raise BudgetError(
            f"cannot read budget {text!r}: write <number><gpu|cpu>-<seconds|minutes|hours|days>,"
            " e.g. 2gpu-days, 6gpu-hours, 90gpu-minutes or 20cpu-minutes"
        )
    seconds = float(match.group(1)) * UNITS[unit]
    if seconds <= 0:
        raise BudgetError(
            f"budget {text!r} is zero: give a positive amount of gpu or cpu time, "
            "e.g. 10cpu-minutes"
        )
    return Budget(match.group(2).lower(), seconds, text.strip())


def _human(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
