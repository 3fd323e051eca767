"""A search as a careless user or a crash meets it: two searches in one folder, settings that
cannot work, a resume with other settings, Ctrl-C among the children then a torn record.
Every check of bad input must come before any work: ``run_search`` is replaced by a function
that fails the test if a search would start."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import nas.ray_session
import nas.run
from nas.budget import parse_budget
from nas.records import TORN_NAME, read_records
from nas.run import budget_lines, run_search
from nas.run_lock import run_lock
from nas.search import main
from tests.conftest import tiny_search_config
from tests.processes import ray_tmp_dir, start_resumed_search, wait_for_a_child_in_flight

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def no_search(monkeypatch):
    """Fail at once if main() would start a search (the checks came too late)."""

    def started(*args, **kwargs):
        raise AssertionError("a search started: the input should have been refused first")

    monkeypatch.setattr(nas.run, "run_search", started)


# ---- two searches in one folder -------------------------------------------------------------
def test_a_second_search_in_a_locked_folder_fails_at_once_naming_the_holder(
    tmp_path, capsys, no_search
):
    out = tmp_path / "run"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from pathlib import Path; from nas.run_lock import run_lock\n"
            "with run_lock(Path(sys.argv[1])):\n"
            "    print('held', flush=True); time.sleep(120)",
            str(out),
        ],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        for argv in (["--out", str(out)], ["--resume", "--out", str(out)]):
            if "--resume" in argv:
                (out / "search.json").write_text(json.dumps(tiny_search_config().to_dict()))
            t0 = time.time()
            assert main([*argv, "--budget", "1cpu-minutes"]) == 2
            assert time.time() - t0 < 30
            err = capsys.readouterr().err.strip()
            assert err.count("error:") == 1 and str(out) in err and f"PID {holder.pid}" in err
    finally:
        holder.kill()  # kill -9: the OS releases the lock
        holder.wait()
    with run_lock(out):  # taken over at once
        assert (out / "search.lock").read_text().startswith(f"{os.getpid()} ")


def test_a_lock_file_left_by_a_dead_process_is_taken_over(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (tmp_path / "search.lock").write_text(f"{dead.pid} on somewhere\n")
    with run_lock(tmp_path), run_lock(tmp_path):  # and re-entrant in one process
        assert (tmp_path / "search.lock").read_text().startswith(f"{os.getpid()} ")
    with run_lock(tmp_path):  # released on exit
        pass


# ---- checks before any work -----------------------------------------------------------------
def config_file(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--workers", "-1"], "--workers: -1 is not allowed"),
        (["--workers", "0"], "--workers: 0 is not allowed"),
        (["--workers", "1000"], "--workers 1000: this machine has"),
        (["--max-children", "0"], "--max-children: 0"),
        (["--child-steps", "0"], "--child-steps: 0"),
        ([("cfg.yaml", "workers: two\n")], "cfg.yaml: workers is 'two', which is not a whole"),
        ([("cfg.yaml", 'clip_len: "sixteen"\n')], "cfg.yaml: clip_len is 'sixteen'"),
        ([("cfg.yaml", "workers: -1\n")], "workers is -1: it must be >= 1"),
        ([("cfg.yaml", "dataset: [1,\n  b: 2\n")], "cfg.yaml is not valid YAML"),
        ([("cfg.json", '{"workers": 2,}')], "cfg.json is not valid JSON"),
        (
            [("cfg.yaml", "wrokers: 2\n")],
            "cfg.yaml: unknown settings ['wrokers'] (did you mean: wrokers -> workers?)",
        ),
        ([("cfg.yaml", "ppo:\n  batch_size: x\n")], "ppo.batch_size is 'x'"),
        (["--resume"], "--resume needs --out RUN"),
    ],
)
def test_bad_settings_are_one_clear_error_before_any_work(
    argv, message, tmp_path, capsys, no_search
):
    args: list[str] = []
    for item in argv:
        args += ["--config", config_file(tmp_path, *item)] if isinstance(item, tuple) else [item]
    if "--resume" not in args:
        args += ["--out", str(tmp_path / "run")]
    try:
        rc = main(args)
    except SystemExit as exc:  # argparse's own errors
        rc = exc.code
    assert rc == 2
    err = capsys.readouterr().err.strip()
    assert message in err, err
    assert err.count("error:") == 1 and "Traceback" not in err
    assert not (tmp_path / "run").exists()


def test_yaml_exponents_read_as_text_become_numbers(tmp_path):
    from nas.search import build_parser, config_from_args

    path = config_file(tmp_path, "c.yaml", "child_lr: 3e-3\nppo:\n  clip_coef: 1e-1\n")
    config = config_from_args(build_parser().parse_args(["--config", path]))
    assert config.child_lr == 3e-3 and config.ppo == {"clip_coef": 0.1}


def test_resume_refuses_other_settings_naming_each(tmp_path, capsys, no_search):
    out = tmp_path / "run"
    out.mkdir()
    (out / "search.json").write_text(json.dumps(tiny_search_config().explicit().to_dict()))
    before = sorted(p.name for p in out.iterdir())
    argv = ["--resume", "--out", str(out), "--budget", "20cpu-minutes", "--workers", "1"]
    assert main([*argv, "--controller", "random", "--child-steps", "5"]) == 2
    err = capsys.readouterr().err
    assert err.count("error:") == 1
    assert "--controller (run: 'ppo', given: 'random')" in err
    assert "--child-steps (run: 12, given: 5)" in err
    assert "budget" not in err.split("differ:")[1].split(".")[0]  # budget may change
    assert sorted(p.name for p in out.iterdir()) == before
    assert main([*argv, "--dataset", "camvid", "--data-root", str(tmp_path)]) == 2
    assert "--dataset (run: 'synthetic', given: 'camvid')" in capsys.readouterr().err


def test_resume_with_only_what_may_change_goes_ahead(tmp_path, monkeypatch):
    out = tmp_path / "run"
    out.mkdir()
    (out / "search.json").write_text(json.dumps(tiny_search_config().explicit().to_dict()))
    seen = {}

    def fake(config, out, budget, resume):
        seen.update(config=config, resume=resume)
        return {"children": 1, "best": {"reward": 0.5}}  # a search with a cell to export

    monkeypatch.setattr(nas.run, "run_search", fake)
    argv = ["--resume", "--out", str(out), "--budget", "20cpu-minutes", "--workers", "1"]
    assert main([*argv, "--controller", "ppo", "--max-children", "9", "--no-dashboard"]) == 0
    config = seen["config"]
    assert seen["resume"] and (config.budget, config.workers, config.max_children) == (
        "20cpu-minutes",
        1,
        9,
    )


def test_a_gpu_budget_without_gpus_is_described_in_cpu_seconds():
    lines = budget_lines(parse_budget("5 gpu-hours"), gpus=0, gpus_per_child=0.0, workers=2)
    assert "counts CPU-worker seconds" in lines[0]
    assert "cpu-seconds" in lines[1] and "2 CPU worker(s)" in lines[1]
    assert not any("GPU worker" in line for line in lines)
    lines = budget_lines(parse_budget("10cpu-minutes"), gpus=2, gpus_per_child=1.0, workers=2)
    assert "2 GPU worker(s)" in lines[-1] and "gpu-seconds" in lines[-1]
    assert budget_lines(parse_budget("1gpu-hours"), 4, 1.0, 4) == [
        f"[search] budget {parse_budget('1gpu-hours').describe(4)}"
    ]


def test_the_dashboard_line_says_where_the_token_is(monkeypatch):
    monkeypatch.setenv("RAY_AUTH_MODE", "token")
    monkeypatch.delenv("RAY_AUTH_TOKEN_PATH", raising=False)
    line = nas.ray_session.dashboard_line("127.0.0.1:8265")
    assert "http://127.0.0.1:8265" in line and "ray get-auth-token" in line
    assert "~/.ray/auth_token" in line
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")
    assert "token" not in nas.ray_session.dashboard_line("127.0.0.1:8265")


# ---- Ctrl-C among the children, then a torn record ------------------------------------------
def test_ctrl_c_among_children_exits_130_then_a_torn_record_is_rerun_on_resume(
    ray_session, fresh_run, tmp_path, capsys
):
    # 8 children: the Ctrl-C must land while some are still to come, also when a loaded
    # machine delays this test's polling (with 5, CI once saw the search end first)
    config = tiny_search_config(
        max_children=8, child_steps=60, controller="random", budget="30cpu-minutes"
    )
    (fresh_run / "search.json").write_text(json.dumps(config.to_dict()))
    log_path = tmp_path / "search.log"
    with ray_tmp_dir("rk") as ray_tmp, open(log_path, "w") as log:
        proc = start_resumed_search(fresh_run, ray_tmp, log)
        try:
            wait_for_a_child_in_flight(fresh_run, proc, log_path, poll=0.2)
            os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C: the terminal signals the group
            rc = proc.wait(timeout=120)
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    printed = log_path.read_text()
    assert rc == 130, printed[-3000:]
    assert f"continue with --resume --out {fresh_run}" in printed
    assert "interrupted: " in printed and "in flight stopped, to run again on resume" in printed
    assert "done:" not in printed and "Tuner.restore" not in printed
    assert not (fresh_run / "summary.json").exists()
    assert not (fresh_run / "search.lock").read_text()  # released

    before = read_records(fresh_run / "trials.jsonl")
    lines = (fresh_run / "trials.jsonl").read_text().splitlines(keepends=True)
    (fresh_run / "trials.jsonl").write_text("".join(lines[:-1]) + lines[-1][:40])  # torn
    torn_id = before[-1]["proposal_id"]
    capsys.readouterr()
    summary = run_search(config, fresh_run, parse_budget(config.budget), resume=True)
    printed = capsys.readouterr().out
    assert "line " + str(len(lines)) in printed and TORN_NAME in printed
    after = read_records(fresh_run / "trials.jsonl")
    ids = [r["proposal_id"] for r in after]
    assert after[: len(before) - 1] == before[:-1]  # nothing else lost or rewritten
    assert torn_id in ids and len(ids) == len(set(ids)) == 8  # rerun, once
    assert summary["children"] == 8


# ---- an error inside Ray Tune (a full disk among the children) -------------------------------
FULL_DISK_TRACE = """Traceback (most recent call last):
  File "nas/searcher.py", line 118, in on_trial_complete
    self.log.append(
  File "nas/records.py", line 135, in _append_line
    written += os.write(fd, data[written:])
OSError: [Errno 28] No space left on device
"""


def test_a_full_disk_inside_ray_tune_is_one_error_naming_the_fix(
    ray_session, fresh_run, monkeypatch
):
    from ray import tune
    from ray.tune.error import TuneError

    def fit(self):  # as Ray raises it: the child's error as a traceback's text
        raise TuneError(FULL_DISK_TRACE)

    monkeypatch.setattr(tune.Tuner, "fit", fit)
    config = tiny_search_config(max_children=2)
    with pytest.raises(nas.run.SearchStopped) as err:
        run_search(config, fresh_run, parse_budget(config.budget))
    message = str(err.value)
    assert "the disk is full" in message and "[Errno 28] No space left on device" in message
    assert f"0 children recorded in {fresh_run / 'trials.jsonl'}" in message
    assert f"continue with --resume --out {fresh_run}" in message
    assert not (fresh_run / "summary.json").exists()  # it did not finish


def test_another_error_inside_ray_tune_is_named_with_the_resume_advice(tmp_path):
    text = "Traceback (most recent call last):\n  File x\nValueError: boom\n"
    message = nas.run.stopped_message(text, tmp_path)
    assert message.startswith("the search stopped inside Ray Tune on ValueError: boom")
    assert "disk" not in message and f"--resume --out {tmp_path}" in message
    assert "stopped inside Ray Tune on an error: odd" in nas.run.stopped_message("odd", tmp_path)


def test_main_prints_a_stopped_search_as_one_error_and_exits_2(tmp_path, monkeypatch, capsys):
    def stopped(config, out, budget, resume):
        raise nas.run.SearchStopped("the disk is full ...; continue with --resume --out X")

    monkeypatch.setattr(nas.run, "run_search", stopped)
    assert main(["--out", str(tmp_path / "run"), "--no-dashboard"]) == 2
    assert capsys.readouterr().err == (
        "error: the disk is full ...; continue with --resume --out X\n"
    )


# ---- nas.export's arguments -----------------------------------------------------------------
@pytest.mark.parametrize("top", ["0", "-1"])
def test_export_refuses_a_top_below_one(tmp_path, capsys, top):
    from nas.export import main as export_main

    with pytest.raises(SystemExit) as exc:
        export_main([str(tmp_path), "--top", top])
    assert exc.value.code == 2 and "--top" in capsys.readouterr().err


def test_export_before_the_cache_exists_says_so(tmp_path, capsys):
    from nas.export import main as export_main

    (tmp_path / "search.json").write_text(json.dumps(tiny_search_config().to_dict()))
    assert export_main([str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("error:") == 1 and "no teacher and cache yet" in err and "Errno" not in err
