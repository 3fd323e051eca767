"""Latency on the device the search runs on: a per-device table (HW-NAS-Bench's idea).

FLOPs correlate poorly with device time, and timing every child's whole network would cost
more than training it. So every part a video network is made of is timed once, in eval mode
at batch 1 and the deploy resolution (median of warm runs): the static network, each op of
the space, node sums and cell outputs, the lateral fusions and the fast encoder and its
projection per beta, the head. A cell's key and non-key frame latency is the sum of its
parts, with two terms measured on reference networks for what the sum misses: each step's
overhead (``overhead/key/...``, ``overhead/step/...``: the glue between the parts, and parts
running slower after one another than alone), and the ops' extra slowness inside a whole
step (``cell_factor``: their weights and inputs leave the cache between them).
``latency.json`` in the run folder keeps the table with the device's name; a resumed search
on the same device reuses it.
"""

from __future__ import annotations

import platform
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from evaluation.cost import call_seconds, per_frame
from nas.checkpoint import read_json, write_json
from nas.models.config import NetConfig
from nas.models.heads import upsample_logits
from nas.models.static import StaticSegNet
from nas.models.video import ProjectedFastEncoder, VideoSegNet
from search_spaces.cell import DynamicCell
from search_spaces.genotype import ALPHAS, BETAS, FUSIONS, Genotype, Node, beta_fraction
from search_spaces.ops import OP_NAMES, CellContext, build_op
from search_spaces.pathways import build_fusion
from search_spaces.space import SearchSpace

LATENCY_FILE = "latency.json"
TABLE_VERSION = 1
"""Bumped when the parts or the way they are timed change: an older table is timed again."""
PASSES = 5
SECONDS_PER_PASS = 0.05
"""Each part is timed in PASSES passes, each about this long (at least MIN_REPEATS runs):
some 70 parts and reference networks in well under a minute on this project's CPU."""
MIN_REPEATS = 3
MAX_REPEATS = 100
MAX_SECONDS = 60.0
CALIBRATION_SEED = 20_240
CALIBRATION_CELLS = 5
OVERHEAD_LIMIT = 0.5
"""A step's overhead beyond this share of its parts' time is taken for interference: 4 to
25% on this project's CPU."""
FACTOR_LIMITS = (0.8, 2.5)
"""``cell_factor`` outside these is taken for interference: 1.1 to 1.4 on this project's CPU."""


@dataclass(frozen=True)
class CellLatency:
    """Predicted milliseconds of a video network's key and non-key frames."""

    key_ms: float
    nonkey_ms: float
    alpha: int

    @property
    def per_frame_ms(self) -> float:
        """Averaged over alpha as GFLOPs are (one key frame every alpha)."""
        return per_frame(self.key_ms, self.nonkey_ms, self.alpha)


def cpu_model() -> str:
    """The CPU's marketing name (Linux's /proc/cpuinfo), else what platform knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def device_name(device: torch.device) -> str:
    """What a latency table was measured on: the GPU's name, or the CPU model and the
    torch thread count (times scale with both)."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    threads = torch.get_num_threads()
    return f"{cpu_model()}, {threads} thread{'s' if threads > 1 else ''}"


def default_device() -> torch.device:
    """Where the search trains its teacher and children: CUDA when there is one."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


# ---- which parts a cell is made of --------------------------------------------------------
@dataclass(frozen=True)
class CellParts:
    """The table entries a network's frames run, following VideoSegNet.key_step and .step (a
    part run twice is listed twice)."""

    key: list[str]
    """A key frame."""
    step: list[str]
    """A non-key frame outside the cell."""
    cell: list[str]
    """The cell itself: the ops and sums of the nodes it computes (``live_states``), and its
    output."""


def cell_parts(genotype: Genotype) -> CellParts:
    """The parts of ``genotype``'s network, read off the genotype as VideoSegNet builds it
    (the fast pathway only when the cell reads it, its fusion only when it reads that)."""
    alpha, beta = genotype.alpha, genotype.beta
    used = genotype.used_inputs()
    uses_fast, uses_fused = bool(used & {1, 2}), 1 in used
    path = "fast" if uses_fast else "slow"
    key = ["static", f"overhead/key/{path}"]
    step = ["head", f"overhead/step/{path}"]
    if uses_fast:
        key += [f"fast/{beta}", f"proj/{beta}"]
        step += ["normalize", f"fast/{beta}", f"buffer/{beta}/{alpha}", f"proj/{beta}"]
        if uses_fused:
            step.append(f"fusion/{genotype.fusion}/{beta}/{alpha}")
    cell = []
    live = genotype.live_states()
    for k, node in enumerate(genotype.nodes):
        if 3 + k in live:
            cell += [f"op/{op}" for op in node.ops] + ["add"]
    leaves = len(genotype.leaf_nodes())
    if genotype.output == "concat":
        cell.append(f"concat/{leaves}")
    else:
        cell += ["add"] * (leaves - 1)
        if genotype.output == "residual":
            cell.append("residual")
    return CellParts(key, step, cell)


def predict(table: dict[str, Any], genotype: Genotype) -> CellLatency:
    """A cell's key and non-key latency from a table (``build_table``'s or latency.json's):
    the sum of its parts, the cell's own scaled by the table's ``cell_factor``. KeyError
    naming the parts a table lacks (e.g. more nodes than it was timed for)."""
    entries = table["entries"]
    parts = cell_parts(genotype)
    missing = sorted({p for p in parts.key + parts.step + parts.cell if p not in entries})
    if missing:
        raise KeyError(f"the latency table has no {', '.join(missing)}: time it again")
    cell = table["cell_factor"] * sum(entries[p] for p in parts.cell)
    return CellLatency(
        key_ms=sum(entries[p] for p in parts.key),
        nonkey_ms=sum(entries[p] for p in parts.step) + cell,
        alpha=genotype.alpha,
    )


# ---- timing --------------------------------------------------------------------------------
Job = tuple[Callable[..., Any], tuple[Any, ...]]
"""Something to time: a function and its inputs."""
Clock = Callable[[], float]


def time_jobs(
    jobs: dict[str, Job], device: torch.device, clock: Clock = time.perf_counter
) -> dict[str, float]:
    """Each job's median milliseconds over PASSES passes through all of them: other work on
    the machine comes and goes in phases of seconds, and spread over the passes it slows
    every job alike rather than a few a lot. Each pass runs a job about SECONDS_PER_PASS
    long, at least MIN_REPEATS times; no pass starts after MAX_SECONDS (a machine so busy
    that the first passes took that long gets fewer). ``clock``: see
    evaluation.cost.call_seconds."""
    times: dict[str, list[float]] = {name: [] for name in jobs}
    repeats: dict[str, int] = {}
    start = time.perf_counter()
    for _ in range(PASSES):
        if repeats and time.perf_counter() - start > MAX_SECONDS:
            break
        for name, (fn, inputs) in jobs.items():
            if name not in repeats:
                probe = min(
                    call_seconds(fn, *inputs, warmup=2, repeats=2, device=device, clock=clock)
                )
                repeats[name] = int(
                    min(max(SECONDS_PER_PASS / max(probe, 1e-6), MIN_REPEATS), MAX_REPEATS)
                )
            times[name] += call_seconds(
                fn, *inputs, warmup=1, repeats=repeats[name], device=device, clock=clock
            )
    return {name: statistics.median(t) * 1e3 for name, t in times.items()}


def time_ms(
    fn: Callable[..., Any], *inputs: Any, device: torch.device, clock: Clock = time.perf_counter
) -> float:
    """Median milliseconds of ``fn(*inputs)``, timed as a table's parts are."""
    return time_jobs({"": (fn, inputs)}, device, clock)[""]


def _leaves_genotype(leaves: int, n_nodes: int, output: str, reads: int = 0) -> Genotype:
    """A cell of skips with exactly ``leaves`` leaves: a chain whose first node reads input
    ``reads`` (and the fast features), then nodes reading the slow state."""
    chain = n_nodes - leaves + 1
    first = Node((reads, 2), ("skip", "skip")) if reads else Node((0, 0), ("skip", "none"))
    nodes = [first] + [Node((2 + k, 0), ("skip", "none")) for k in range(1, chain)]
    nodes += [Node((0, 0), ("skip", "none")) for _ in range(leaves - 1)]
    return Genotype(2, "1/4", "time_strided_sampling", tuple(nodes), output)


def calibration_cells(n_nodes: int) -> list[Genotype]:
    """Cells sampled from the space with their own seed (none of bench/latency.py's 30),
    whose networks' measured steps give the table's ``cell_factor``."""
    rng = np.random.default_rng(CALIBRATION_SEED)
    return [SearchSpace(n_nodes).sample(rng) for _ in range(CALIBRATION_CELLS)]


@dataclass
class TablePlan:
    """What a table times (``jobs``: the parts, calibration cells and reference networks)
    and how their times become the table."""

    jobs: dict[str, Job]
    parts: list[str]
    cells: list[Genotype]
    networks: dict[str, Genotype]

    def table(self, measured: dict[str, float]) -> dict[str, Any]:
        """``entries`` (median ms per part, with each path's step overheads: a network of
        skips' measured steps less their parts), ``cell_factor`` (the calibration networks'
        measured steps less their parts outside the cell, over their cell's parts: how much
        slower ops run inside a whole step than alone), ``references`` (those times) and
        ``warnings``: a term outside what a steady machine gives (OVERHEAD_LIMIT,
        FACTOR_LIMITS) means other work slowed the long calls, and it is clamped."""
        entries = {name: measured[name] for name in self.parts}
        table = {"entries": entries, "cell_factor": 1.0}
        warnings: list[str] = []
        for path, genotype in self.networks.items():
            entries[f"overhead/key/{path}"] = entries[f"overhead/step/{path}"] = 0.0
            bare = predict(table, genotype)
            for step, ms in (("key", bare.key_ms), ("step", bare.nonkey_ms)):
                name = f"overhead/{step}/{path}"
                raw = measured[f"network/{step}/{path}"] - ms
                entries[name] = _bounded(name, raw, (0.0, OVERHEAD_LIMIT * ms), warnings)
        factors = []
        for i, genotype in enumerate(self.cells):
            parts = cell_parts(genotype)
            outside = sum(entries[p] for p in parts.step)
            inside = sum(entries[p] for p in parts.cell)
            factors.append((measured[f"network/step/cell{i}"] - outside) / inside)
        factor = statistics.median(factors)
        table["cell_factor"] = _bounded("cell_factor", factor, FACTOR_LIMITS, warnings)
        references = {n: t for n, t in measured.items() if n in self.jobs and n not in entries}
        return {**table, "references": references, "warnings": warnings}


def _bounded(name: str, value: float, limits: tuple[float, float], warnings: list[str]) -> float:
    """``value`` within ``limits``; a value outside them is clamped and a warning saved (a
    negative overhead, within timing noise of zero, is clamped silently)."""
    low, high = limits
    if value > high or (value < low and name == "cell_factor"):
        warnings.append(
            f"{name} measured {value:.3g}, clamped to {min(max(value, low), high):.3g}: other "
            "work on the machine slowed the reference networks"
        )
    return min(max(value, low), high)


def plan_table(
    net: NetConfig,
    num_classes: int,
    resolution: tuple[int, int],
    n_nodes: int,
    device: torch.device,
) -> TablePlan:
    """The jobs of a table on ``device``. Weights are random: time does not depend on their
    values (a gated conv computes every pixel and masks in eval)."""
    torch.manual_seed(0)
    frame = torch.rand(1, 3, *resolution, device=device)
    with torch.inference_mode():
        jobs = _part_jobs(net, num_classes, frame, n_nodes, device)
        parts = list(jobs)
        cells = calibration_cells(n_nodes)
        networks = {path: make(n_nodes) for path, make in REFERENCE_NETWORKS.items()}
        named = {**networks, **{f"cell{i}": genotype for i, genotype in enumerate(cells)}}
        for name, genotype in named.items():
            video = VideoSegNet(genotype, num_classes, net).eval().to(device)
            jobs[f"network/step/{name}"] = (video.step, (frame, video.key_step(frame)[1]))
            if name in networks:
                jobs[f"network/key/{name}"] = (video.key_step, (frame,))
    return TablePlan(jobs, parts, cells, networks)


def build_table(
    net: NetConfig,
    num_classes: int,
    resolution: tuple[int, int],
    n_nodes: int,
    device: torch.device,
    clock: Clock = time.perf_counter,
) -> dict[str, Any]:
    """Time every part and the reference networks on ``device`` (see TablePlan.table)."""
    plan = plan_table(net, num_classes, resolution, n_nodes, device)
    return plan.table(time_jobs(plan.jobs, device, clock))


REFERENCE_NETWORKS = {
    "slow": lambda n: _leaves_genotype(1, n, "sum"),
    "fast": lambda n: _leaves_genotype(1, n, "sum", reads=1),
}
"""Networks of skips whose measured steps, less their parts, give each step's overhead: one
reading only the slow state, one running the fast pathway and a fusion."""


def _part_jobs(
    net: NetConfig, num_classes: int, frame: Tensor, n_nodes: int, device: torch.device
) -> dict[str, Job]:
    """Every part of the space's networks as a job."""
    h, w = frame.shape[-2:]
    c = net.deep_channels
    static = StaticSegNet(num_classes, net).eval().to(device)
    x = static.normalize(frame)
    slow = static.deep_features(frame)
    jobs: dict[str, Job] = {
        "static": (static, (frame,)),
        "normalize": (static.normalize, (frame,)),
        "head": (lambda d: upsample_logits(static.head(d), (h, w)), (slow,)),
    }
    for beta in BETAS:
        fast = ProjectedFastEncoder(beta_fraction(beta), net).eval().to(device)
        raw = fast.encoder(x)
        jobs[f"fast/{beta}"] = (fast.encoder, (x,))
        jobs[f"proj/{beta}"] = (fast.proj, (raw,))
        for alpha in ALPHAS:
            buffer = raw.new_zeros(1, alpha - 1, *raw.shape[1:])
            jobs[f"buffer/{beta}/{alpha}"] = (_shift_in, (buffer, raw))
            for fusion in FUSIONS:
                module = build_fusion(fusion, raw.shape[1], c, alpha).eval().to(device)
                jobs[f"fusion/{fusion}/{beta}/{alpha}"] = (module, (buffer,))
    ctx = CellContext(*(torch.randn_like(slow) for _ in range(4)))
    for name in OP_NAMES:
        jobs[f"op/{name}"] = (build_op(name, c).eval().to(device), (slow, ctx))
    other = torch.randn_like(slow)
    jobs["add"] = (torch.add, (slow, other))
    residual = DynamicCell(_leaves_genotype(1, n_nodes, "residual"), c).eval().to(device)
    jobs["residual"] = (lambda s, o: s + residual.gain * o, (slow, other))
    for leaves in range(1, n_nodes + 1):
        cell = DynamicCell(_leaves_genotype(leaves, n_nodes, "concat"), c).eval().to(device)
        jobs[f"concat/{leaves}"] = (
            lambda ls, combine=cell.combine: combine(torch.cat(ls, 1)),
            ([slow] * leaves,),
        )
    return jobs


def _shift_in(buffer: Tensor, raw: Tensor) -> Tensor:
    """What a non-key step does to the fast buffer (VideoSegNet.cell_features)."""
    return torch.cat([buffer[:, 1:], raw.unsqueeze(1)], dim=1)


# ---- the run folder's table -----------------------------------------------------------------
def table_setting(
    net: NetConfig, num_classes: int, resolution: tuple[int, int], n_nodes: int
) -> dict[str, Any]:
    """What a table's times depend on besides the device."""
    return {
        "version": TABLE_VERSION,
        "net": asdict(net),
        "num_classes": num_classes,
        "resolution": list(resolution),
        "n_nodes": n_nodes,
    }


def ensure_table(
    out: Path,
    net: NetConfig,
    num_classes: int,
    resolution: tuple[int, int],
    n_nodes: int,
    device: torch.device | None = None,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """``out``/latency.json for this network on this device: reused when it was measured
    here for the same setting, else timed (again, saying why) and saved."""
    device = device or default_device()
    name = device_name(device)
    setting = table_setting(net, num_classes, resolution, n_nodes)
    path = Path(out) / LATENCY_FILE
    if path.is_file():
        saved = read_json(path)
        if saved.get("device") == name and saved.get("setting") == setting:
            log(f"[latency] reusing {path} (measured on {name})")
            return saved
        why = (
            f"was measured on {saved.get('device')}, this search runs on {name}"
            if saved.get("device") != name
            else "was measured for another network, resolution or table version"
        )
        log(f"[latency] {path} {why}: timing the parts again")
    t0 = time.time()
    table = build_table(net, num_classes, resolution, n_nodes, device)
    table.update(device=name, setting=setting, build_seconds=time.time() - t0)
    write_json(path, table)
    for warning in table["warnings"]:
        log(
            f"[latency] warning: {warning}; for a steadier table, delete {path} and resume "
            "when the machine is quieter"
        )
    h, w = resolution
    log(
        f"[latency] {len(table['entries'])} parts timed on {name} at {h}x{w} in "
        f"{table['build_seconds']:.0f} s: static network {table['entries']['static']:.2f} "
        "ms/frame"
    )
    return table
