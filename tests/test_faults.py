"""bench/faults.py's bookkeeping: the table's lost and duplicated children are counted from
the records, so the counting itself must be right (the script's searches are not run here)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from bench.faults import (
    Outcome,
    account,
    budget_respected,
    failed_write,
    in_flight,
    last_proposal_out,
    read_trials,
    table,
    tear,
)

ROOT = Path(__file__).resolve().parents[1]


def record(pid: str, reward: float = 0.5, seconds: float = 10.0) -> dict:
    return {"proposal_id": pid, "reward": reward, "device_seconds": seconds, "status": "ok"}


def write_trials(path: Path, records: list[dict]) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))


def test_nothing_lost_or_doubled_when_every_child_is_there_once():
    before = [record("a"), record("b")]
    ledger = account(before, [*before, record("c")])
    assert (ledger.before, ledger.after, ledger.lost, ledger.duplicated) == (2, 3, [], 0)


def test_a_missing_child_and_a_changed_result_are_lost():
    before = [record("a"), record("b"), record("c")]
    ledger = account(before, [record("a"), record("b", reward=0.9)])
    assert ledger.lost == ["b", "c"]


def test_every_record_beyond_the_first_of_an_id_is_a_duplicate():
    before = [record("a")]
    ledger = account(before, [record("a"), record("b"), record("a"), record("a"), record("b")])
    assert ledger.duplicated == 3 and ledger.lost == []


def test_a_torn_childs_rerun_may_differ_but_must_be_there():
    before = [record("a"), record("t")]
    assert account(before, [record("a"), record("t", reward=0.1)], rerun={"t"}).lost == []
    assert account(before, [record("a")], rerun={"t"}).lost == ["t"]


def test_read_trials_counts_torn_lines_and_tear_cuts_the_last_record(tmp_path):
    path = tmp_path / "trials.jsonl"
    write_trials(path, [record("a"), record("b")])
    assert tear(path) == "b"
    records, torn = read_trials(path)
    assert [r["proposal_id"] for r in records] == ["a"] and torn == 1
    assert not path.read_text().endswith("\n")
    path.write_text(path.read_text() + "\n[1, 2]\n\n")  # valid JSON, not a record
    assert read_trials(path)[1] == 2
    assert read_trials(tmp_path / "none.jsonl") == ([], 0)


def test_the_budget_allows_one_child_per_worker_beyond_it():
    records = [record(str(i), seconds=30.0) for i in range(4)]  # 120 s spent
    assert budget_respected(records, budget_seconds=100, workers=1, max_children=4)
    assert not budget_respected(records, budget_seconds=80, workers=1, max_children=4)
    assert budget_respected(records, budget_seconds=60, workers=2, max_children=4)
    assert not budget_respected(records, budget_seconds=1000, workers=2, max_children=3)


def test_in_flight_and_last_proposal_out_read_the_searcher_state(tmp_path):
    write_trials(tmp_path / "trials.jsonl", [record("p-0"), record("p-1")])
    state = {
        "n_suggested": 6,
        "proposals": {"t2": {"id": "p-2"}, "t1": {"id": "p-1"}},
        "completed": {"t0": {"proposal_id": "p-0"}, "t1": {"proposal_id": "p-1"}},
    }
    (tmp_path / "searcher.json").write_text(json.dumps(state))
    assert in_flight(tmp_path) == {"p-2"}
    assert last_proposal_out(tmp_path)
    state["n_suggested"] = 5  # a proposal, and its state save, still to come
    (tmp_path / "searcher.json").write_text(json.dumps(state))
    assert not last_proposal_out(tmp_path)
    (tmp_path / "searcher.json").write_text("{torn")
    assert in_flight(tmp_path) == set() and not last_proposal_out(tmp_path)


def test_failed_write_names_the_projects_innermost_frame():
    from bench.cli import REPO

    lines = [
        "Traceback (most recent call last):",
        '  File "/x/.venv/lib/ray/tune/tune_controller.py", line 9, in stop_trial',
        f'  File "{REPO}/nas/searcher.py", line 118, in on_trial_complete',
        f'  File "{REPO}/nas/records.py", line 132, in _append_line',
        "OSError: [Errno 27] File too large",
    ]
    assert failed_write(lines) == "nas/records.py:132 _append_line, no error printed"
    said = [*lines, "error: the disk is full (or a file-size limit was reached) ..."]
    assert failed_write(said) == "nas/records.py:132 _append_line, error printed"
    error = ["error: could not write /tmp/x/run/teacher/state.pt (is the disk full?): pos 64"]
    expected = "error: could not write teacher/state.pt"
    assert failed_write(error) == expected


def test_the_table_says_no_for_a_failed_resume():
    rows = [
        Outcome("kill -9", "teacher", "after step 51/60", 0, 6, 0, 0, True, 91.4),
        Outcome("torn record", "children", "cut", 3, 5, 1, 2, False, 12.0),
    ]
    text = table(rows).splitlines()
    assert text[0].startswith("| fault | phase |") and len(text) == 4
    assert text[2] == "| kill -9 | teacher | after step 51/60 | 0 | 6 | 0 | 0 | yes | 91 |"
    assert text[3].endswith("| 3 | 5 | 1 | 2 | NO | 12 |")


def test_a_full_disk_while_saving_state_is_an_oserror_naming_the_file(tmp_path):
    """What bench/faults.py found: torch.save on a full disk raised RuntimeError (a
    traceback, exit 1) and a failed JSON write left its temp file behind, naming no file."""
    code = (
        "import json, resource, sys, torch\n"
        "from pathlib import Path\n"
        "from nas.checkpoint import save_training_state, write_json\n"
        "out, said = Path(sys.argv[1]), []\n"
        "resource.setrlimit(resource.RLIMIT_FSIZE, (10, resource.RLIM_INFINITY))\n"
        "for save in (lambda: write_json(out / 'meta.json', {'done': 'x' * 99}),\n"
        "             lambda: save_training_state(out / 'state.pt', {'w': torch.zeros(99)})):\n"
        "    try:\n"
        "        save()\n"
        "    except OSError as exc:\n"
        "        said.append(str(exc))\n"
        "print(json.dumps(said))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path)],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    said = json.loads(done.stdout.strip().splitlines()[-1])
    assert len(said) == 2
    assert "File too large" in said[0] and str(tmp_path / "meta.json") in said[0]
    assert f"could not write {tmp_path / 'state.pt'}" in said[1]
    assert list(tmp_path.iterdir()) == []  # no temp file left
