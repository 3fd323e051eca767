"""What every bench's command line starts with: its docstring as help, and where the real
data lives (../shared/data beside the repository, which a user's clone may not have)."""

from __future__ import annotations

import argparse
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


def bench_parser(prog: str, doc: str | None, data: str) -> argparse.ArgumentParser:
    """A parser with ``--data-root`` (default ../shared/data), ``data`` naming what the
    folder must hold."""
    p = argparse.ArgumentParser(
        prog=prog, description=doc, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--data-root", type=Path, default=SHARED_DATA, help=f"folder holding {data}")
    return p
