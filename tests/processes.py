"""Searches that tests run as processes: a short Ray temp folder whose leftover processes are
killed with it, and the moment to interrupt such a search (one child finished, another
running)."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import pytest

from nas.records import read_records

ROOT = Path(__file__).resolve().parents[1]


def kill_processes_naming(marker: str) -> None:
    """Kill every process whose command line names ``marker`` (Ray's leftovers)."""
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="ignore")
        except OSError:
            continue
        if marker in cmd:
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(pid), signal.SIGKILL)


@contextlib.contextmanager
def ray_tmp_dir(prefix: str) -> Iterator[Path]:
    """A folder under /tmp for the Ray a test's process starts (Ray's socket paths must be
    short); on the way out every process naming it is killed and the folder removed."""
    folder = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    try:
        yield folder
    finally:
        kill_processes_naming(str(folder))
        shutil.rmtree(folder, ignore_errors=True)


def start_resumed_search(run: Path, ray_tmp: Path, log: IO[str]) -> subprocess.Popen:
    """``python -m nas.search --resume --out run`` in a process group of its own (signal it as
    a terminal would), Ray's files under ``ray_tmp``, its output to ``log``. SIGINT is set to
    Python's default: a shell's background job inherits it ignored, and the search must hear
    a Ctrl-C as a terminal would deliver it."""
    return subprocess.Popen(
        [sys.executable, "-m", "nas.search", "--resume", "--out", str(run)],
        cwd=ROOT,
        env={**os.environ, "NAS_RAY_TMP": str(ray_tmp), "PYTHONPATH": str(ROOT)},
        start_new_session=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        stdout=log,
        stderr=subprocess.STDOUT,
    )


def wait_for_a_child_in_flight(
    run: Path, proc: subprocess.Popen, log: Path, seconds: float = 240, poll: float = 0.5
) -> set[str]:
    """Wait until the search in ``run`` has recorded a child while another is still running;
    returns the proposal ids then in flight. Fails the test, with the search's log, if the
    search ends first or ``seconds`` pass."""
    deadline = time.time() + seconds
    while time.time() < deadline:
        time.sleep(poll)
        done = {r["proposal_id"] for r in read_records(run / "trials.jsonl")}
        try:
            state = json.loads((run / "searcher.json").read_text())
        except (OSError, json.JSONDecodeError):
            continue
        in_flight = {p["id"] for p in state["proposals"].values()} - done
        if done and in_flight:
            return in_flight
        assert proc.poll() is None, (
            "the search ended before it could be interrupted:\n" + log.read_text()[-3000:]
        )
    pytest.fail("no child finished while another ran:\n" + log.read_text()[-3000:])
