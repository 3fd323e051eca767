"""One search per run folder: an exclusive lock held for the whole search."""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
from collections.abc import Iterator
from pathlib import Path

LOCK_NAME = "search.lock"
"""The run folder's lock file: flock'ed by the search running in it, with its PID inside."""

_HELD: dict[Path, list[int]] = {}  # run folder -> [lock fd, depth] held by this process


class RunBusyError(RuntimeError):
    """The run folder is locked by another search."""


@contextlib.contextmanager
def run_lock(out: Path) -> Iterator[None]:
    """Hold the run folder ``out`` for one search (created if missing): an exclusive
    ``flock`` on ``out/search.lock``, which holds this process's PID. The OS releases it when
    the process ends, however it ends (kill -9 included), so a lock left by a dead process is
    simply taken over; a second search gets RunBusyError at once, naming the holder's PID.
    Re-entrant within one process."""
    out.mkdir(parents=True, exist_ok=True)
    key = out.resolve()
    if key in _HELD:
        _HELD[key][1] += 1
        try:
            yield
        finally:
            _HELD[key][1] -= 1
        return
    path = key / LOCK_NAME
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        holder = os.pread(fd, 200, 0).decode(errors="replace").strip() or "unknown"
        os.close(fd)
        raise RunBusyError(
            f"{out} is in use by another search (PID {holder}, from {path}): wait for it to "
            "end or stop it, or choose another --out"
        ) from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()} on {socket.gethostname()}\n".encode(), 0)
    _HELD[key] = [fd, 1]
    try:
        yield
    finally:
        _HELD.pop(key, None)
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)
        os.close(fd)  # releases the flock
