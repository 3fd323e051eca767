"""The GPU path, tested without a GPU: Ray places four children on one declared GPU (0.25
each), a child chooses its device from what Ray gave it (a GPU torch cannot use is an error,
never a silent fall-back), and bench/gpu_check.py's CPU form runs every step with Ray, Optuna,
tensorboardX and cityscapesscripts out of reach, as on the GPU machine.

Tests marked ``cuda`` need a GPU torch can use; bench/gpu_check.py runs them there
(``pytest -m cuda``), elsewhere they are skipped. Run as ``python -m tests.test_gpu_path RUN
RAY_TMP``, this file is the placement test's search process (its own Ray session)."""

from __future__ import annotations

import contextlib
import json
import math
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import torch

from nas.trainable import DEVICE_ENV, NoCudaForGpuError, device_for
from tests.conftest import tiny_search_config
from tests.processes import ray_tmp_dir

ROOT = Path(__file__).resolve().parents[1]
CELL = ROOT / "docs" / "cell.json"
needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
# the "cuda" mark is not registered in pyproject.toml (yet): keep collection quiet about it
PLACEMENT = dict(workers=0, gpus_per_child=0.25, max_children=4, child_steps=50)
"""The placement search: 4 workers from 1 GPU / 0.25, children long enough to overlap."""


# ---- the device a child chooses ------------------------------------------------------------
def test_a_child_without_a_gpu_runs_on_one_cpu_thread(monkeypatch):
    monkeypatch.delenv(DEVICE_ENV, raising=False)
    assert device_for([]) == torch.device("cpu")
    assert torch.get_num_threads() == 1


def test_a_gpu_that_torch_cannot_use_is_an_error_that_names_the_fix(monkeypatch):
    monkeypatch.delenv(DEVICE_ENV, raising=False)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(NoCudaForGpuError) as err:
        device_for(["0"])
    message = str(err.value)
    assert "Ray gave this child GPU 0" in message and "sees no CUDA device" in message
    assert "Fix: install a CUDA build of torch" in message and f"{DEVICE_ENV}=cpu" in message


def test_the_cpu_is_chosen_only_when_asked(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert device_for(["0"], override="cpu") == torch.device("cpu")
    monkeypatch.setenv(DEVICE_ENV, "cpu")
    assert device_for(["0"]) == torch.device("cpu")
    monkeypatch.setenv(DEVICE_ENV, "gpu")
    with pytest.raises(ValueError, match=DEVICE_ENV):
        device_for(["0"])


def test_the_child_uses_the_gpu_ray_assigned(monkeypatch):
    monkeypatch.delenv(DEVICE_ENV, raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3,5")  # Ray lists the trial's GPUs there
    assert device_for(["5"]) == torch.device("cuda", 1)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES")  # RAY_EXPERIMENTAL_NOSET_CUDA_VISIBLE_DEVICES
    assert device_for(["2"]) == torch.device("cuda", 2)


@pytest.mark.ray
def test_a_trial_given_an_unusable_gpu_reports_a_failed_child(monkeypatch, prepared_run):
    ray = pytest.importorskip("ray")
    from ray import tune

    import nas.trainable as trainable
    from nas.config import ChildSettings
    from search_spaces.genotype import Genotype

    monkeypatch.delenv(DEVICE_ENV, raising=False)
    monkeypatch.setattr(trainable, "ray_gpu_ids", lambda: ["0"])
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    reports = []
    monkeypatch.setattr(tune, "report", reports.append)
    settings = ChildSettings(
        teacher_dir=str(prepared_run / "teacher"),
        train_cache=str(prepared_run / "cache" / "train"),
        val_cache=str(prepared_run / "cache" / "val"),
        children_dir=str(prepared_run / "children"),
    )
    config = {"proposal_id": "p0", "seed": 0, "genotype": Genotype.load(CELL).to_dict()}
    connected = ray.is_initialized()  # the shared session, when another test started it
    trainable.child_trainable(config, settings)
    assert ray.is_initialized() == connected  # asking Ray outside Ray must not start it
    (report,) = reports
    assert report["status"] == "failed" and math.isnan(report["reward"])
    assert report["error"].startswith("NoCudaForGpuError: Ray gave this child GPU 0")
    assert report["gpu_ids"] == "0" and "device" not in report


# ---- Ray's placement on a declared GPU -------------------------------------------------------
def _trial_results(run: Path) -> list[list[dict]]:
    """Every trial's reports, from Ray's own result.json files."""
    trials = []
    for path in sorted((run / "ray_results").glob("session-*/*/result.json")):
        rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        if rows:
            trials.append(rows)
    return trials


@pytest.mark.ray
def test_four_children_share_one_declared_gpu(fresh_run):
    """One GPU declared to Ray, 0.25 per child: four children at once, each told GPU 0. Torch
    sees no GPU here, so the children run on the CPU by the explicit NAS_CHILD_DEVICE=cpu
    (without it each would fail, as the test above shows)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), DEVICE_ENV: "cpu"}
    with ray_tmp_dir("rg") as ray_tmp:
        done = subprocess.run(
            [sys.executable, "-m", "tests.test_gpu_path", str(fresh_run), str(ray_tmp)],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=400,
        )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["workers"] == 4 and seen["children"] == 4
    assert seen["most_gpu_held"] == pytest.approx(1.0)  # 4 x 0.25 held at one moment

    trials = _trial_results(fresh_run)
    assert len(trials) == 4
    last = [rows[-1] for rows in trials]
    assert all(r["status"] == "ok" for r in last), [r.get("error") for r in last]
    assert all(r["gpu_ids"] == "0" and r["device"] == "cpu" for r in last)
    assert len({r["pid"] for r in last}) == 4  # four worker processes
    assert all(r["node_id"] for r in last)  # the trainable sees its Ray session
    spans = [(r["started_at"], r["started_at"] + r["device_seconds"]) for r in last]
    assert max(a for a, _ in spans) < min(b for _, b in spans), spans  # all four at once


def _placement_search(out: str, temp_dir: str) -> None:
    """The search of the test above, in its own process and Ray session (1 GPU declared)."""
    for name in ("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "TUNE_GLOBAL_CHECKPOINT_S"):
        os.environ.setdefault(name, "0")  # bind 127.0.0.1 only; save finished trials at once
    import ray

    from nas.budget import parse_budget
    from nas.run import run_search

    ray.init(
        num_cpus=4,
        num_gpus=1,
        include_dashboard=False,
        _temp_dir=temp_dir,
        log_to_driver=False,
        object_store_memory=128 * 2**20,
    )
    held: list[float] = []
    stop = threading.Event()

    def watch() -> None:  # the GPU share held by running trials, as Ray accounts it
        while not stop.wait(0.1):
            held.append(1.0 - ray.available_resources().get("GPU", 0.0))

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        config = tiny_search_config(controller="random", budget="30cpu-minutes", **PLACEMENT)
        summary = run_search(config, Path(out), parse_budget(config.budget))
    finally:
        stop.set()
        watcher.join()
        ray.shutdown()
    seen = {"children": summary["children"], "workers": summary["workers"]}
    print(json.dumps({**seen, "most_gpu_held": max(held, default=0.0)}))


# ---- on a GPU (run by bench/gpu_check.py) ------------------------------------------------------
@pytest.mark.cuda
@needs_cuda
def test_a_child_given_a_gpu_trains_on_it(prepared_run, monkeypatch):
    from nas.cache import FeatureCache
    from nas.child import ChildConfig, ChildRun
    from search_spaces.genotype import Genotype

    monkeypatch.delenv(DEVICE_ENV, raising=False)
    device = device_for(["0"])
    assert device.type == "cuda"
    run = ChildRun(
        Genotype.load(CELL),
        prepared_run / "teacher",
        FeatureCache(prepared_run / "cache" / "train"),
        FeatureCache(prepared_run / "cache" / "val"),
        ChildConfig(steps=6, rounds=1, batch_size=4),
        device=device,
    )
    result = run.run(lambda _: None)
    assert all(p.device.type == "cuda" for p in run.net.parameters())
    assert math.isfinite(result["loss"]) and 0.0 <= result["quality"] <= 1.0


@pytest.mark.cuda
@needs_cuda
def test_every_op_runs_forward_and_backward_under_cuda_autocast():
    from nas.train_utils import autocast
    from search_spaces.ops import OP_NAMES, CellContext, build_op

    device = torch.device("cuda")
    g = torch.Generator(device="cpu").manual_seed(0)
    for name in OP_NAMES:
        op = build_op(name, 8).to(device).train()
        ctx = CellContext(
            *(torch.randn(2, 8, 12, 16, generator=g).to(device).requires_grad_() for _ in range(4))
        )
        with autocast(device):
            y = op(ctx.slow, ctx)
        assert y.shape == ctx.slow.shape and torch.isfinite(y.float()).all(), name
        if name != "none":
            y.float().square().mean().backward()
            grads = [t.grad for t in ctx if t.grad is not None]
            assert all(torch.isfinite(gr).all() for gr in grads), name


@pytest.mark.cuda
@needs_cuda
def test_the_video_network_steps_on_cuda_in_both_precisions():
    from nas.models.config import NetConfig
    from nas.models.video import VideoSegNet
    from nas.train_utils import autocast
    from search_spaces.genotype import Genotype

    device = torch.device("cuda")
    net = VideoSegNet(Genotype.load(CELL), 5, NetConfig(width_mult=0.35, deep_channels=16))
    net = net.to(device).eval()
    frame = torch.rand(1, 3, 64, 96, device=device)
    for amp in (contextlib.nullcontext, lambda: autocast(device)):
        with torch.inference_mode(), amp():
            key, state = net.key_step(frame)
            step, _ = net.step(frame, state)
        assert key.shape == step.shape == (1, 5, 64, 96)
        assert torch.isfinite(key.float()).all() and torch.isfinite(step.float()).all()


# ---- the check script's CPU form -------------------------------------------------------------
BLOCKER = '''"""Test-only: make these packages unimportable, as on the GPU machine."""
import sys

BLOCKED = {"ray", "optuna", "tensorboardX", "cityscapesscripts"}


class _Blocked:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {name!r} (blocked)", name=name)
        return None


sys.meta_path.insert(0, _Blocked())
'''


def test_gpu_check_cpu_form_runs_every_step_without_ray_or_optuna(tmp_path):
    blocker = tmp_path / "blocker"
    blocker.mkdir()
    (blocker / "sitecustomize.py").write_text(BLOCKER)  # imported at start by every process
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": f"{blocker}{os.pathsep}{ROOT}"}
    done = subprocess.run(
        [sys.executable, "-m", "bench.gpu_check", "--device", "cpu", "--tiny", "--threads", "1"]
        + ["--out", str(out)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    report = json.loads((out / "gpu_check.json").read_text())
    packages = report["environment"]["packages"]
    assert packages["ray"] is None and packages["optuna"] is None  # the blocker worked
    assert packages["cityscapesscripts"] is None  # nas imports without it
    steps = report["steps"]
    assert report["ok"] and list(steps) == [
        "cuda_tests",
        "prepare",
        "child",
        "four_children",
        "latency",
        "retrain",
        "memory",
    ]
    for name in ("cuda_tests", "prepare", "child", "four_children", "latency", "retrain"):
        assert steps[name]["status"] == "pass", (name, steps[name])
    assert steps["memory"]["status"] == "skip"  # no GPU here
    assert steps["cuda_tests"]["tests"] >= 3 and steps["cuda_tests"]["skipped"] >= 3
    assert steps["child"]["quality_difference"] <= 0.03
    assert steps["four_children"]["all_running_at_once"]
    assert math.isfinite(steps["retrain"]["loss"])
    assert all(r["key_ms"] > 0 and r["static_ms"] > 0 for r in steps["latency"]["rows"])
    assert "RESULT: every step passed" in (out / "gpu_check.txt").read_text()
    assert len(list(out.iterdir())) <= 8  # a device machine's $OUT brings back 8 files


if __name__ == "__main__":
    _placement_search(sys.argv[1], sys.argv[2])
