"""The Ray session of a search: local services on 127.0.0.1, short socket paths, the
dashboard line, and none of Ray Tune's own resume advice (this project resumes with
--resume)."""

from __future__ import annotations

import logging
import os
import tempfile
from typing import Any

from nas.config import SearchConfig


def dashboard_line(url: str) -> str:
    """The dashboard's address, and how to get in when Ray's token auth guards it."""
    line = f"[search] Ray dashboard: http://{url}"
    if os.environ.get("RAY_AUTH_MODE", "").lower() == "token":
        where = os.environ.get("RAY_AUTH_TOKEN_PATH") or "~/.ray/auth_token"
        line += (
            f" (it asks for Ray's token: `ray get-auth-token` prints it, kept in {where}; "
            "API calls send it as 'Authorization: Bearer TOKEN')"
        )
    return line


class _NoRayResumeAdvice(logging.Filter):
    """Ray Tune's own resume advice (Tuner.restore) is not how this project resumes."""

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        return "Tuner.restore" not in text and "Stop signal received" not in text


def quiet_ray_resume_advice() -> None:
    for name in ("ray.tune.tune", "ray.tune.tuner", "ray.tune.impl.tuner_internal"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, _NoRayResumeAdvice) for f in logger.filters):
            logger.addFilter(_NoRayResumeAdvice())


def local_ray_env() -> None:
    """Bind every Ray service of a local cluster to 127.0.0.1 (STACK.md), before import ray."""
    os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    os.environ.setdefault("TUNE_GLOBAL_CHECKPOINT_S", "0")
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")


def short_temp_dir() -> str:
    """Ray's socket paths must stay short: a fresh folder under /tmp per session."""
    return tempfile.mkdtemp(prefix="ray-", dir=os.environ.get("NAS_RAY_TMP", "/tmp"))


def start_ray(config: SearchConfig) -> tuple[Any, bool, str | None]:
    """(ray, whether this call started the cluster, the dashboard address if any)."""
    local_ray_env()
    import ray

    if config.address:
        context = ray.init(address=config.address, log_to_driver=False)
        return ray, False, context.dashboard_url
    if ray.is_initialized():  # a session the caller started (tests, notebooks): reuse it
        return ray, False, None
    if config.dashboard_host not in ("127.0.0.1", "localhost"):
        print(
            f"WARNING: the Ray dashboard will listen on {config.dashboard_host}: anyone who "
            "reaches that address and holds Ray's token (anyone at all with "
            "RAY_AUTH_MODE=disabled) can control this cluster"
        )
    context = ray.init(
        num_cpus=config.workers or os.cpu_count(),
        include_dashboard=config.dashboard,
        dashboard_host=config.dashboard_host,
        _temp_dir=short_temp_dir(),
        object_store_memory=256 * 2**20,
        log_to_driver=False,
    )
    return ray, True, context.dashboard_url
