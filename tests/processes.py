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
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from nas.records import read_records


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
