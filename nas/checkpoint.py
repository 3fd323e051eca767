"""Small, safe persistence helpers: atomic writes, safetensors, weights-only checkpoints."""

from __future__ import annotations

import hashlib
import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write via a temp file + rename, so a kill never leaves half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
    except OSError as exc:  # a full disk: no stray temp file, and the error names the file
        Path(tmp).unlink(missing_ok=True)
        raise OSError(exc.errno, exc.strerror, str(path)) from exc
    os.replace(tmp, path)


def json_safe(value: Any) -> Any:
    """JSON has no NaN or infinity: they become null; tuples become lists."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def json_text(data: Any, indent: int | None = 2) -> str:
    """The one way this project writes JSON: non-finite numbers as null, keys sorted."""
    return json.dumps(json_safe(data), indent=indent, sort_keys=True, allow_nan=False)


def write_json(path: str | Path, data: Any) -> None:
    atomic_write_text(path, json_text(data) + "\n")


def read_json(path: str | Path) -> Any:
    return json.loads(Path(path).read_text())


def content_key(data: Any) -> str:
    """A short hash of JSON-able ``data``: the name of what was computed from it, so that a
    change of inputs is never mistaken for a finished result."""
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]


def save_weights(module_or_state: torch.nn.Module | dict, path: str | Path) -> None:
    """Save a state dict as safetensors (contiguous CPU copies), atomically."""
    state = (
        module_or_state.state_dict()
        if isinstance(module_or_state, torch.nn.Module)
        else (module_or_state)
    )
    state = {k: v.detach().cpu().contiguous() for k, v in state.items()}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    save_file(state, str(tmp))
    os.replace(tmp, path)


def load_weights(path: str | Path) -> dict[str, torch.Tensor]:
    if not Path(path).is_file():
        raise FileNotFoundError(f"weights file {path} does not exist")
    try:
        return load_file(str(path))
    except SafetensorError as exc:  # cut short, or not safetensors at all
        raise ValueError(f"{path} is not a readable safetensors file ({exc})") from None


def save_training_state(path: str | Path, state: dict) -> None:
    """A resumable training checkpoint (tensors, numbers, lists): read back weights_only."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        torch.save(state, tmp)
    except RuntimeError as exc:  # how torch's C++ writer reports a failed write (full disk)
        tmp.unlink(missing_ok=True)
        raise OSError(f"could not write {path} (is the disk full?): {exc}") from exc
    os.replace(tmp, path)


def load_training_state(path: str | Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)
