"""Fault injection: a search killed, torn, starved of disk or doubled, then resumed.

    python -m bench.faults [--out bench/out/faults] [--json FILE] [--only FAULT:PHASE] [--keep]

Each fault runs a tiny synthetic search (``python -m nas.search``, 32x48 frames, a PPO
controller, 6 children of 60 steps on 2 workers) as a subprocess in its own process group,
waits until it is in the named phase (its log lines, ``cache/train/meta.json``,
``trials.jsonl`` and ``searcher.json``), injects the fault, then runs
``python -m nas.search --resume`` to the end. The faults:

- ``kill -9`` in the teacher (after its step-50 checkpoint), the cache build (clips done, not
  all), the children (one recorded, one in flight) and ``nas.export`` (once its weights file
  is written; then the export is run again): SIGKILL to the whole process group, and any
  Ray process the search left is killed by its temp folder's name.
- ``torn record``: kill -9 among the children, then the last line of ``trials.jsonl`` cut in
  half, as a crash in the middle of the write would leave it.
- ``full disk``: the search process's RLIMIT_FSIZE lowered while it runs (``prlimit``, no
  root needed): every write that would grow a file past the limit fails (EFBIG, where a full
  disk gives ENOSPC), a write that crosses it is cut short, as on a disk that fills mid-write.
  The limit is 0 in the teacher and cache phases (no file may grow: the disk is full) and
  the size of ``trials.jsonl`` plus 300 bytes among the children, where Ray Tune's own
  experiment state (rewritten at every step, larger) is the first write to fail. A fourth
  run aims at the record itself: Ray's state saved hourly, the cap set once every child is
  proposed, so the search process's next write is a record, cut after 300 bytes. Only
  the search process is limited: the Ray workers writing child weights are not, nor is the
  log (read through a pipe). The table names the write that failed.
- ``second search``: the same command started in the same folder while the first search
  trains its teacher, and ``--resume`` started while it runs its children: each must be
  refused at once (exit 2); the first then runs to the end and is resumed (its rows count
  the children the first search recorded as "before": a second search that ran would show
  as duplicates).

After each fault the table counts, from the records themselves (never assumed): children
recorded before the fault and after the resume, **lost** (recorded before, then missing or
with a different result; a torn record's child must be there again, rerun) and
**duplicated** (records beyond the first of one proposal id). *resumed ok*: the resume exits
0 with ``summary.json``, ``trials.jsonl`` holds no torn line and exactly the run's 6
children, and the device-seconds spent stay within the budget plus one child per worker (for
the export: the rerun writes a complete cell folder that rebuilds its network).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench.cli import REPO

SETTINGS: dict[str, Any] = {
    "resolution": [32, 48],
    "clip_len": 9,
    "train_clips": 6,
    "val_clips": 3,
    "teacher_clips": 8,
    "teacher_steps": 20,
    "fast_steps": 8,
    "child_steps": 60,
    "child_rounds": 2,
    "child_batch": 4,
    "workers": 2,
    "dashboard": False,
    "max_children": 6,
    "controller": "ppo",
    "ppo": {"batch_size": 2},
    "budget": "30cpu-minutes",
    "seed": 0,
}
"""The tiny search every fault runs (tests/conftest.py's sizes, children long enough to be
caught in flight); max_children, not the budget, ends it."""

BUDGET_SECONDS = 30 * 60.0
TEACHER_STEPS = 60
"""Where the teacher is the phase: its first checkpoint comes at step 50."""
PHASE_TIMEOUT = 600.0
"""Seconds to wait for a phase, or for a search to end, on a loaded 2-core machine (where
a tiny teacher's first step has taken 2 minutes)."""
RESUME_TIMEOUT = 1200.0
"""Seconds a resume may take to the end (teacher, cache and children)."""
REFUSED_WITHIN = 60.0
"""A second search in a locked folder must be refused within this many seconds (its Python
and torch imports included, on a loaded machine; the table gives the time taken)."""
POLL = 0.1
"""Seconds between looks at a running search."""
RESUME_LINES = ("warning:", "[search] resumed")
"""What a resume prints about what it kept (with any line saying it is resuming)."""
CELL_FILES = ("cell.json", "weights.safetensors", "key_step.pt", "step.pt")


# ---- the records, read independently of nas.records -------------------------------------
def read_trials(path: Path) -> tuple[list[dict[str, Any]], int]:
    """(whole records of trials.jsonl, number of torn or unreadable lines)."""
    if not path.is_file():
        return [], 0
    records, torn = [], 0
    for line in path.read_text(errors="replace").splitlines():
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            record = None
        if isinstance(record, dict) and "proposal_id" in record:
            records.append(record)
        else:
            torn += 1
    return records, torn


@dataclass(frozen=True)
class Ledger:
    """What a resume did to the children recorded before a fault."""

    before: int
    after: int
    lost: list[str]
    """Recorded before, then missing, or (unless it was to be rerun) with another result."""
    duplicated: int
    """Records beyond the first of the same proposal id."""


def account(
    before: Iterable[dict[str, Any]], after: Iterable[dict[str, Any]], rerun: Iterable[str] = ()
) -> Ledger:
    """Compare the records before a fault with those after the resume. A child in ``rerun``
    (its record was torn) must be recorded again, with whatever result its rerun gave."""
    before, after, rerun = list(before), list(after), set(rerun)
    counts = Counter(r["proposal_id"] for r in after)
    first: dict[str, dict[str, Any]] = {}
    for record in after:
        first.setdefault(record["proposal_id"], record)
    lost = [
        r["proposal_id"]
        for r in before
        if r["proposal_id"] not in first
        or (r["proposal_id"] not in rerun and first[r["proposal_id"]] != r)
    ]
    return Ledger(
        before=len(before),
        after=len(after),
        lost=lost,
        duplicated=sum(n - 1 for n in counts.values()),
    )


def budget_respected(
    records: list[dict[str, Any]], budget_seconds: float, workers: int, max_children: int
) -> bool:
    """At most ``max_children``, and device-seconds within the budget plus one child per
    worker (the children in flight finish)."""
    spent = [float(r.get("device_seconds") or 0.0) for r in records]
    slack = workers * max(spent, default=0.0)
    return len(records) <= max_children and sum(spent) <= budget_seconds + slack


def tear(path: Path) -> str:
    """Cut the last line of ``path`` in half (no newline after it); its proposal id."""
    lines = path.read_text().splitlines(keepends=True)
    last = json.loads(lines[-1])["proposal_id"]
    path.write_text("".join(lines[:-1]) + lines[-1][: len(lines[-1]) // 2])
    return last


def in_flight(run: Path) -> set[str]:
    """Proposal ids the searcher has handed out and trials.jsonl does not hold yet."""
    try:
        state = json.loads((run / "searcher.json").read_text())
    except (OSError, json.JSONDecodeError):
        return set()
    recorded = {r["proposal_id"] for r in read_trials(run / "trials.jsonl")[0]}
    return {p["id"] for p in state.get("proposals", {}).values()} - recorded


# ---- one command as a process group ---------------------------------------------------------
def _kill_marked(marker: str) -> None:
    """SIGKILL every process whose command line or environment names ``marker`` (Ray's
    leftovers: its services name their temp folder; its workers, in sessions of their own
    and renamed ``ray::...``, inherit NAS_RAY_TMP)."""
    marker_bytes = marker.encode()
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
            env = Path(f"/proc/{pid}/environ").read_bytes()
        except OSError:
            continue
        if marker_bytes in cmd or marker_bytes in env:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(int(pid), signal.SIGKILL)


class Command:
    """``python -m MODULE ARGS`` in a new process group with a Ray temp folder of its own;
    its output read through a pipe (never limited by a fault) into ``log`` and ``lines``."""

    def __init__(self, module: str, args: list[str], log: Path, env: dict[str, str] | None = None):
        self.ray_tmp = tempfile.mkdtemp(prefix="fk", dir="/tmp")  # Ray's socket paths: short
        self.lines: list[str] = []
        self.started = time.time()
        env = {**os.environ, "NAS_RAY_TMP": self.ray_tmp, "PYTHONPATH": str(REPO), **(env or {})}
        env["PYTHONUNBUFFERED"] = "1"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", module, *args],
            cwd=REPO,
            env=env,
            start_new_session=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self._reader = threading.Thread(target=self._read, args=(log,), daemon=True)
        self._reader.start()

    def _read(self, log: Path) -> None:
        with open(log, "a") as fh:
            for line in self.proc.stdout:
                self.lines.append(line.rstrip("\n"))
                fh.write(line)
                fh.flush()

    @property
    def text(self) -> str:
        return "\n".join(self.lines)

    def wait_for(self, ready: Callable[[], bool], timeout: float = PHASE_TIMEOUT) -> bool:
        """Poll ``ready`` until it holds (True), or the command ends or the time is up."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            if ready():
                return True
            if self.proc.poll() is not None:
                return ready()
            time.sleep(POLL)
        return False

    def kill(self) -> None:
        """kill -9 to the whole group, then to whatever Ray left outside it."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()
        self.clean_up()

    def finish(self, timeout: float = PHASE_TIMEOUT) -> int | None:
        """The exit status, or None (and the group killed) if it ran past ``timeout``."""
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            return None
        self.clean_up()
        return rc

    def clean_up(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)  # anything of the group still alive
        _kill_marked(self.ray_tmp)
        shutil.rmtree(self.ray_tmp, ignore_errors=True)
        self._reader.join(timeout=5)

    def seconds(self) -> float:
        return time.time() - self.started


def limit_file_size(pid: int, limit: int | None) -> None:
    """A full disk for process ``pid`` from now on: no file it writes may grow past
    ``limit`` bytes (EFBIG; Python ignores SIGXFSZ, so the write fails and it goes on).
    Only the soft limit, so that ``None`` can lift it again."""
    _, hard = resource.prlimit(pid, resource.RLIMIT_FSIZE)
    resource.prlimit(pid, resource.RLIMIT_FSIZE, (hard if limit is None else limit, hard))


def cap_when_ready(cmd: Command, ready: Callable[[], bool], trials: Path) -> int:
    """Cap the file sizes of ``cmd``'s process once ``ready`` holds: at 0, or at
    ``trials``' size + 300 bytes once it exists. A record that lands while the cap is set
    (the check and the cap are not one step) would move the fault elsewhere: then the cap
    is lifted and the next chance taken. The cap; FaultError if the phase never came."""
    deadline = time.time() + PHASE_TIMEOUT
    while cmd.wait_for(ready, max(deadline - time.time(), 0)):
        size = trials.stat().st_size if trials.is_file() else None
        limit = 0 if size is None else size + 300
        limit_file_size(cmd.proc.pid, limit)
        now = trials.stat().st_size if trials.is_file() else None
        if now == size and ready():
            return limit
        limit_file_size(cmd.proc.pid, None)
        time.sleep(POLL)
    rc = cmd.proc.poll()
    cmd.kill()
    raise FaultError(f"the phase never came (exit {rc}): {cmd.lines[-5:]}")


# ---- the phases, as seen from outside -------------------------------------------------------
def teacher_step(cmd: Command) -> int:
    """The last teacher step the search printed (0 before the first)."""
    steps = [int(m.group(1)) for m in re.finditer(r"\[teacher\] static: step (\d+)/", cmd.text)]
    return max(steps, default=0)


def cache_progress(run: Path) -> tuple[int, bool]:
    """(clips of the train cache built, whether it is complete)."""
    try:
        meta = json.loads((run / "cache" / "train" / "meta.json").read_text())
    except (OSError, json.JSONDecodeError):
        return 0, False
    return int(meta.get("done", 0)), bool(meta.get("complete"))


def last_proposal_out(run: Path) -> bool:
    """Every child proposed, one or more in flight, and the searcher's state saved after the
    last record: the search process's next write is the next record (no proposal is left
    to save state for)."""
    try:
        state = json.loads((run / "searcher.json").read_text())
    except (OSError, json.JSONDecodeError):
        return False
    recorded = {r["proposal_id"] for r in read_trials(run / "trials.jsonl")[0]}
    told = {c.get("proposal_id") for c in state.get("completed", {}).values()}
    return (
        state.get("n_suggested", 0) >= SETTINGS["max_children"]
        and bool(recorded)
        and told == recorded
        and bool(in_flight(run))
    )


def failed_write(lines: list[str]) -> str:
    """Where the first failed write was (the innermost frame of this project in the
    traceback that ends in it) and whether the search then said so in one ``error:`` line;
    else the error line itself."""
    frames: list[str] = []
    for line in lines:
        if "Errno 27" in line or "File too large" in line or "disk full" in line:
            break
        match = re.match(r'\s*File "([^"]+)", line (\d+), in (\S+)', line)
        if line.startswith("Traceback"):
            frames = []
        elif match and match.group(1).startswith(str(REPO)) and "/.venv/" not in match.group(1):
            path = Path(match.group(1)).relative_to(REPO)
            frames.append(f"{path}:{match.group(2)} {match.group(3)}")
    said = any(line.startswith("error:") for line in lines)
    if frames:
        return f"{frames[-1]}, {'error printed' if said else 'no error printed'}"
    error = next((line for line in lines if line.startswith("error:")), "no error printed")
    error = error.split(" (is the disk full?)")[0]
    return re.sub(r"/\S*/(\S+/\S+)", r"\1", error)[:70]  # paths to their last two parts


def among_children(run: Path, recorded: int = 1) -> bool:
    """At least ``recorded`` children recorded and one more in flight."""
    return len(read_trials(run / "trials.jsonl")[0]) >= recorded and bool(in_flight(run))


# ---- one fault -------------------------------------------------------------------------------
@dataclass
class Outcome:
    """One row of the table."""

    fault: str
    phase: str
    injected: str
    before: int = 0
    after: int = 0
    lost: int = 0
    duplicated: int = 0
    resumed_ok: bool = False
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)
    lost_ids: list[str] = field(default_factory=list)


class FaultError(RuntimeError):
    """The fault could not be injected where it was meant to be (the phase never came)."""


class Bench:
    """Where the runs and logs of one bench live, and the steps every fault shares."""

    def __init__(self, out: Path):
        self.out = out
        self.runs: list[Path] = []

    def new_run(self, name: str, **overrides: Any) -> Path:
        """An empty run folder and the config file of its search (this bench's files of
        that name, from an earlier run, removed; nothing else in --out is touched)."""
        run = self.out / name
        shutil.rmtree(run, ignore_errors=True)
        for old in self.out.glob(f"{name}.*.log"):
            old.unlink()
        run.parent.mkdir(parents=True, exist_ok=True)
        self.runs.append(run)
        config = self.out / f"{name}.config.json"
        config.write_text(json.dumps({**SETTINGS, **overrides}, indent=1))
        return run

    def search(
        self, run: Path, *extra: str, log: str = "search", env: dict[str, str] | None = None
    ) -> Command:
        args = ["--out", str(run), *extra]
        if "--resume" not in extra:
            args += ["--config", str(self.out / f"{run.name}.config.json")]
        return Command("nas.search", args, self.out / f"{run.name}.{log}.log", env)

    def resume(self, run: Path) -> Resumed:
        """Run --resume to the end."""
        t0 = time.time()
        cmd = self.search(run, "--resume", log="resume")
        rc = cmd.finish(RESUME_TIMEOUT)
        records, torn = read_trials(run / "trials.jsonl")
        summary = run / "summary.json"
        fresh = summary.is_file() and summary.stat().st_mtime >= t0
        return Resumed(rc, records, torn, fresh, cmd.lines)

    def run_until(
        self, run: Path, ready: Callable[[Command], bool], env: dict[str, str] | None = None
    ) -> Command:
        """Start the search and wait for ``ready``; FaultError (the search killed) if the
        phase never came."""
        cmd = self.search(run, env=env)
        if not cmd.wait_for(lambda: ready(cmd)):
            rc = cmd.proc.poll()
            cmd.kill()
            raise FaultError(f"the phase never came (exit {rc}): {cmd.lines[-5:]}")
        return cmd


@dataclass(frozen=True)
class Resumed:
    """What a --resume run left."""

    rc: int | None
    records: list[dict[str, Any]]
    torn: int
    fresh_summary: bool
    lines: list[str]


def judge(
    outcome: Outcome,
    resumed: Resumed,
    before: list[dict[str, Any]],
    started: float,
    rerun: Iterable[str] = (),
) -> Outcome:
    """Fill the row's counts and verdict from the records before the fault and the resume."""
    ledger = account(before, resumed.records, rerun)
    children = SETTINGS["max_children"]
    within = budget_respected(resumed.records, BUDGET_SECONDS, SETTINGS["workers"], children)
    outcome.before, outcome.after = ledger.before, ledger.after
    outcome.lost, outcome.lost_ids = len(ledger.lost), ledger.lost
    outcome.duplicated = ledger.duplicated
    outcome.resumed_ok = (
        resumed.rc == 0
        and resumed.fresh_summary
        and not resumed.torn
        and within
        and ledger.after == children
    )
    if not outcome.resumed_ok:
        outcome.notes.append(
            f"resume: exit {resumed.rc}, summary "
            f"{'written' if resumed.fresh_summary else 'missing'}, {resumed.torn} torn "
            f"line(s), {ledger.after} children, budget {'kept' if within else 'overspent'}; "
            f"last lines: {resumed.lines[-3:]}"
        )
    said = [line for line in resumed.lines if line.startswith(RESUME_LINES) or "resuming" in line]
    outcome.notes += said[:4]
    outcome.seconds = time.time() - started
    return outcome


# ---- the faults ------------------------------------------------------------------------------
def kill_in_teacher(bench: Bench) -> list[Outcome]:
    t0 = time.time()
    steps = 2 * TEACHER_STEPS  # half of them still to come at the kill
    run = bench.new_run("kill-teacher", teacher_steps=steps)
    cmd = bench.run_until(run, lambda c: teacher_step(c) >= 50)
    time.sleep(0.5)  # between checkpoints: the steps after 50 are lost and redone
    step = teacher_step(cmd)
    cmd.kill()
    outcome = Outcome("kill -9", "teacher", f"after teacher step {step}/{steps}")
    return [judge(outcome, bench.resume(run), [], t0)]


def kill_in_cache(bench: Bench) -> list[Outcome]:
    t0 = time.time()
    run = bench.new_run("kill-cache", train_clips=128)
    cmd = bench.run_until(run, lambda c: cache_progress(run)[0] >= 1)
    cmd.kill()
    done, complete = cache_progress(run)
    where = "after the train cache was complete" if complete else f"at cache clip {done}/128"
    outcome = Outcome("kill -9", "cache build", where)
    return [judge(outcome, bench.resume(run), [], t0)]


def kill_among_children(bench: Bench) -> list[Outcome]:
    """kill -9 with one child recorded and one in flight; then, on the finished run, the
    export fault."""
    t0 = time.time()
    run = bench.new_run("kill-children")
    bench.run_until(run, lambda c: among_children(run)).kill()
    flying = in_flight(run)
    before, _ = read_trials(run / "trials.jsonl")
    outcome = Outcome("kill -9", "children", f"{len(before)} recorded, {len(flying)} in flight")
    judge(outcome, bench.resume(run), before, t0)
    return [outcome, *kill_in_export(bench, run)]


def torn_record(bench: Bench) -> list[Outcome]:
    """kill -9 among the children, then the last record cut in half: its child must run
    again, once, and the fragment be moved aside."""
    t0 = time.time()
    run = bench.new_run("torn-record")
    bench.run_until(run, lambda c: among_children(run, 2)).kill()
    before, _ = read_trials(run / "trials.jsonl")
    torn = tear(run / "trials.jsonl")
    injected = f"kill -9 with {len(before)} recorded, then record {len(before)} cut in half"
    outcome = Outcome("torn record", "children", injected)
    judge(outcome, bench.resume(run), before, t0, rerun={torn})
    if not (run / "trials.torn.jsonl").is_file():
        outcome.resumed_ok = False
        outcome.notes.append("the torn line was not moved to trials.torn.jsonl")
    return [outcome]


def kill_in_export(bench: Bench, run: Path) -> list[Outcome]:
    """kill -9 an export of a finished run once its weights are written; the rerun must
    write a complete cell folder, and a --resume must change no record."""
    t0 = time.time()
    before, _ = read_trials(run / "trials.jsonl")
    export = run / "export"
    shutil.rmtree(export, ignore_errors=True)
    log = bench.out / f"{run.name}.export.log"
    cmd = Command("nas.export", [str(run), "--top", "1"], log)
    hit = cmd.wait_for(lambda: any(export.glob("01-*/weights.safetensors")))
    cmd.kill()
    left = len(list(export.glob("01-*/*")))
    injected = f"export killed holding {left} of {len(CELL_FILES)} files"
    outcome = Outcome("kill -9", "export", injected if hit else "export ended before the kill")
    rerun = Command("nas.export", [str(run), "--top", "1"], log)
    rc = rerun.finish()
    complete = rc == 0 and cell_folder_complete(export)
    judge(outcome, bench.resume(run), before, t0)
    outcome.resumed_ok = outcome.resumed_ok and complete and hit
    if not complete:
        outcome.notes.append(f"export rerun: exit {rc}, {rerun.lines[-3:]}")
    return [outcome]


def cell_folder_complete(export: Path) -> bool:
    """One exported folder with every file, whose cell.json rebuilds the network."""
    folders = sorted(export.glob("01-*"))
    if len(folders) != 1 or not all((folders[0] / f).is_file() for f in CELL_FILES):
        return False
    check = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from nas.cellfile import build_from_cell; build_from_cell(sys.argv[1])",
            str(folders[0] / "cell.json"),
        ],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        timeout=PHASE_TIMEOUT,
    )
    return check.returncode == 0


@dataclass(frozen=True)
class DiskFault:
    """Where a full disk strikes: the run's name and settings, the phase, when to cap."""

    run: str
    phase: str
    overrides: dict[str, Any]
    ready: Callable[[Command, Path], bool]
    env: dict[str, str] = field(default_factory=dict)


DISK_FAULTS = {
    "teacher": DiskFault(
        "disk-teacher",
        "teacher",
        {"teacher_steps": TEACHER_STEPS},
        lambda c, run: teacher_step(c) >= 1,
    ),
    "cache": DiskFault(
        "disk-cache",
        "cache build",
        {"train_clips": 128},
        lambda c, run: cache_progress(run)[0] >= 1,
    ),
    "children": DiskFault("disk-children", "children", {}, lambda c, run: among_children(run)),
    # Ray Tune's own experiment state (not what --resume reads) is rewritten at every step
    # and is larger than trials.jsonl, so it fails first; saved hourly here instead, the
    # record itself is the write that fails
    "record": DiskFault(
        "disk-record",
        "children (record write)",
        {},
        lambda c, run: last_proposal_out(run),
        {"TUNE_GLOBAL_CHECKPOINT_S": "3600"},
    ),
}


def full_disk(bench: Bench, where: str) -> list[Outcome]:
    """The search process's writes fail from the moment it is in the phase; it must stop
    with an error (or is killed after PHASE_TIMEOUT), then resume with nothing lost."""
    t0 = time.time()
    fault = DISK_FAULTS[where]
    run = bench.new_run(fault.run, **fault.overrides)
    cmd = bench.search(run, env=fault.env)
    trials = run / "trials.jsonl"
    limit = cap_when_ready(cmd, lambda: fault.ready(cmd, run), trials)
    rc = cmd.finish()
    before, torn = read_trials(trials)
    failed = failed_write(cmd.lines)
    at = ", " if failed.startswith(("error", "no error")) else " at "
    outcome = Outcome("full disk", fault.phase, f"files capped at {limit} B: exit {rc}{at}{failed}")
    outcome.notes += [line for line in cmd.lines if line.startswith("error:")]
    if rc is None:
        outcome.notes.append(f"the search did not stop within {PHASE_TIMEOUT:.0f} s: killed")
    if torn:
        outcome.notes.append(f"the failed write left {torn} torn line(s)")
    return [judge(outcome, bench.resume(run), before, t0)]


def second_search(bench: Bench) -> list[Outcome]:
    """A second search in the folder while the first trains its teacher, and a --resume
    while it runs its children: both refused at once; the first ends and is resumed."""
    t0 = time.time()
    run = bench.new_run("second-search", teacher_steps=TEACHER_STEPS)
    first = bench.run_until(run, lambda c: teacher_step(c) >= 1)
    rows = [try_second(bench, run, "teacher", [])]
    if any(line.startswith("[cache]") for line in first.lines):
        rows[0].injected += " (the first had left its teacher by then)"
    if not first.wait_for(lambda: among_children(run)):
        first.kill()
        raise FaultError(f"the first search never reached its children: {first.lines[-5:]}")
    rows.append(try_second(bench, run, "children", ["--resume"]))
    rc = first.finish()
    before, _ = read_trials(run / "trials.jsonl")  # all the first search recorded
    resumed = bench.resume(run)
    for row in rows:
        judge(row, resumed, before, t0)
        if rc != 0:
            row.resumed_ok = False
            row.notes.append(f"the first search ended with exit {rc}: {first.lines[-3:]}")
    return rows


def try_second(bench: Bench, run: Path, phase: str, extra: list[str]) -> Outcome:
    """Start a second search on ``run``; an Outcome saying whether it was refused in time."""
    cmd = bench.search(run, *extra, log=f"second-{phase}")
    rc = cmd.finish(timeout=REFUSED_WITHIN * 4)
    seconds = cmd.seconds()
    refused = rc == 2 and "in use by another search" in cmd.text and seconds <= REFUSED_WITHIN
    what = "second search" + (" --resume" if extra else "")
    outcome = Outcome("second search", phase, f"{what}: exit {rc} in {seconds:.0f} s")
    outcome.notes += [line for line in cmd.lines if line.startswith("error:")]
    if not refused:
        outcome.notes.append(f"not refused at once: {cmd.lines[-3:]}")
        outcome.injected += " (NOT refused)"
    return outcome


FAULTS: dict[str, tuple[str, str, Callable[[Bench], list[Outcome]]]] = {
    "kill:teacher": ("kill -9", "teacher", kill_in_teacher),
    "kill:cache": ("kill -9", "cache build", kill_in_cache),
    # and kill -9 in the export of the same run, once it has finished
    "kill:children": ("kill -9", "children, export", kill_among_children),
    "torn:children": ("torn record", "children", torn_record),
    "disk:teacher": ("full disk", "teacher", lambda b: full_disk(b, "teacher")),
    "disk:cache": ("full disk", "cache build", lambda b: full_disk(b, "cache")),
    "disk:children": ("full disk", "children", lambda b: full_disk(b, "children")),
    "disk:record": ("full disk", "children (record write)", lambda b: full_disk(b, "record")),
    "second:search": ("second search", "teacher, children", second_search),
}
"""--only's names: (fault, phase, the function returning its rows)."""


def run_fault(bench: Bench, key: str) -> list[Outcome]:
    """One fault's rows; a fault that could not be injected is a failed row."""
    t0 = time.time()
    fault, phase, rows = FAULTS[key]
    try:
        return rows(bench)
    except FaultError as exc:
        return [Outcome(fault, phase, "not injected", seconds=time.time() - t0, notes=[str(exc)])]


# ---- the table -------------------------------------------------------------------------------
def table(rows: list[Outcome]) -> str:
    """The markdown table the README quotes."""
    head = [
        "| fault | phase | injected | children before | after | lost | duplicated | "
        "resumed ok | s |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    body = [
        f"| {r.fault} | {r.phase} | {r.injected} | {r.before} | {r.after} | {r.lost} | "
        f"{r.duplicated} | {'yes' if r.resumed_ok else 'NO'} | {r.seconds:.0f} |"
        for r in rows
    ]
    return "\n".join(head + body)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m bench.faults",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--out",
        type=Path,
        default=REPO / "bench" / "out" / "faults",
        help="where the run folders and logs go (only this bench's own are replaced)",
    )
    p.add_argument("--json", type=Path, help="also write every row (with notes) here")
    p.add_argument(
        "--only",
        action="append",
        choices=tuple(FAULTS),
        help="run only these faults (repeatable; default all)",
    )
    p.add_argument("--keep", action="store_true", help="keep the run folders (a few MB each)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    bench = Bench(args.out)
    start, rows = time.time(), []
    for key in args.only or FAULTS:
        print(f"[faults] {key} ...", flush=True)
        got = run_fault(bench, key)
        rows += got
        for row in got:
            print(f"[faults] {row.fault} / {row.phase}: {asdict(row)}", flush=True)
    if not args.keep:
        for run in bench.runs:
            shutil.rmtree(run, ignore_errors=True)
    print(table(rows))
    ok = all(r.resumed_ok and r.lost == 0 and r.duplicated == 0 for r in rows)
    verdict = "every fault resumed, nothing lost or doubled" if ok else "SOME FAULTS FAILED"
    print(f"{len(rows)} rows: {verdict}; {time.time() - start:.0f} s in all")
    if args.json:
        args.json.write_text(json.dumps([asdict(r) for r in rows], indent=1) + "\n")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
