"""A retrain's results as files: ``report.json`` / ``report.md`` (quality and per-frame
GFLOPs of the static network, the copy baseline and the video network) and the exported cell
(``cell.json`` + ``weights.safetensors``, what nas.segment and build_from_cell load)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from nas.cellfile import write_cell
from nas.checkpoint import json_safe, save_weights, write_json
from nas.config import RetrainConfig
from nas.models.video import VideoSegNet
from nas.video_eval import NETWORKS


def report_notes(
    cfg: RetrainConfig, metric: str, split: str, resolution: Sequence[int]
) -> list[str]:
    """What the report's figures mean: which networks, which frames, how trained."""
    notes = [
        "static = the teacher; key frames of the copy baseline and of the video network are "
        "exactly its output (the slow pathway is frozen)",
        "copy = copy_genotype at the cell's alpha: non-key frames get the key frame's logits",
        f"quality on the {split} split at {resolution[0]}x{resolution[1]} (labels "
        "resized nearest); non-key = frames with t % alpha != 0 of each sequence",
        "video training loss on non-key frames only (cross-entropy on ground truth, teacher "
        "labels where unlabelled, + D_t distillation); fast pathway, cell and "
        + (
            "non-key head trained"
            if cfg.step_head == "own"
            else "no head trained (non-key frames are read by the key head)"
        )
        + ", slow pathway frozen",
    ]
    if metric == "J&F unsupervised":
        notes.append(
            "DAVIS unsupervised: no mask given, foreground vs background from the frames "
            "alone; J&F on every frame"
        )
    if metric == "J&F":
        heads = "the key and non-key heads" if cfg.step_head == "own" else "the shared head"
        notes.append(
            f"DAVIS semi-supervised: first-frame mask used by online fine-tuning of "
            f"{heads} ({cfg.online_steps} Adam steps, lr "
            f"{cfg.online_lr}, frame 0 and its mirror) per sequence, for all three "
            "networks; J&F skips the first and last frame"
        )
    return notes


def build_report(quality: dict, gflops: dict, metric: str, **info) -> dict:
    networks = {
        name: {
            "quality_nonkey": quality[name]["nonkey"],
            "quality_all": quality[name]["all"],
            "gflops_per_frame": gflops[name]["per_frame"],
            "gflops_key": gflops[name]["key"],
            "gflops_nonkey": gflops[name]["nonkey"],
            "gflops_ratio": gflops[name]["ratio"],
        }
        for name in NETWORKS
    }
    return json_safe({"metric": metric, "networks": networks, **info})


def markdown_table(report: dict) -> str:
    metric = report["metric"]
    lines = [
        f"| network | {metric} non-key | {metric} all frames | GFLOPs/frame | vs static |",
        "|---|---|---|---|---|",
    ]
    fmt = lambda v: "n/a" if v is None else f"{v:.4f}"
    for name, row in report["networks"].items():
        lines.append(
            f"| {name} | {fmt(row['quality_nonkey'])} | {fmt(row['quality_all'])} | "
            f"{row['gflops_per_frame']:.3f} | {row['gflops_ratio']:.1%} |"
        )
    return "\n".join(lines)


def verdict(report: dict) -> str:
    """One sentence: the video network against the copy baseline and the static network, on
    non-key frames, and that it is one training seed."""
    rows, metric = report["networks"], report["metric"]
    video, copy, static = (rows[n]["quality_nonkey"] for n in ("video", "copy", "static"))
    if video is None or copy is None:
        return f"no {metric} on non-key frames to compare (no non-key frame was scored)"
    gain = round(video - copy, 4) + 0.0  # judged on the figure printed (+ 0.0: no -0.0000)
    side = (
        "above copy"
        if gain > 0
        else "not above copy: reusing the key frame's features does as well or better"
    )
    kept = f"{video / static:.1%} of static's {metric}" if static else f"static's {metric} n/a"
    return (
        f"video vs copy at alpha {report['genotype']['alpha']}, {metric} on non-key frames: "
        f"{gain:+.4f} ({side}); {kept} at {rows['video']['gflops_ratio']:.1%} of its GFLOPs; "
        "one training seed (rerun with another --seed for the spread)"
    )


def write_report(out: Path, report: dict) -> None:
    write_json(out / "report.json", report)
    notes = "\n".join(f"- {note}" for note in report.get("notes", []))
    text = (
        f"# Retrain report: {report.get('dataset')} ({report.get('split')}), alpha "
        f"{report['genotype']['alpha']}\n\n{markdown_table(report)}\n\n{verdict(report)}\n\n"
        f"{notes}\n"
    )
    (out / "report.md").write_text(text)


def export_cell(
    folder: Path,
    net: VideoSegNet,
    names: Sequence[str],
    resolution: Sequence[int],
    metrics: dict,
    provenance: dict,
) -> None:
    """cell.json + weights.safetensors: what nas.segment and build_from_cell load."""
    save_weights(net, folder / "weights.safetensors")
    write_cell(
        folder / "cell.json",
        net.genotype,
        net.slow.num_classes,
        net.config,
        class_names=list(names),
        resolution=list(resolution),
        metrics=metrics,
        provenance=provenance,
    )
